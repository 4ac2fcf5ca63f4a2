//! Helpers shared by the end-to-end tests: run the real binary, build small datasets.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Output of one run of the binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// A path as a command-line argument (test paths are UTF-8).
pub fn p(path: &Path) -> &str {
    path.to_str().expect("UTF-8 test path")
}

/// A JSON file the binary wrote.
pub fn read_json(path: impl AsRef<Path>) -> serde_json::Value {
    let path = path.as_ref();
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display())))
        .unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// The binary under test: this build's, or the one `TUMORSCAN_BIN` names (to run these tests
/// against another build, e.g. an older one, to check that a test fails without its fix).
pub fn binary() -> PathBuf {
    std::env::var_os("TUMORSCAN_BIN").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_tumorscan")), PathBuf::from)
}

/// Run `tumorscan` with arguments from the repository root.
pub fn tumorscan(args: &[&str]) -> Run {
    let out = Command::new(binary())
        .args(args)
        .current_dir(repo_root())
        .env("TUMORSCAN_CACHE", std::env::temp_dir().join("tumorscan-test-cache"))
        .output()
        .expect("binary runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

/// The workspace root (where README.md and samples/ live).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// Write a phantom dataset of `patients` x `slices` PNG slices.
pub fn phantom_dir(dir: &Path, patients: usize, slices: u32) {
    let ds = tumorscan_data::phantom::phantom_dataset(patients, slices, 32);
    tumorscan_data::phantom::write_dataset(&ds, dir).expect("write phantoms");
}

/// Assert a failed run with a clear message naming `needle`, and no panic.
pub fn assert_clean_failure(r: &Run, needle: &str) {
    assert_ne!(r.code, 0, "should fail; stdout: {}", r.stdout);
    assert!(!r.stderr.contains("panicked"), "panic: {}", r.stderr);
    assert!(r.stderr.contains(needle), "message should name {needle}: {}", r.stderr);
}

/// Like [`tumorscan`], but kills the run after `secs` seconds (code -1, stderr says so), so a
/// run that would never end fails its test instead of hanging it.
pub fn tumorscan_within(secs: u64, args: &[&str]) -> Run {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = Command::new(binary())
        .args(args)
        .current_dir(repo_root())
        .env("TUMORSCAN_CACHE", std::env::temp_dir().join("tumorscan-test-cache"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    // Read both pipes on threads: a full pipe would otherwise stall the child.
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = r.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code().unwrap_or(-1);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break -1;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut stderr = err.join().unwrap_or_default();
    if code == -1 {
        stderr.push_str(&format!("\n(timed out after {secs} s)"));
    }
    Run {
        code,
        stdout: out.join().unwrap_or_default(),
        stderr,
    }
}
