//! `tumorscan evaluate` with malformed models, folds and data: clear errors, no panics.

mod common;
use common::*;
use std::path::Path;

/// Four phantom patients in `dir/data` and their two folds in `dir/folds.csv`.
fn phantom_with_folds(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let data = dir.join("data");
    phantom_dir(&data, 4, 3);
    let folds = dir.join("folds.csv");
    assert_eq!(
        tumorscan(&["dataset", "split", p(&data), "--folds", "2", "--out", p(&folds), "--no-cache"]).code,
        0
    );
    (data, folds)
}

#[test]
fn malformed_models_and_folds_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (data, folds) = phantom_with_folds(dir.path());
    let eval = |model: &Path, folds: &Path, fold: &str, out: &str| {
        tumorscan(&[
            "evaluate",
            "segment",
            "--model",
            p(model),
            "--data",
            p(&data),
            "--folds",
            p(folds),
            "--fold",
            fold,
            "--out",
            p(&dir.path().join(out)),
            "--no-cache",
        ])
    };
    // The shipped bundle on a phantom fold works.
    let models = repo_root().join("models");
    let r = eval(&models, &folds, "0", "ok");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(dir.path().join("ok/segmentation.json").exists() && dir.path().join("ok/panels.png").exists());
    // Every clean-up variant is measured, the gentler 3D rule included.
    let report = read_json(dir.path().join("ok/segmentation.json"));
    let dice = |name: &str| {
        let rows = report["postprocessing"].as_array().expect("variant rows");
        let row = rows
            .iter()
            .find(|r| r["variant"] == name)
            .unwrap_or_else(|| panic!("no variant {name}"));
        row["patient_dice_mean"]["value"].as_f64().expect("a mean Dice")
    };
    for name in [
        "largest 3D component",
        "3D components >= 10% of the largest",
        "raw (threshold 0.5, no clean-up)",
    ] {
        assert!((0.0..=1.0).contains(&dice(name)), "{name}: {}", dice(name));
    }
    // Every later variant is paired patient by patient with the first ("as shipped"): its mean
    // difference is the difference of the two means, over the same patients.
    let rows = report["postprocessing"].as_array().expect("variant rows");
    assert!(rows[0]["vs_shipped"].is_null());
    let patients = |r: &serde_json::Value| r["per_patient"].as_array().expect("per-patient Dice").len();
    for r in &rows[1..] {
        let d = r["vs_shipped"]["difference"]["value"].as_f64().expect("a paired difference");
        let expected = r["patient_dice_mean"]["value"].as_f64().unwrap() - dice("as shipped");
        assert!((d - expected).abs() < 1e-9, "{}: {d} vs {expected}", r["variant"]);
        assert_eq!(patients(r), patients(&rows[0]));
        let counts = ["better", "worse", "tied"].map(|k| r["vs_shipped"][k].as_u64().unwrap() as usize);
        assert_eq!(counts.iter().sum::<usize>(), patients(r));
    }
    let md = std::fs::read_to_string(dir.path().join("ok/segmentation.md")).unwrap();
    assert!(md.contains("| vs as shipped, paired [95% CI] | patients better / worse |"), "{md}");

    // Model folder missing, not a folder, malformed model.json, truncated weights.
    assert_clean_failure(&eval(&dir.path().join("nope"), &folds, "0", "o1"), "nope");
    let bad = dir.path().join("badmodel");
    std::fs::create_dir(&bad).unwrap();
    std::fs::write(bad.join("model.json"), "{not json").unwrap();
    std::fs::write(bad.join("model.bpk"), b"").unwrap();
    assert_clean_failure(&eval(&bad, &folds, "0", "o2"), "model.json");
    std::fs::copy(models.join("segment/model.json"), bad.join("model.json")).unwrap();
    let w = std::fs::read(models.join("segment/model.bpk")).unwrap();
    std::fs::write(bad.join("model.bpk"), &w[..w.len() / 3]).unwrap();
    assert_clean_failure(&eval(&bad, &folds, "0", "o3"), "model.bpk");
    // A classifier's weights under a segmentation card do not fit.
    std::fs::copy(models.join("detect/model.bpk"), bad.join("model.bpk")).unwrap();
    assert_clean_failure(&eval(&bad, &folds, "0", "o4"), "do not fit");

    // Folds: malformed CSV, missing fold, a patient not in the data.
    let f2 = dir.path().join("bad_folds.csv");
    std::fs::write(&f2, "patient,fold\nx,notanumber\n").unwrap();
    assert_clean_failure(&eval(&models, &f2, "0", "o5"), "bad_folds.csv");
    assert_clean_failure(&eval(&models, &folds, "7", "o6"), "fold 7");
    std::fs::write(
        &f2,
        "patient,fold,institution,burden,tumor_slices,tumor_pixels\nTCGA_ZZ_9999_20000101,0,ZZ,0,0,0\n",
    )
    .unwrap();
    assert_clean_failure(&eval(&models, &f2, "0", "o7"), "not in");
    // The same fold as validation and test for detection.
    let r = tumorscan(&[
        "evaluate",
        "detect",
        "--model",
        p(&models),
        "--data",
        p(&data),
        "--folds",
        p(&folds),
        "--fold",
        "0",
        "--val-fold",
        "0",
        "--out",
        p(&dir.path().join("o8")),
    ]);
    assert_clean_failure(&r, "--val-fold");
    // None of the failures left an --out behind (they were made before the inputs were read).
    for o in ["o1", "o2", "o3", "o4", "o5", "o6", "o7", "o8"] {
        assert!(!dir.path().join(o).exists(), "{o} was created");
    }
    // A report inside the dataset would break it.
    let inside = eval(&models, &folds, "0", "data/report");
    assert_clean_failure(&inside, "inside --data");
    assert!(!data.join("report").exists());
    // A hand-made folds file of two columns is enough; a model whose config.json records no
    // split (the segment/ member's, edited) cannot be verified held out.
    let two = dir.path().join("two_columns.csv");
    let rows: Vec<String> = std::fs::read_to_string(&folds)
        .unwrap()
        .lines()
        .map(|l| l.split(',').take(2).collect::<Vec<_>>().join(","))
        .collect();
    std::fs::write(&two, rows.join("\n")).unwrap();
    let unsplit = dir.path().join("unsplit");
    std::fs::create_dir(&unsplit).unwrap();
    for f in ["model.json", "model.bpk"] {
        std::fs::copy(models.join("segment").join(f), unsplit.join(f)).unwrap();
    }
    let mut config = read_json(models.join("segment/config.json"));
    config.as_object_mut().unwrap().remove("split");
    std::fs::write(unsplit.join("config.json"), config.to_string()).unwrap();
    let r = eval(&unsplit, &two, "0", "unsplit-report");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let held_out = read_json(dir.path().join("unsplit-report/segmentation.json"))["held_out"].clone();
    assert!(held_out.as_str().unwrap().contains("not verified"), "{held_out}");
}

