//! The per-patient clinical / genomic table `data.csv` of the Kaggle distribution.

use crate::error::{DataError, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// Rows of `data.csv` keyed by patient (`TCGA_CS_4941`), each a map of column -> value.
#[derive(Debug, Clone, Default)]
pub struct Clinical {
    /// Column names in file order.
    pub columns: Vec<String>,
    /// Patient -> (column -> value); empty values are omitted.
    pub rows: BTreeMap<String, BTreeMap<String, String>>,
}

/// Case id of a slice-folder name: `TCGA_CS_4941_19960909` -> `TCGA_CS_4941`.
pub fn case_id(patient_folder: &str) -> String {
    let parts: Vec<&str> = patient_folder.split('_').collect();
    if parts.len() >= 4 {
        parts[..3].join("_")
    } else {
        patient_folder.to_string()
    }
}

/// Read `data.csv`; the first column must be `Patient`.
pub fn read_clinical(path: &Path) -> Result<Clinical> {
    let bytes = crate::image_io::read_bytes(path)?;
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).from_reader(&bytes[..]);
    let bad = |e: csv::Error| DataError::invalid(path, format!("malformed CSV: {e}"));
    let columns: Vec<String> = rdr.headers().map_err(bad)?.iter().map(str::to_string).collect();
    if columns.first().map(String::as_str) != Some("Patient") {
        return Err(DataError::invalid(path, "malformed data.csv: first column must be 'Patient'"));
    }
    let mut rows = BTreeMap::new();
    for rec in rdr.records() {
        let rec = rec.map_err(bad)?;
        let mut row = BTreeMap::new();
        for (c, v) in columns.iter().zip(rec.iter()).skip(1) {
            if !v.is_empty() {
                row.insert(c.clone(), v.to_string());
            }
        }
        rows.insert(rec.get(0).unwrap_or_default().to_string(), row);
    }
    Ok(Clinical { columns, rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_rejects() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("data.csv");
        std::fs::write(&p, "Patient,age\nTCGA_CS_4941,67\nTCGA_CS_4942,\n").unwrap();
        let c = read_clinical(&p).unwrap();
        assert_eq!(c.rows["TCGA_CS_4941"]["age"], "67");
        assert!(c.rows["TCGA_CS_4942"].is_empty());
        std::fs::write(&p, "Patient,age\nA,1,2,3\n").unwrap();
        assert!(read_clinical(&p).unwrap_err().to_string().contains("malformed"));
        std::fs::write(&p, [0xff, 0xfe, 0x00]).unwrap();
        assert!(read_clinical(&p).is_err());
        assert_eq!(case_id("TCGA_CS_4941_19960909"), "TCGA_CS_4941");
    }
}
