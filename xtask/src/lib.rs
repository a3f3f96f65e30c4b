//! The parts of `cargo xtask` that are libraries, so the tests can run them too: the soak
//! matrix (`cargo xtask soak`, and its short version in `xtask/tests/soak_short.rs`) and the
//! fuzz targets' seed inputs.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod fuzz_seeds;
pub mod soak;
