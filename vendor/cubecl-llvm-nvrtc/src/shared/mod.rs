//! Device-feature narrowing (only applied by cubecl-cuda on its LLVM path; kept so it compiles).
pub mod lowered_features;
