//! Starting weights from an earlier run's model (`--init-from`): fine-tuning, e.g. a network
//! trained at 128x128 continued at 256x256.

use crate::checkpoint::load_module;
use crate::split::RunSplit;
use anyhow::{bail, Context, Result};
use burn::module::Module;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use tumorscan_model::NetConfig;

/// `net` with the weights of the model folder `dir` (`model.json` + `model.bpk`).
///
/// The saved network must be `want` but for its input size. The patients it was trained on
/// are read from the run's `config.json` (in `dir` or its parent, where `train` writes it)
/// and must include none of this run's validation or test patients, nor may it have been
/// selected on this run's test patients: fine-tuning must not leak what this run holds out.
pub fn from_model_dir<N: Module>(net: N, dir: &Path, want: &NetConfig, split: &RunSplit) -> Result<N> {
    let card_path = dir.join("model.json");
    let card: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&card_path).with_context(|| format!("--init-from: reading {}", card_path.display()))?)
            .with_context(|| format!("--init-from: {} is not JSON", card_path.display()))?;
    let saved: NetConfig = serde_json::from_value(card["net"].clone())
        .with_context(|| format!("--init-from: {} has no valid 'net' description", card_path.display()))?;
    if saved.at_size(0) != want.at_size(0) {
        bail!(
            "--init-from {}: it holds a different network ({}) from the one this run trains ({}); \
             only the input size may differ",
            dir.display(),
            serde_json::to_string(&saved)?,
            serde_json::to_string(want)?
        );
    }
    let earlier = earlier_split(dir)?;
    let held_out: BTreeSet<&String> = split.val.difference(&split.train).chain(&split.test).collect();
    let leaked: Vec<&String> = earlier.train.iter().filter(|p| held_out.contains(p)).collect();
    let selected_on_test: Vec<&String> = earlier.val.intersection(&split.test).collect();
    let mut why = Vec::new();
    if !leaked.is_empty() {
        why.push(format!("was trained on {} patients this run holds out ({leaked:?})", leaked.len()));
    }
    if !selected_on_test.is_empty() {
        why.push(format!(
            "was selected on {} of this run's test patients ({selected_on_test:?})",
            selected_on_test.len()
        ));
    }
    if !why.is_empty() {
        bail!(
            "--init-from {}: that model {}; fine-tune within the split it was trained in",
            dir.display(),
            why.join(" and ")
        );
    }
    eprintln!(
        "starting from {} ({}x{} input, epoch {})",
        dir.display(),
        saved.input_size(),
        saved.input_size(),
        card["epoch"]
    );
    load_module(net, &dir.join("model.bpk"))
}

/// The split recorded in the `config.json` of the run that produced `dir`.
fn earlier_split(dir: &Path) -> Result<RunSplit> {
    let candidates: Vec<PathBuf> = [Some(dir), dir.parent()]
        .into_iter()
        .flatten()
        .map(|d| d.join("config.json"))
        .collect();
    let Some(path) = candidates.iter().find(|p| p.is_file()) else {
        bail!(
            "--init-from {}: no config.json in it or its parent, so which patients it was trained on \
             is unknown; point at a training run's best/ folder",
            dir.display()
        );
    };
    #[derive(serde::Deserialize)]
    struct RunConfig {
        split: RunSplit,
    }
    let cfg: RunConfig = serde_json::from_slice(&std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)
        .with_context(|| format!("--init-from: {} has no patient split", path.display()))?;
    Ok(cfg.split)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::prelude::*;
    use tumorscan_model::{SegmentationNet, SegmenterConfig, SegmenterNet};

    fn config(input_size: u32, residual: bool) -> SegmenterConfig {
        SegmenterConfig {
            features: 4,
            depth: 2,
            residual,
            input_size,
            ..Default::default()
        }
    }

    fn split(train: &[&str], val: &[&str], test: &[&str]) -> RunSplit {
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        RunSplit {
            train: set(train),
            val: set(val),
            test: set(test),
        }
    }

    /// A run folder as `train` leaves it: `config.json` with the split, `best/` with the model.
    fn saved_run(net: &SegmentationNet, cfg: &SegmenterConfig, split: &RunSplit) -> tempfile::TempDir {
        let run = tempfile::tempdir().unwrap();
        let best = run.path().join("best");
        std::fs::create_dir_all(&best).unwrap();
        crate::checkpoint::save_module(net, &best.join("model.bpk")).unwrap();
        let card = serde_json::json!({ "net": NetConfig::Segmenter(cfg.clone()), "epoch": 3 });
        std::fs::write(best.join("model.json"), card.to_string()).unwrap();
        std::fs::write(run.path().join("config.json"), serde_json::json!({ "split": split }).to_string()).unwrap();
        run
    }

    #[test]
    fn loads_the_weights_of_the_same_network_at_another_size() {
        let _guard = crate::tests_engine::serial();
        let device = Device::flex();
        let (small, large) = (config(32, false), config(64, false));
        let s = split(&["a", "b"], &["c"], &["d"]);
        let trained = SegmentationNet::build(&small, &device);
        let run = saved_run(&trained, &small, &s);
        let fresh = SegmentationNet::build(&large, &device);
        let x = || Tensor::<4>::ones([1, 3, 64, 64], &device);
        let want = trained.logits(x()).into_data().try_to_vec::<f32>().unwrap();
        assert_ne!(fresh.logits(x()).into_data().try_to_vec::<f32>().unwrap(), want);
        let loaded = from_model_dir(fresh, &run.path().join("best"), &NetConfig::Segmenter(large), &s).unwrap();
        assert_eq!(loaded.logits(x()).into_data().try_to_vec::<f32>().unwrap(), want);
    }

    #[test]
    fn refuses_another_network_a_leaking_split_or_an_unknown_one() {
        let _guard = crate::tests_engine::serial();
        let device = Device::flex();
        let cfg = config(32, false);
        let s = split(&["a", "b"], &["c"], &["d"]);
        let run = saved_run(&SegmentationNet::build(&cfg, &device), &cfg, &s);
        let best = run.path().join("best");
        let fresh = || SegmentationNet::build(&cfg, &device);
        let err = |r: Result<SegmentationNet>| format!("{:#}", r.expect_err("refused"));
        let residual = NetConfig::Segmenter(config(32, true));
        assert!(err(from_model_dir(fresh(), &best, &residual, &s)).contains("different network"));
        let want = NetConfig::Segmenter(cfg.clone());
        // Its training patient "b" is this run's test patient; its validation patient "c" too.
        let swapped = split(&["a", "d"], &["e"], &["b", "c"]);
        let msg = err(from_model_dir(fresh(), &best, &want, &swapped));
        assert!(msg.contains("trained on 1") && msg.contains("selected on 1"), "{msg}");
        // A final fit on train + validation may start from it.
        let final_fit = split(&["a", "b", "c"], &["c"], &["d"]);
        assert!(from_model_dir(fresh(), &best, &want, &final_fit).is_ok());
        std::fs::remove_file(run.path().join("config.json")).unwrap();
        assert!(err(from_model_dir(fresh(), &best, &want, &s)).contains("no config.json"));
    }
}