/// An ensemble bundle is checked member by member: a fold one member was trained on is refused,
/// and a missing member is named.
#[test]
fn ensemble_members_are_each_checked_for_held_out_patients() {
    let dir = tempfile::tempdir().unwrap();
    let (data, folds) = phantom_with_folds(dir.path());
    let csv = std::fs::read_to_string(&folds).unwrap();
    let in_fold0 = csv
        .lines()
        .skip(1)
        .find(|l| l.split(',').nth(1) == Some("0"))
        .and_then(|l| l.split(',').next())
        .unwrap()
        .to_string();
    let models = repo_root().join("models");
    let bundle = dir.path().join("bundle");
    for (member, train) in [("segment", vec![]), ("segment-b", vec![in_fold0.clone()])] {
        let m = bundle.join(member);
        std::fs::create_dir_all(&m).unwrap();
        for f in ["model.json", "model.bpk"] {
            std::fs::copy(models.join("segment").join(f), m.join(f)).unwrap();
        }
        let config = serde_json::json!({"split": {"train": train, "val": [], "test": []}});
        std::fs::write(m.join("config.json"), config.to_string()).unwrap();
    }
    let manifest = |ensemble: &[&str]| {
        let m = serde_json::json!({"name": "two", "detection": {"kind": "segmentation", "min_pixels": 1}, "ensemble": ensemble});
        std::fs::write(bundle.join("bundle.json"), m.to_string()).unwrap();
    };
    let eval = |out: &str| {
        tumorscan(&[
            "evaluate",
            "segment",
            "--model",
            p(&bundle),
            "--data",
            p(&data),
            "--folds",
            p(&folds),
            "--fold",
            "0",
            "--out",
            p(&dir.path().join(out)),
            "--no-cache",
        ])
    };
    manifest(&[]);
    let r = eval("one");
    assert_eq!(r.code, 0, "{}", r.stderr);
    manifest(&["segment-b"]);
    assert_clean_failure(&eval("two"), &in_fold0);
    manifest(&["segment-c"]);
    assert_clean_failure(&eval("three"), "segment-c");
}

/// `tumorscan train KIND` on the phantom data for one short epoch (batch 2, 2 steps), plus `extra`.
fn train_quick(kind: &str, data: &Path, folds: &Path, out: &Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "train",
        kind,
        "--data",
        p(data),
        "--folds",
        p(folds),
        "--val-fold",
        "1",
        "--out",
        p(out),
        "--epochs",
        "1",
        "--batch-size",
        "2",
        "--max-steps",
        "2",
        "--no-cache",
    ];
    args.extend_from_slice(extra);
    tumorscan(&args)
}

/// `tumorscan evaluate KIND` of `models` (e.g. `--model DIR`) on fold `fold` of the phantom data.
fn evaluate_quick(kind: &str, models: &[&str], data: &Path, folds: &Path, fold: &str, out: &Path) -> Run {
    let mut args = vec!["evaluate", kind];
    args.extend_from_slice(models);
    args.extend_from_slice(&[
        "--data",
        p(data),
        "--folds",
        p(folds),
        "--fold",
        fold,
        "--out",
        p(out),
        "--no-cache",
    ]);
    tumorscan(&args)
}

