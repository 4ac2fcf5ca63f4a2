//! Crash safety and determinism of training, through the real binary: a run killed with
//! SIGKILL during its second epoch and resumed ends with the same per-epoch losses and the
//! same predictions as an uninterrupted run with the same seed.

mod common;
use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn train_args<'a>(data: &'a str, folds: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "segment",
        "--data",
        data,
        "--folds",
        folds,
        "--val-fold",
        "1",
        "--test-fold",
        "0",
        "--out",
        out,
        "--epochs",
        "4",
        "--batch-size",
        "2",
        "--features",
        "4",
        "--depth",
        "2",
        "--size",
        "32",
        "--lr",
        "0.01",
        "--seed",
        "7",
        "--empty-per-tumor",
        "all",
        "--no-cache",
    ]
}

#[test]
fn sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    phantom_dir(&data, 6, 6);
    let folds = dir.path().join("folds.csv");
    assert_eq!(
        tumorscan(&[
            "dataset",
            "split",
            p(&data),
            "--folds",
            "3",
            "--seed",
            "1",
            "--out",
            p(&folds),
            "--no-cache"
        ])
        .code,
        0
    );

    let full = dir.path().join("full");
    let r = tumorscan(&train_args(p(&data), p(&folds), p(&full)));
    assert_eq!(r.code, 0, "{}", r.stderr);

    // Start the same run, kill -9 it once epoch 1 is checkpointed (so during epoch 2).
    let killed = dir.path().join("killed");
    let mut child = Command::new(binary())
        .args(train_args(p(&data), p(&folds), p(&killed)))
        .env("TUMORSCAN_SLOW_STEP_MS", "150")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let state = killed.join("checkpoint/state.json");
    let t0 = Instant::now();
    loop {
        let done = std::fs::read(&state)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["epochs_done"].as_u64())
            .unwrap_or(0);
        if done >= 1 {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "epoch 1 never checkpointed");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();
    let v = read_json(&state);
    let done = v["epochs_done"].as_u64().unwrap();
    assert!(done < 4, "the kill landed before the run finished ({done} epochs)");

    // Resuming loses at most the interrupted epoch and reaches the same end.
    let r = tumorscan(&[train_args(p(&data), p(&folds), p(&killed)), vec!["--resume"]].concat());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let losses = |d: &Path| -> Vec<String> {
        std::fs::read_to_string(d.join("metrics.csv"))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.split(',').nth(1).unwrap().to_string())
            .collect()
    };
    assert_eq!(losses(&full), losses(&killed), "same per-epoch training loss");
    let (pa, pb) = (dir.path().join("pa"), dir.path().join("pb"));
    assert_eq!(
        tumorscan(&["predict", p(&data), "--model", p(&full.join("best")), "--out", p(&pa)]).code,
        0
    );
    assert_eq!(
        tumorscan(&["predict", p(&data), "--model", p(&killed.join("best")), "--out", p(&pb)]).code,
        0
    );
    let a = std::fs::read_to_string(pa.join("predictions.csv")).unwrap();
    let b = std::fs::read_to_string(pb.join("predictions.csv")).unwrap();
    assert_eq!(a, b, "bit-identical predictions");
    // No temporary files left behind by the kill are mistaken for checkpoints.
    for e in std::fs::read_dir(killed.join("checkpoint")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().to_string();
        assert!(
            name == "state.json" || name.starts_with("epoch-0004") || name.starts_with('.'),
            "unexpected {name}"
        );
    }
}

/// A run folder whose checkpoint was deleted is still a run: a new `train` into it is refused and
/// leaves its best model, metrics and config as they were; `--resume` says there is no
/// checkpoint (or, for a missing or empty --out, nothing to resume) instead of starting afresh.
#[test]
fn a_run_without_its_checkpoint_is_refused_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    phantom_dir(&data, 4, 3);
    let folds = dir.path().join("folds.csv");
    let split = ["dataset", "split", p(&data), "--folds", "2", "--out", p(&folds), "--no-cache"];
    assert_eq!(tumorscan(&split).code, 0);
    let train = |out: &Path, extra: &[&str]| {
        let mut args = train_args(p(&data), p(&folds), p(out));
        // Two folds: validation 1, and no test fold.
        let test = args.iter().position(|a| *a == "--test-fold").unwrap();
        args.drain(test..test + 2);
        let epochs = args.iter().position(|a| *a == "--epochs").unwrap();
        args[epochs + 1] = "1";
        args.extend_from_slice(&["--max-steps", "2"]);
        args.extend_from_slice(extra);
        tumorscan(&args)
    };
    let run = dir.path().join("run");
    let r = train(&run, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let kept = ["best/model.bpk", "best/model.json", "metrics.csv", "config.json", "curves.png"];
    let before: Vec<Vec<u8>> = kept.iter().map(|f| std::fs::read(run.join(f)).unwrap()).collect();
    for gone in ["checkpoint/state.json", "checkpoint"] {
        let path = run.join(gone);
        if path.is_dir() {
            std::fs::remove_dir_all(&path).unwrap();
        } else {
            std::fs::remove_file(&path).unwrap();
        }
        let r = train(&run, &[]);
        assert_clean_failure(&r, "already holds (part of) a run");
        assert!(r.stderr.contains("best/") && r.stderr.contains("metrics.csv"), "{}", r.stderr);
        assert_clean_failure(&train(&run, &["--resume"]), "no usable checkpoint");
        for (f, bytes) in kept.iter().zip(&before) {
            assert_eq!(&std::fs::read(run.join(f)).unwrap(), bytes, "{f} changed");
        }
    }
    let missing = dir.path().join("missing");
    assert_clean_failure(&train(&missing, &["--resume"]), "nothing to resume in");
    assert!(!missing.exists());
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert_clean_failure(&train(&empty, &["--resume"]), "nothing to resume in");
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
}
