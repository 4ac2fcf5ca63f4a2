//! The one place that picks the compute backend. Everything else receives a [`burn::prelude::Device`].
//!
//! The default build is pure Rust (burn's `flex` CPU backend). Building with the cargo feature
//! `cuda` adds NVIDIA GPUs; model code does not change.

use burn::prelude::Device;

/// Which backend to run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum BackendKind {
    /// burn `flex`: pure-Rust CPU (always available).
    Flex,
    /// burn `cuda`, device index (needs the `cuda` feature).
    Cuda(usize),
}

impl std::str::FromStr for BackendKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" | "flex" => Ok(Self::Flex),
            s if s.starts_with("cuda") => {
                let idx = s.trim_start_matches("cuda").trim_start_matches(':');
                let idx = if idx.is_empty() {
                    0
                } else {
                    idx.parse().map_err(|_| format!("bad CUDA device '{s}'"))?
                };
                Ok(Self::Cuda(idx))
            }
            _ => Err(format!("unknown device '{s}': use cpu, cuda or cuda:N")),
        }
    }
}

/// Whether `device` is the pure-Rust CPU backend (with or without autodiff).
pub fn is_cpu(device: &Device) -> bool {
    *device == Device::flex()
}

/// A chosen backend, able to hand out inference and training devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComputeDevice(pub BackendKind);

impl ComputeDevice {
    /// The pure-Rust CPU backend.
    pub fn cpu() -> Self {
        Self(BackendKind::Flex)
    }

    /// Device for inference (no autodiff). Errors when the backend was not compiled in.
    pub fn inference(&self) -> Result<Device, String> {
        match self.0 {
            BackendKind::Flex => Ok(Device::flex()),
            #[cfg(feature = "cuda")]
            BackendKind::Cuda(i) => {
                check_cuda(i)?;
                Ok(Device::cuda(i))
            }
            #[cfg(not(feature = "cuda"))]
            BackendKind::Cuda(_) => Err("this build has no CUDA support: rebuild with `--features cuda`".into()),
        }
    }

    /// Device for training (autodiff on top of the inference device).
    pub fn training(&self) -> Result<Device, String> {
        Ok(self.inference()?.autodiff())
    }
}

/// Fails with a message (instead of burn's panic on a worker thread) when the NVIDIA driver is
/// missing or has no device `index`.
#[cfg(feature = "cuda")]
fn check_cuda(index: usize) -> Result<(), String> {
    use cudarc::driver::{result, sys};
    // SAFETY: only tries to load libcuda and looks a symbol up; nothing is called through it.
    if !unsafe { sys::is_culib_present() } {
        return Err("no NVIDIA driver found (libcuda.so could not be loaded): use --device cpu".into());
    }
    result::init().map_err(|e| format!("the NVIDIA driver failed to start: {e}"))?;
    let count = result::device::get_count().map_err(|e| format!("counting CUDA devices failed: {e}"))?;
    if index >= usize::try_from(count).unwrap_or(0) {
        return Err(format!("cuda:{index} asked for, but this machine has {count} CUDA device(s)"));
    }
    Ok(())
}

/// Keeps freed activation buffers in the process heap instead of handing them back to the
/// kernel. Why: glibc serves blocks above its (adaptive) mmap threshold with fresh pages and
/// unmaps them on free, so every layer of a training step paid page faults and zeroing for
/// its new buffers (~20 % of a ResUNet step was kernel time). A fixed 32 MiB threshold (glibc's
/// maximum) and a 1 GiB trim threshold cut a CPU training step by ~25 % at the same peak RSS
/// (`bench/PROFILE.md`). Blocks above 32 MiB were still mapped afresh each time (the
/// EfficientNet U-Net's activations at 192x192, batch 16, are 40-60 MB: ~12 % of its step in
/// page clearing), so the main heap serves every size (`M_MMAP_MAX` 0; a thread's own arena
/// still maps what its heap cannot hold): steps ~10 % faster, peak RSS within 2 %. Call once
/// at start-up, before threads allocate; no-op off glibc.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_MMAP_MAX, 0);
    }
}
