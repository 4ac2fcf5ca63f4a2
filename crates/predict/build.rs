//! Compiles every segmentation network of the built-in bundle (`models/segment*/` with
//! `model.json` + `model.bpk`) into the binary, so an ensemble named in `bundle.json` needs no
//! code change. Writes `BUILTIN_SEGMENTERS` to `$OUT_DIR/builtin_segmenters.rs`.

use std::path::PathBuf;

fn main() {
    let models = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")).join("../../models");
    println!("cargo:rerun-if-changed={}", models.display());
    let mut folders: Vec<(String, PathBuf)> = std::fs::read_dir(&models)
        .expect("models/ beside the workspace")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let dir = e.path();
            (name.starts_with("segment") && dir.join("model.json").is_file() && dir.join("model.bpk").is_file()).then_some((name, dir))
        })
        .collect();
    folders.sort();
    let mut code = String::from("static BUILTIN_SEGMENTERS: &[(&str, &str, &[u8])] = &[\n");
    for (name, dir) in &folders {
        let (card, weights) = (dir.join("model.json"), dir.join("model.bpk"));
        println!("cargo:rerun-if-changed={}", card.display());
        println!("cargo:rerun-if-changed={}", weights.display());
        code.push_str(&format!(
            "    ({name:?}, include_str!({:?}), include_bytes!({:?})),\n",
            card.display().to_string(),
            weights.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("builtin_segmenters.rs");
    std::fs::write(out, code).expect("writing builtin_segmenters.rs");
}
