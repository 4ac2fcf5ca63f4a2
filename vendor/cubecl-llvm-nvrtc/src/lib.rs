//! Stand-in for `cubecl-llvm` 0.11.3 that lets `cubecl-cuda` build without LLVM.
//!
//! `cubecl-cuda` always links `cubecl-llvm` (its second, LLVM/pliron compiler), whose build script
//! downloads a prebuilt LLVM from GitHub: impossible offline. tumorscan enables `cubecl-cuda`'s
//! `cpp` feature, which makes the CUDA C++ -> NVRTC compiler the one used, so only the types
//! `cubecl-cuda` names are needed here. Compiling through this stub's LLVM path returns an error;
//! it is never selected while the `cpp` feature is on. The two copied files
//! (`nvptx/ptx_version.rs`, `shared/lowered_features.rs`) are unchanged from cubecl-llvm 0.11.3
//! (MIT OR Apache-2.0, Tracel Technologies).

pub mod nvptx;
pub mod shared;

use cubecl_core::ir::amd::GfxArch;
use cubecl_core::ir::nvidia::SmArch;
use cubecl_core::prelude::KernelDefinition;
use cubecl_environment::backtrace::BackTrace;
use cubecl_runtime::compiler::{CompilationError, Compiler};
use cubecl_runtime::kernel::BufferIOAttr;
use nvptx::ptx_version::PtxVersion;

/// Compilation targets of the real crate that `cubecl-cuda` names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LlvmTarget {
    /// Host CPU (unused here).
    #[default]
    Cpu,
    /// NVIDIA PTX.
    Nvptx,
}

/// Options of the real crate's compiler (fields `cubecl-cuda` sets).
#[derive(Clone, Debug, Default)]
pub struct PlironOptions {
    /// AMDGPU architecture (unused).
    pub arch: Option<GfxArch>,
    /// NVPTX architecture.
    pub sm_arch: Option<SmArch>,
    /// PTX version to emit.
    pub ptx_version: Option<PtxVersion>,
    /// Scalars and metadata in the kernel parameter block.
    pub grid_constants: bool,
}

/// A compiled PTX module (never produced by this stub).
#[derive(Clone, Debug)]
pub struct NvptxModule {
    /// NUL-terminated PTX assembly.
    pub ptx: Vec<core::ffi::c_char>,
    /// Kernel entry point symbol.
    pub entrypoint: String,
    /// IR for logging and cache keys.
    pub ir: String,
    /// Shared memory required per launch, in bytes.
    pub shared_memory_size: usize,
    /// Buffer access modes in binding order.
    pub io: Vec<BufferIOAttr>,
}

/// Compiled artifact.
#[derive(Clone, Debug)]
pub enum PlironArtifact {
    /// PTX for the CUDA driver.
    NvptxCode(NvptxModule),
}

impl core::fmt::Display for PlironArtifact {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PlironArtifact::NvptxCode(m) => f.write_str(&m.ir),
        }
    }
}

/// The LLVM compiler's place holder: every compile fails with a message naming the fix.
#[derive(Clone, Debug)]
pub struct PlironCompiler {
    /// Target the real compiler would lower to.
    pub target: LlvmTarget,
}

impl Compiler for PlironCompiler {
    type Representation = PlironArtifact;
    type CompilationOptions = PlironOptions;

    fn compile(&mut self, _kernel: KernelDefinition, _options: &PlironOptions) -> Result<PlironArtifact, CompilationError> {
        Err(CompilationError::Generic {
            reason: "this build has no LLVM backend (vendor/cubecl-llvm-nvrtc); enable cubecl-cuda's `cpp` feature to compile through NVRTC".into(),
            backtrace: BackTrace::capture(),
        })
    }

    fn extension(&self) -> &'static str {
        "ll"
    }

    fn lang_tag(&self) -> &'static str {
        "llvm"
    }
}
