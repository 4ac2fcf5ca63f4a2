//! One training process per run folder: `out/.tumorscan-train.lock` holds the process id of the
//! training working there. Why: a restart script that runs `--resume` while the first process
//! is still alive (under `nohup`, say) would otherwise write the same checkpoints from two
//! processes, and a run found unstarted is cleared before it starts again.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The lock file's name inside the run folder.
pub const LOCK_FILE: &str = ".tumorscan-train.lock";

/// Held while a training works in its folder; removed when dropped. A lock whose process has
/// gone (killed) is taken over. Whether a process lives is read from `/proc`, so elsewhere every
/// lock counts as gone and nothing is refused.
#[derive(Debug)]
pub struct RunLock(PathBuf);

impl RunLock {
    /// Take the lock of `out` (created if missing), or say which process holds it.
    pub fn acquire(out: &Path) -> Result<RunLock> {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        let path = out.join(LOCK_FILE);
        // Twice: a stale lock is removed once, then taken like a free one.
        for _ in 0..2 {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    write!(f, "{}", std::process::id()).with_context(|| format!("writing {}", path.display()))?;
                    return Ok(RunLock(path));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path).ok().and_then(|s| s.trim().parse::<u32>().ok());
                    match holder {
                        // This process's own id left by an earlier process of that id (reused).
                        Some(pid) if pid != std::process::id() && Path::new("/proc").join(pid.to_string()).exists() => bail!(
                            "another training (process {pid}) is working in {}; wait for it or stop it, or choose another --out (if no such training runs, delete {})",
                            out.display(),
                            path.display()
                        ),
                        // Its process has gone (or the file is not a lock's): a killed run's.
                        _ => {
                            std::fs::remove_file(&path).with_context(|| format!("removing the stale {}", path.display()))?;
                        }
                    }
                }
                Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
            }
        }
        bail!("could not take {}: another process keeps taking it", path.display())
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A living holder is named and refused; a dead holder's lock is taken over; dropping
    /// releases it.
    #[test]
    #[cfg(target_os = "linux")]
    fn one_training_per_folder() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        let lock = RunLock::acquire(&out).unwrap();
        drop(lock);
        assert!(!out.join(LOCK_FILE).exists());
        // Another living process holds it.
        let mut other = std::process::Command::new("sleep").arg("60").spawn().unwrap();
        std::fs::write(out.join(LOCK_FILE), other.id().to_string()).unwrap();
        let err = RunLock::acquire(&out).unwrap_err().to_string();
        other.kill().unwrap();
        other.wait().unwrap();
        assert!(
            err.contains(&format!("process {}", other.id())) && err.contains("choose another --out"),
            "{err}"
        );
        // Gone now: taken over.
        drop(RunLock::acquire(&out).unwrap());
        // A killed run's lock: no process has this id (above the kernel's pid_max).
        std::fs::write(out.join(LOCK_FILE), "4194305").unwrap();
        let lock = RunLock::acquire(&out).unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join(LOCK_FILE)).unwrap(),
            std::process::id().to_string()
        );
        drop(lock);
        std::fs::write(out.join(LOCK_FILE), "not a pid").unwrap();
        assert!(RunLock::acquire(&out).is_ok());
    }
}