/// `train detect --arch efficientnet-lite0` trains through the shared engine and its model is
/// evaluated beside the segmentation candidates; a fold the classifier trained on is refused;
/// bad `--pretrained` files are clear errors.
#[test]
fn efficientnet_classifier_trains_and_is_evaluated() {
    let dir = tempfile::tempdir().unwrap();
    let (data, folds) = phantom_with_folds(dir.path());
    let run = dir.path().join("det");
    let train = |out: &Path, extra: &[&str]| train_quick("detect", &data, &folds, out, &[&["--size", "32"], extra].concat());
    let r = train(&run, &["--arch", "efficientnet-lite0"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let card = read_json(run.join("best/model.json"));
    assert_eq!(card["net"]["arch"], "efficientnet-lite0");
    let (models, best) = (repo_root().join("models"), run.join("best"));
    let eval = |fold: &str, out: &str| {
        let m = ["--model", p(&models), "--classifier", p(&best)];
        evaluate_quick("detect", &m, &data, &folds, fold, &dir.path().join(out))
    };
    let r = eval("1", "ev");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let report = std::fs::read_to_string(dir.path().join("ev/detection.md")).unwrap();
    assert!(report.contains("| classifier |"), "{report}");
    // Without --val-fold the highlighted candidate is the bundle's own rule, at its threshold.
    // (Whichever rule the built-in bundle ships.)
    assert!(report.contains("### The bundle's rule: "), "{report}");
    assert!(report.contains("the bundle's rule for its own candidate"), "{report}");
    // Every slice's scores: the context candidate makes the same calls as the pixel rule.
    let mut table = csv::Reader::from_path(dir.path().join("ev/slices.csv")).unwrap();
    let header = table.headers().unwrap().clone();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h.contains(name))
            .unwrap_or_else(|| panic!("{name}: {header:?}"))
    };
    let (rule, ctx) = (col("(scored by largest pixel probability)"), col("ranked with slice context"));
    let rows: Vec<csv::StringRecord> = table.records().map(Result::unwrap).collect();
    let score = |r: &csv::StringRecord, c: usize| r[c].parse::<f64>().unwrap();
    assert!(rows.len() >= 4 && header.len() == 5 + 7, "{header:?} {rows:?}");
    assert!(rows.iter().all(|r| (score(r, rule) >= 0.5) == (score(r, ctx) >= 0.5)), "{rows:?}");
    assert!(
        report.contains("| segmentation: cleaned-mask tumour pixels, ranked with slice context |"),
        "{report}"
    );
    assert_clean_failure(&eval("0", "ev0"), "used to train");

    let garbage = dir.path().join("weights.pth");
    std::fs::write(&garbage, b"not a pytorch file").unwrap();
    assert_clean_failure(
        &train(
            &dir.path().join("d1"),
            &["--arch", "efficientnet-lite0", "--pretrained", p(&garbage)],
        ),
        "weights.pth",
    );
    assert_clean_failure(&train(&dir.path().join("d2"), &["--pretrained", p(&garbage)]), "efficientnet-lite0");
    assert_clean_failure(
        &train(
            &dir.path().join("d3"),
            &["--arch", "efficientnet-lite0", "--pretrained", "nope.pth"],
        ),
        "nope.pth",
    );
    assert_clean_failure(
        &train(
            &dir.path().join("d4"),
            &["--arch", "efficientnet-lite0", "--encoder-lr-factor", "0.1"],
        ),
        "--encoder-lr-factor is for train segment",
    );
    assert!(!dir.path().join("d4").exists(), "a refused run leaves no folder");
    assert_clean_failure(&train(&dir.path().join("d5"), &["--crop", "32"]), "--crop is for train segment");
    assert!(!dir.path().join("d5").exists(), "a refused run leaves no folder");
}

