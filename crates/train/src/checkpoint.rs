//! Crash-safe checkpoints: files are written under a temporary name, synced and renamed;
//! the epoch's weights and optimizer files carry the epoch in their name and `state.json`
//! (renamed last) points at them, so a kill at any moment leaves the previous checkpoint whole.

use anyhow::{Context, Result};
use burn::module::Module;
use burn::optim::ModuleOptimizer;
use std::path::{Path, PathBuf};

/// Write bytes atomically (temp name in the same folder, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    tumorscan_data::table::write_atomic(path, bytes).with_context(|| format!("writing {}", path.display()))
}

fn tmp_of(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp{}", std::process::id()))
}

fn sync_rename(tmp: &Path, path: &Path) -> Result<()> {
    std::fs::File::open(tmp)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("syncing {}", tmp.display()))?;
    std::fs::rename(tmp, path).with_context(|| format!("renaming to {}", path.display()))
}

/// Save module weights (burnpack) atomically.
pub fn save_module<M: Module>(net: &M, path: &Path) -> Result<()> {
    let tmp = tmp_of(path);
    net.clone()
        .save_file(&tmp)
        .map_err(|e| anyhow::anyhow!("{e:?}"))
        .with_context(|| format!("saving {}", path.display()))?;
    sync_rename(&tmp, path)
}

/// Load module weights saved by [`save_module`].
pub fn load_module<M: Module>(net: M, path: &Path) -> Result<M> {
    net.try_load_file(path)
        .map_err(|e| anyhow::anyhow!("{e:?}"))
        .with_context(|| format!("loading weights {}", path.display()))
}

/// Save optimizer state atomically.
pub fn save_optimizer(optim: &ModuleOptimizer, path: &Path) -> Result<()> {
    let tmp = tmp_of(path);
    optim
        .save(&tmp)
        .map_err(|e| anyhow::anyhow!("{e:?}"))
        .with_context(|| format!("saving {}", path.display()))?;
    sync_rename(&tmp, path)
}

/// Load optimizer state saved by [`save_optimizer`].
pub fn load_optimizer(optim: ModuleOptimizer, path: &Path) -> Result<ModuleOptimizer> {
    optim
        .load(path)
        .map_err(|e| anyhow::anyhow!("{e:?}"))
        .with_context(|| format!("loading optimizer {}", path.display()))
}
