//! The one NVPTX item cubecl-cuda reads even on its NVRTC path.
pub mod ptx_version;