/// `train segment --size 64 --crop 32` trains on 32x32 windows and keeps a 64x64 network: the
/// config records the crop, the network card the whole input size, and validation and
/// `evaluate segment` run on whole slices.
#[test]
fn crop_training_keeps_the_whole_input_size() {
    let dir = tempfile::tempdir().unwrap();
    let (data, folds) = phantom_with_folds(dir.path());
    let run = dir.path().join("crop");
    let r = train_quick("segment", &data, &folds, &run, &["--size", "64", "--crop", "32"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let config = read_json(run.join("config.json"));
    assert_eq!(config["train"]["augment"]["crop"].as_u64(), Some(32), "{config}");
    let card = read_json(run.join("best").join("model.json"));
    assert_eq!(card["net"]["input_size"].as_u64(), Some(64), "{card}");
    let history = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert!(history.contains("val_patient_dice"), "{history}");
    let eval = dir.path().join("eval");
    let r = evaluate_quick("segment", &["--model", p(&run.join("best"))], &data, &folds, "1", &eval);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(eval.join("segmentation.json").exists());
}

/// `train segment --slice-head W` trains the encoder's classification head beside the outlines:
/// the card and config record it, validation reports the head's ROC-AUC, and `evaluate detect
/// --classifier RUN/best` scores slices with it; a run without a trained head is not a
/// classifier, and the flag is checked.
#[test]
fn slice_head_trains_and_scores_slices() {
    let dir = tempfile::tempdir().unwrap();
    let (data, folds) = phantom_with_folds(dir.path());
    let train = |out: &Path, extra: &[&str]| train_quick("segment", &data, &folds, out, &[&["--size", "32"], extra].concat());
    let effunet = ["--arch", "efficientnet-lite0-unet"];
    let run = dir.path().join("sh");
    let r = train(&run, &[&effunet[..], &["--slice-head", "0.5"]].concat());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let card = read_json(run.join("best/model.json"));
    assert_eq!(card["net"]["slice_head"], true);
    let config = read_json(run.join("config.json"));
    assert_eq!(config["objective"]["slice_head"], 0.5);
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert!(metrics.lines().next().unwrap().contains("val_slice_head_auc"), "{metrics}");
    let models = repo_root().join("models");
    let eval = |classifier: &Path, out: &str| {
        let m = ["--model", p(&models), "--classifier", p(classifier)];
        evaluate_quick("detect", &m, &data, &folds, "1", &dir.path().join(out))
    };
    let r = eval(&run.join("best"), "ev");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let report = std::fs::read_to_string(dir.path().join("ev/detection.md")).unwrap();
    assert!(report.contains("| classifier + segmentation (mean probability) |"), "{report}");

    // Without the flag the head is untrained: not a classifier.
    let plain = dir.path().join("plain");
    let r = train(&plain, &effunet);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_clean_failure(&eval(&plain.join("best"), "ev2"), "classification head was not trained");
    for (args, message) in [
        (&["--slice-head", "0.5"][..], "--slice-head needs --arch efficientnet-lite0-unet"),
        (
            &[&effunet[..], &["--slice-head", "nan"]].concat()[..],
            "--slice-head is a loss weight",
        ),
        (
            &[&effunet[..], &["--slice-head", "-1"]].concat()[..],
            "--slice-head is a loss weight",
        ),
    ] {
        assert_clean_failure(&train(&dir.path().join("s"), args), message);
    }
}

/// `train segment --arch efficientnet-lite0-unet` trains through the shared engine, its model
/// is evaluated like any segmentation model (and refused on a fold it trained on); sizes the
/// encoder cannot take, and `--pretrained` or `--context-slices` on the plain U-Net, are clear
/// errors; its best model fine-tunes at another size (`--init-from`); a final fit's training
/// fold cannot choose detection thresholds; `--output-prior`, loss weights and augmentation
/// ranges are recorded, and checked; a network of the other encoder cannot start it.
#[test]
fn efficientnet_unet_trains_and_is_evaluated() {
    let dir = tempfile::tempdir().unwrap();
    let (data, folds) = phantom_with_folds(dir.path());
    let run = dir.path().join("seg");
    let train = |out: &Path, extra: &[&str]| train_quick("segment", &data, &folds, out, extra);
    // With 2.5D context: the neighbours' FLAIR goes in through training and evaluation; and
    // with deep supervision, whose auxiliary heads are saved with the model and loaded with it;
    // and with a decoder of its own widths and scSE attention, which the card carries to the
    // loader.
    let r = train(
        &run,
        &[
            "--arch",
            "efficientnet-lite0-unet",
            "--size",
            "32",
            "--context-slices",
            "1",
            "--deep-supervision",
            "2",
            "--decoder-widths",
            "24,12,8,8,4",
            "--decoder-attention",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let card = read_json(run.join("best/model.json"));
    assert_eq!(card["net"]["arch"], "efficientnet-lite0-unet");
    assert_eq!(card["net"]["context_slices"], 1);
    assert_eq!(card["net"]["deep_supervision"], 2);
    assert_eq!(card["net"]["decoder_widths"], serde_json::json!([24, 12, 8, 8, 4]));
    assert_eq!(card["net"]["decoder_attention"], true);
    let best = run.join("best");
    let eval = |fold: &str, out: &str| evaluate_quick("segment", &["--model", p(&best)], &data, &folds, fold, &dir.path().join(out));
    let r = eval("1", "ev");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let report = std::fs::read_to_string(dir.path().join("ev/segmentation.md")).unwrap();
    assert!(report.contains("mean per-patient Dice"), "{report}");
    assert_clean_failure(&eval("0", "ev0"), "used to train");

    // Fine-tuning its best model at a larger size; another network (here: without its decoder
    // widths) is refused.
    let tuned = dir.path().join("seg64");
    let from = ["--init-from", p(&best)];
    let r = train(
        &tuned,
        &[
            &["--arch", "efficientnet-lite0-unet", "--size", "64", "--context-slices", "1"],
            &["--deep-supervision", "2", "--decoder-widths", "24,12,8,8,4", "--decoder-attention"][..],
            &from[..],
        ]
        .concat(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let config = read_json(tuned.join("config.json"));
    assert_eq!(config["train"]["init_from"], p(&best));
    assert_eq!(config["net"]["input_size"], 64);
    assert_clean_failure(
        &train(
            &dir.path().join("s5"),
            &[&["--arch", "efficientnet-lite0-unet", "--size", "64"], &from[..]].concat(),
        ),
        "different network",
    );
    // Nor does a Lite0 network start a Lite1 one.
    assert_clean_failure(
        &train(
            &dir.path().join("s6"),
            &[
                &["--arch", "efficientnet-lite1-unet", "--size", "32", "--context-slices", "1"],
                &from[..],
            ]
            .concat(),
        ),
        "different network",
    );
    // A final fit (trained on fold 1 too) may be tested on fold 0, but no threshold is chosen
    // on fold 1 any more. (Its output layer starts at a prior, which the config records.)
    let ff = dir.path().join("ff");
    let r = train(
        &ff,
        &[
            "--size",
            "32",
            "--test-fold",
            "0",
            "--train-on-val",
            "--output-prior",
            "0.02",
            "--loss",
            "focal-tversky",
            "--tversky-alpha",
            "0.5",
            "--tversky-beta",
            "0.5",
            "--aug-scale",
            "0.15",
            "--aug-intensity",
            "0.2",
            "--aug-gamma",
            "0.5",
            "--aug-elastic",
            "2",
            "--oversample-small",
            "150",
            "--oversample-copies",
            "3",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let config = read_json(ff.join("config.json"));
    let over = &config["train"]["oversample_small"];
    assert_eq!(
        (over["below_pixels"].as_u64(), over["copies"].as_u64()),
        (Some(150), Some(3)),
        "{config}"
    );
    let prior = config["objective"]["output_prior"].as_f64().unwrap();
    assert!((prior - 0.02).abs() < 1e-6, "{config}");
    let loss = &config["objective"]["loss"];
    assert_eq!(
        (
            loss["name"].as_str(),
            loss["alpha"].as_f64(),
            loss["beta"].as_f64(),
            loss["gamma"].as_f64()
        ),
        (Some("focal-tversky"), Some(0.5), Some(0.5), Some(0.75)),
        "{config}"
    );
    // Augmentation overrides are recorded; the ranges not given keep their defaults.
    let aug = &config["train"]["augment"];
    let close = |key: &str, want: f64| (aug[key].as_f64().unwrap() - want).abs() < 1e-6;
    assert!(
        close("max_scale", 0.15)
            && close("intensity", 0.2)
            && close("max_rotation_deg", 15.0)
            && close("gamma", 0.5)
            && close("elastic", 2.0),
        "{config}"
    );
    let ff_best = ff.join("best");
    let m = ["--model", p(&ff_best), "--val-fold", "1"];
    assert_clean_failure(
        &evaluate_quick("detect", &m, &data, &folds, "0", &dir.path().join("ev-ff")),
        "--val-fold 1: thresholds cannot be chosen",
    );

    assert_clean_failure(
        &train(&dir.path().join("s1"), &["--arch", "efficientnet-lite0-unet", "--size", "48"]),
        "multiple of 32",
    );
    assert_clean_failure(
        &train(&dir.path().join("s4"), &["--size", "32", "--context-slices", "1"]),
        "--context-slices needs --arch efficientnet-lite0-unet",
    );
    assert_clean_failure(
        &train(&dir.path().join("s7"), &["--size", "32", "--tversky-alpha", "0.5"]),
        "need --loss tversky or focal-tversky",
    );
    for (args, message) in [
        (&["--aug-scale", "-0.1"][..], "--aug-scale must be between 0 and 0.5"),
        (&["--aug-intensity", "nan"][..], "--aug-intensity must be between 0 and 1"),
        (&["--aug-gamma", "3"][..], "--aug-gamma must be between 0 and 2"),
        (&["--aug-elastic", "-1"][..], "--aug-elastic must be between 0 and 32"),
        (
            &["--aug-rotation", "20", "--no-augment"][..],
            "--aug-rotation contradicts --no-augment",
        ),
        (&["--ema-decay", "1"][..], "--ema-decay must be between 0 and 1"),
        (&["--ema-decay", "nan"][..], "--ema-decay must be between 0 and 1"),
        (&["--weight-decay", "0"][..], "--weight-decay must be positive"),
        (&["--weight-decay", "nan"][..], "--weight-decay must be positive"),
        (&["--weight-decay", "2000"][..], "--weight-decay must be positive"),
        (&["--oversample-small", "0"][..], "--oversample-small is a pixel count"),
        (
            &["--crop", "32"][..],
            "--crop must be a multiple of 32, at least 32 and below --size (32)",
        ),
        (&["--crop", "16"][..], "--crop must be a multiple of 32"),
        (&["--crop", "16", "--no-augment"][..], "--crop contradicts --no-augment"),
        (
            &["--encoder-lr-factor", "0.1"][..],
            "--encoder-lr-factor needs --arch efficientnet-lite0-unet",
        ),
        (
            &["--arch", "efficientnet-lite0-unet", "--encoder-lr-factor", "2"][..],
            "--encoder-lr-factor slows the encoder",
        ),
        (
            &["--arch", "efficientnet-lite0-unet", "--encoder-lr-factor", "nan"][..],
            "--encoder-lr-factor slows the encoder",
        ),
        (
            &["--oversample-small", "500", "--oversample-copies", "1"][..],
            "--oversample-copies must be between 2 and 10",
        ),
        (
            &["--deep-supervision", "1"][..],
            "--deep-supervision needs --arch efficientnet-lite0-unet",
        ),
        (
            &["--arch", "efficientnet-lite0-unet", "--deep-supervision", "5"][..],
            "--deep-supervision is at most 4",
        ),
        (
            &["--decoder-attention"][..],
            "--decoder-attention needs --arch efficientnet-lite0-unet",
        ),
    ] {
        assert_clean_failure(&train(&dir.path().join("s8"), &[&["--size", "32"], args].concat()), message);
    }
    for bad in ["1.5", "0", "nan"] {
        assert_clean_failure(
            &train(&dir.path().join("s6"), &["--size", "32", "--output-prior", bad]),
            "--output-prior is a probability",
        );
    }
    let garbage = dir.path().join("weights.pth");
    std::fs::write(&garbage, b"not a pytorch file").unwrap();
    assert_clean_failure(
        &train(&dir.path().join("s2"), &["--size", "32", "--pretrained", p(&garbage)]),
        "efficientnet-lite0-unet",
    );
    assert_clean_failure(
        &train(
            &dir.path().join("s3"),
            &["--arch", "efficientnet-lite0-unet", "--size", "32", "--pretrained", p(&garbage)],
        ),
        "weights.pth",
    );
}

/// `evaluate pool` turns two folds' `evaluate segment|detect` outputs into one figure over all
/// their patients; the same fold twice, or a file `evaluate` did not write, is a clear error.
/// `evaluate compare` pairs two sides' patients.
#[test]
fn folds_pool_into_one_cross_validation_figure() {
    let dir = tempfile::tempdir().unwrap();
    let (data, folds) = phantom_with_folds(dir.path());
    let models = repo_root().join("models");
    let mut outs = Vec::new();
    for fold in ["0", "1"] {
        let out = dir.path().join(format!("fold{fold}"));
        for kind in ["segment", "detect"] {
            let mut args = vec!["evaluate", kind, "--model", p(&models), "--data", p(&data), "--folds", p(&folds)];
            args.extend_from_slice(&["--fold", fold, "--out", p(&out), "--force", "--no-cache"]);
            let r = tumorscan(&args);
            assert_eq!(r.code, 0, "{}", r.stderr);
        }
        outs.push(out);
    }
    let pooled = dir.path().join("cv");
    let r = tumorscan(&["evaluate", "pool", p(&outs[0]), p(&outs[1]), "--out", p(&pooled)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let md = std::fs::read_to_string(pooled.join("pooled.md")).unwrap();
    assert!(md.contains("## Segmentation pooled over 2 folds (4 patients)"), "{md}");
    assert!(md.contains("Every fold is a verified held-out test fold"), "{md}");
    assert!(md.contains("## Detection pooled over 2 folds"), "{md}");
    // The pooled mean is the mean over the four patients of the two folds.
    let json = read_json(pooled.join("pooled.json"));
    let dice: Vec<f64> = outs
        .iter()
        .flat_map(|o| {
            let v = read_json(o.join("segmentation.json"));
            v["report"]["per_patient"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["dice"].as_f64().unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(dice.len(), 4);
    let mean = json["segmentation"]["patient_dice_mean"]["value"].as_f64().unwrap();
    assert!((mean - dice.iter().sum::<f64>() / 4.0).abs() < 1e-9, "{mean} vs {dice:?}");
    // Calibration of the shipped rule's score: each fold's reliability table holds its slices,
    // and the pooled Brier score is the folds' weighted by slices.
    let (mut squared, mut slices) = (0.0, 0.0);
    const COUNTS: [&str; 4] = ["tp", "fp", "tn", "fn_"];
    let mut tally = [[0u64; 4]; 11];
    for o in &outs {
        assert!(o.join("calibration.png").exists());
        let v = read_json(o.join("detection.json"));
        let best = v["best_on_validation"].as_str().unwrap();
        let c = v["candidates"].as_array().unwrap().iter().find(|c| c["name"] == best).unwrap();
        let cal = &c["report"]["calibration"];
        let n: u64 = cal["bins"].as_array().unwrap().iter().map(|b| b["slices"].as_u64().unwrap()).sum();
        assert_eq!(n, c["report"]["slices"].as_u64().unwrap());
        let brier = cal["brier"]["value"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&brier), "{cal}");
        (squared, slices) = (squared + brier * n as f64, slices + n as f64);
        // Its calls at fixed thresholds; at the rule's own threshold they are the rule's calls.
        let points = c["report"]["operating_points"].as_array().unwrap();
        let at_rule = points.iter().find(|p| p["threshold"] == c["report"]["threshold"]).unwrap();
        assert_eq!(at_rule["confusion"], c["report"]["confusion"]);
        for (i, p) in points.iter().enumerate() {
            for (j, k) in COUNTS.iter().enumerate() {
                tally[i][j] += p["confusion"][k].as_u64().unwrap();
            }
        }
    }
    // Pooled: the folds' counts summed threshold by threshold.
    let pooled_points = json["detection"]["operating_points"].as_array().unwrap();
    assert_eq!(pooled_points.len(), tally.len());
    for (p, t) in pooled_points.iter().zip(&tally) {
        let counts: Vec<u64> = COUNTS.iter().map(|k| p["confusion"][k].as_u64().unwrap()).collect();
        assert_eq!(&counts, t);
    }
    assert!(md.contains("The folds' calls at other thresholds of the score, summed"), "{md}");
    let pooled_brier = json["detection"]["calibration"]["brier"].as_f64().unwrap();
    assert!((pooled_brier - squared / slices).abs() < 1e-9, "{pooled_brier}");
    assert!(md.contains("Calibration of the pooled slices' scores: Brier score"), "{md}");
    // Each variant is paired with the shipped clean-up over the four patients; the shipped
    // configuration's own row ("as shipped") differs by nothing from it.
    let effects = json["segmentation"]["variant_effects"].as_array().unwrap();
    let rows = read_json(outs[0].join("segmentation.json"))["postprocessing"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(effects.len(), rows, "{effects:?}");
    assert_eq!(effects[0][0], "as shipped");
    assert_eq!(effects[0][1]["difference"]["value"].as_f64(), Some(0.0));
    assert_eq!(effects[0][1]["tied"].as_u64(), Some(4));
    assert!(md.contains("| vs as shipped, paired [95% CI] | patients better / worse |"), "{md}");

    assert_clean_failure(
        &tumorscan(&["evaluate", "pool", p(&outs[0]), p(&outs[0]), "--out", p(&dir.path().join("cv2"))]),
        "fold 0 is in both",
    );
    // Detection results list their patients: one fold's file relabelled as another fold is
    // refused (it was counted twice).
    let mut relabelled = read_json(outs[0].join("detection.json"));
    relabelled["fold"] = serde_json::json!(1);
    let relabelled_file = dir.path().join("relabelled.json");
    std::fs::write(&relabelled_file, relabelled.to_string()).unwrap();
    let twice = tumorscan(&[
        "evaluate",
        "pool",
        p(&outs[0].join("detection.json")),
        p(&relabelled_file),
        "--out",
        p(&dir.path().join("cv4")),
    ]);
    assert_clean_failure(&twice, "is in both");
    let notes = dir.path().join("notes.json");
    std::fs::write(&notes, b"{\"hello\": 1}").unwrap();
    assert_clean_failure(
        &tumorscan(&["evaluate", "pool", p(&notes), "--out", p(&dir.path().join("cv3"))]),
        "notes.json",
    );
    // An existing report is not overwritten without --force.
    assert_clean_failure(&tumorscan(&["evaluate", "pool", p(&outs[0]), "--out", p(&pooled)]), "--force");

    // `evaluate compare`: a model against itself (its results copied, as a rerun would give)
    // differs by nothing on every patient; the same files on both sides are refused; sides
    // holding different patients, or different kinds of result, are clear errors.
    let cmp = dir.path().join("cmp");
    let copies: Vec<std::path::PathBuf> = outs
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let c = dir.path().join(format!("copy{i}"));
            std::fs::create_dir(&c).unwrap();
            for f in ["segmentation.json", "detection.json"] {
                std::fs::copy(o.join(f), c.join(f)).unwrap();
            }
            c
        })
        .collect();
    let both = [p(&outs[0]), p(&outs[1])];
    let both_copies = [p(&copies[0]), p(&copies[1])];
    let compare = |candidate: &[&str]| {
        let args = [
            &["evaluate", "compare", "--baseline"],
            &both[..],
            &["--candidate"],
            candidate,
            &["--out", p(&cmp)],
        ]
        .concat();
        tumorscan(&args)
    };
    let seg_only = outs[1].join("segmentation.json");
    for candidate in [&both[..], &[p(&copies[0]), p(&seg_only)][..]] {
        assert_clean_failure(&compare(candidate), "a result compared with itself");
    }
    assert!(!cmp.exists(), "a refused comparison writes nothing");
    let r = compare(&both_copies);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let json = read_json(cmp.join("compare.json"));
    let c = &json["comparison"];
    assert_eq!((c["patients"].as_u64(), c["tied"].as_u64()), (Some(4), Some(4)), "{json}");
    assert_eq!(
        (c["difference"]["value"].as_f64(), c["p_value"].as_f64()),
        (Some(0.0), Some(1.0)),
        "{json}"
    );
    assert!((c["baseline_mean"].as_f64().unwrap() - mean).abs() < 1e-9, "{json}");
    let md = std::fs::read_to_string(cmp.join("compare.md")).unwrap();
    assert!(md.contains("## Paired comparison over 4 patients"), "{md}");
    assert!(md.contains("Every fold on both sides is a verified held-out test fold"), "{md}");
    let (cmp2, det_only) = (dir.path().join("cmp2"), outs[0].join("detection.json"));
    let (out2, det_only) = (p(&cmp2), p(&det_only));
    assert_clean_failure(
        &tumorscan(&[
            "evaluate",
            "compare",
            "--baseline",
            p(&outs[0]),
            "--candidate",
            p(&outs[1]),
            "--out",
            out2,
        ]),
        "different patients",
    );
    assert_clean_failure(
        &tumorscan(&[
            "evaluate",
            "compare",
            "--baseline",
            det_only,
            "--candidate",
            p(&copies[0]),
            "--out",
            out2,
        ]),
        "different kinds of result",
    );
    // A detection file whose slice list disagrees with its counts cannot be paired.
    let mut bad = read_json(outs[0].join("detection.json"));
    for c in bad["candidates"].as_array_mut().unwrap() {
        c["report"]["misclassified"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"patient": "X", "slice": 999}));
    }
    let bad_file = dir.path().join("bad-detection.json");
    std::fs::write(&bad_file, serde_json::to_string(&bad).unwrap()).unwrap();
    assert_clean_failure(
        &tumorscan(&[
            "evaluate",
            "compare",
            "--baseline",
            p(&bad_file),
            "--candidate",
            det_only,
            "--out",
            out2,
        ]),
        "cannot be paired slice by slice",
    );
    // Detection alone pairs slice by slice: against itself nothing is discordant.
    let det_copy = copies[0].join("detection.json");
    let r = tumorscan(&[
        "evaluate",
        "compare",
        "--baseline",
        det_only,
        "--candidate",
        p(&det_copy),
        "--out",
        out2,
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let json = read_json(cmp2.join("compare.json"));
    let d = &json["detection"];
    assert_eq!(
        (d["fixed"].as_u64(), d["broken"].as_u64(), d["mcnemar_p"].as_f64()),
        (Some(0), Some(0), Some(1.0)),
        "{json}"
    );
    assert!(json["comparison"].is_null(), "{json}");
    let det_json = read_json(outs[0].join("detection.json"));
    let slices = det_json["candidates"][0]["report"]["slices"].as_u64().unwrap();
    assert_eq!(d["slices"].as_u64(), Some(slices), "{json}");
    // The folders of both evaluations give both comparisons.
    let md = std::fs::read_to_string(cmp.join("compare.md")).unwrap();
    assert!(md.contains("## Paired detection over"), "{md}");
}

/// A copy of `folds` without `drop`'s row and with `extra` rows appended (`patient,fold` each).
fn edited_folds(folds: &Path, out: &Path, drop: Option<&str>, extra: &[(&str, usize)]) {
    let csv = std::fs::read_to_string(folds).unwrap();
    let mut lines: Vec<String> = csv
        .lines()
        .filter(|l| drop.is_none_or(|d| !l.starts_with(&format!("{d},"))))
        .map(String::from)
        .collect();
    lines.extend(extra.iter().map(|(id, f)| format!("{id},{f},ZZ,0,1,10")));
    std::fs::write(out, lines.join("\n") + "\n").unwrap();
}

/// The patient ids of `fold` in `folds`.
fn fold_ids(folds: &Path, fold: usize) -> Vec<String> {
    tumorscan_data::split::read_folds(folds)
        .unwrap()
        .into_iter()
        .filter(|r| r.fold == fold)
        .map(|r| r.patient)
        .collect()
}

/// A folds file must put every patient of --data in a fold (train and evaluate refuse one that
/// leaves a patient out, naming it); listed patients absent from --data are refused in the
/// folds a command uses, and only noted in the others (a copied subset of patients).
#[test]
fn folds_must_list_every_patient_of_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let (data, folds) = phantom_with_folds(dir.path());
    let models = repo_root().join("models");
    let left_out = fold_ids(&folds, 1)[0].clone();
    let partial = dir.path().join("partial.csv");
    edited_folds(&folds, &partial, Some(&left_out), &[]);
    let m = ["--model", p(&models)];
    for kind in ["segment", "detect"] {
        let out = dir.path().join(format!("ev-{kind}"));
        let r = evaluate_quick(kind, &m, &data, &partial, "0", &out);
        assert_clean_failure(&r, &left_out);
        assert!(r.stderr.contains("in no fold"), "{}", r.stderr);
        let r = train_quick(kind, &data, &partial, &dir.path().join(format!("tr-{kind}")), &["--size", "32"]);
        assert_clean_failure(&r, &left_out);
        assert!(!dir.path().join(format!("tr-{kind}")).exists(), "a refused run leaves no folder");
    }
    // A listed patient that --data lacks: fine in a fold not evaluated (noted), refused in the
    // evaluated fold or --val-fold, and in a training fold.
    let ghost = "TCGA_ZZ_9999_20000101";
    let extra = dir.path().join("extra.csv");
    edited_folds(&folds, &extra, None, &[(ghost, 1)]);
    let r = evaluate_quick("segment", &m, &data, &extra, "0", &dir.path().join("ev-ok"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains(ghost) && r.stderr.contains("note:"), "{}", r.stderr);
    assert_clean_failure(&evaluate_quick("segment", &m, &data, &extra, "1", &dir.path().join("ev-1")), ghost);
    let val = ["--model", p(&models), "--val-fold", "1"];
    assert_clean_failure(&evaluate_quick("detect", &val, &data, &extra, "0", &dir.path().join("ev-v")), ghost);
    assert_clean_failure(
        &train_quick("segment", &data, &extra, &dir.path().join("tr-x"), &["--size", "32"]),
        ghost,
    );
    // An empty folds file is named as one.
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, b"").unwrap();
    let r = evaluate_quick("segment", &m, &data, &empty, "0", &dir.path().join("ev-e"));
    assert_clean_failure(&r, "empty folds CSV");
    assert!(!r.stderr.contains("image"), "{}", r.stderr);
    assert_clean_failure(
        &train_quick("detect", &data, &empty, &dir.path().join("tr-e"), &[]),
        "empty folds CSV",
    );
}

/// Clear messages: --out an existing file, a classifier given as --model.
#[test]
fn evaluate_names_a_file_as_out_and_points_a_classifier_to_classifier() {
    let dir = tempfile::tempdir().unwrap();
    let (data, folds) = phantom_with_folds(dir.path());
    let models = repo_root().join("models");
    let file = dir.path().join("report.txt");
    std::fs::write(&file, b"mine").unwrap();
    let r = evaluate_quick("segment", &["--model", p(&models)], &data, &folds, "0", &file);
    assert_clean_failure(&r, "exists and is not a folder");
    assert!(r.stderr.contains("report.txt"), "{}", r.stderr);
    assert_eq!(std::fs::read(&file).unwrap(), b"mine");
    let classifier = models.join("detect");
    for kind in ["detect", "segment"] {
        let r = evaluate_quick(kind, &["--model", p(&classifier)], &data, &folds, "0", &dir.path().join(kind));
        assert_clean_failure(&r, "--classifier");
        assert!(r.stderr.contains("slice classifier"), "{}", r.stderr);
    }
}

/// best/ carries its run's split: a copy evaluated away from its run folder still refuses the
/// folds it trained on, for the segmentation model and the classifier, and a refusal names
/// which model trained on which fold.
#[test]
fn a_copied_best_model_still_refuses_its_training_fold() {
    let dir = tempfile::tempdir().unwrap();
    let (data, folds) = phantom_with_folds(dir.path());
    let tiny = ["--size", "32", "--features", "4"];
    let copy_best = |run: &Path, to: &str| {
        let copy = dir.path().join(to);
        std::fs::create_dir(&copy).unwrap();
        for e in std::fs::read_dir(run.join("best")).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), copy.join(e.file_name())).unwrap();
        }
        copy
    };
    // --val-fold 1, no test fold: fold 0 trains.
    let seg = dir.path().join("seg");
    let r = train_quick("segment", &data, &folds, &seg, &[&tiny[..], &["--depth", "2"]].concat());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let config = read_json(seg.join("best/config.json"));
    assert_eq!(config["split"], read_json(seg.join("config.json"))["split"]);
    let seg_copy = copy_best(&seg, "seg-copy");
    let r = evaluate_quick("segment", &["--model", p(&seg_copy)], &data, &folds, "0", &dir.path().join("e0"));
    assert_clean_failure(&r, "used to train the model");
    let r = evaluate_quick("segment", &["--model", p(&seg_copy)], &data, &folds, "1", &dir.path().join("e1"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("VALIDATION fold"), "{}", r.stderr);

    let det = dir.path().join("det");
    let r = train_quick("detect", &data, &folds, &det, &[&tiny[..], &["--stages", "2"]].concat());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let det_copy = copy_best(&det, "det-copy");
    let models = repo_root().join("models");
    let m = ["--model", p(&models), "--classifier", p(&det_copy)];
    let r = evaluate_quick("detect", &m, &data, &folds, "0", &dir.path().join("d0"));
    assert_clean_failure(&r, "of the evaluated fold 0 was used to train the classifier");
    // Thresholds on the classifier's training fold: the message blames the classifier and the
    // validation fold, not the evaluated fold.
    let m = [&m[..], &["--val-fold", "0"]].concat();
    let r = evaluate_quick("detect", &m, &data, &folds, "1", &dir.path().join("d1"));
    assert_clean_failure(&r, "--val-fold 0: thresholds cannot be chosen");
    assert!(
        r.stderr.contains("of validation fold 0 was used to train the classifier") && !r.stderr.contains("evaluated fold"),
        "{}",
        r.stderr
    );
}

/// Network shapes that cannot be built, and hyper-parameters that make no sense, are refused
/// before anything is written: no panic, no run folder left behind.
#[test]
fn impossible_networks_and_settings_are_refused_before_out_exists() {
    let dir = tempfile::tempdir().unwrap();
    let (data, folds) = phantom_with_folds(dir.path());
    let cases: &[(&str, &[&str], &str)] = &[
        ("segment", &["--features", "0"], "--features must be at least 1"),
        ("detect", &["--features", "0"], "--features must be at least 1"),
        ("segment", &["--size", "32", "--depth", "6"], "--depth 6"),
        (
            "segment",
            &["--size", "48", "--depth", "5"],
            "--size must be a multiple of 2^--depth",
        ),
        ("segment", &["--size", "32", "--depth", "99"], "--depth 99"),
        ("detect", &["--stages", "9"], "--stages 9"),
        ("detect", &["--size", "32", "--stages", "6"], "use --stages 5 or less"),
        ("segment", &["--size", "4096"], "--size is at most 1024"),
        ("segment", &["--lr", "0"], "--lr must be a positive number"),
        ("segment", &["--lr", "-0.001"], "--lr must be a positive number"),
        ("detect", &["--lr", "nan"], "--lr must be a positive number"),
        ("segment", &["--lr", "inf"], "--lr must be a positive number"),
        ("segment", &["--empty-per-tumor", "-1"], "--empty-per-tumor is a count"),
        ("detect", &["--empty-per-tumor", "nan"], "--empty-per-tumor is a count"),
        ("segment", &["--max-steps", "0"], "--max-steps must be at least 1"),
        ("detect", &["--patience", "0"], "--patience must be at least 1"),
    ];
    for (i, (kind, args, message)) in cases.iter().enumerate() {
        let out = dir.path().join(format!("run{i}"));
        let mut all = vec!["train", kind, "--data", p(&data), "--folds", p(&folds), "--val-fold", "1"];
        all.extend_from_slice(&["--out", p(&out), "--epochs", "1", "--no-cache"]);
        all.extend_from_slice(args);
        let r = tumorscan(&all);
        assert_clean_failure(&r, message);
        assert!(!out.exists(), "{args:?} left {}", out.display());
    }
}
