//! Which patients train, which select the model (validation) and which are held out (test).

use std::collections::BTreeSet;
use tumorscan_data::split::FoldRow;

/// Patient sets of one run. The test fold is never trained on nor used for selection.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunSplit {
    /// Training patients.
    pub train: BTreeSet<String>,
    /// Validation patients (model selection, early stopping, thresholds).
    pub val: BTreeSet<String>,
    /// Test patients (excluded here entirely).
    pub test: BTreeSet<String>,
}

impl RunSplit {
    /// Split fold rows into train / val / test; `test_fold` may be `None` to train on all
    /// non-validation folds (e.g. for the shipped model).
    pub fn from_folds(rows: &[FoldRow], val_fold: usize, test_fold: Option<usize>) -> Result<Self, String> {
        if Some(val_fold) == test_fold {
            return Err("validation and test fold must differ".into());
        }
        let folds: BTreeSet<usize> = rows.iter().map(|r| r.fold).collect();
        for f in std::iter::once(val_fold).chain(test_fold) {
            if !folds.contains(&f) {
                return Err(format!("fold {f} does not exist (folds: {folds:?})"));
            }
        }
        let pick = |f: &dyn Fn(usize) -> bool| rows.iter().filter(|r| f(r.fold)).map(|r| r.patient.clone()).collect();
        Ok(Self {
            train: pick(&|f| f != val_fold && Some(f) != test_fold),
            val: pick(&|f| f == val_fold),
            test: pick(&|f| Some(f) == test_fold),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disjoint_sets() {
        let rows: Vec<FoldRow> = (0..10)
            .map(|i| FoldRow {
                patient: format!("p{i}"),
                fold: i % 5,
                institution: "X".into(),
                burden: 0,
                tumor_slices: 0,
                tumor_pixels: 0,
            })
            .collect();
        let s = RunSplit::from_folds(&rows, 1, Some(0)).unwrap();
        assert_eq!((s.train.len(), s.val.len(), s.test.len()), (6, 2, 2));
        assert!(s.train.is_disjoint(&s.test) && s.train.is_disjoint(&s.val));
        assert!(RunSplit::from_folds(&rows, 1, Some(1)).is_err());
        assert!(RunSplit::from_folds(&rows, 7, None).is_err());
    }
}
