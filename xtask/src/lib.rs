//! The parts of `cargo xtask` that are libraries, so the tests can run them too: the soak
//! matrix (`cargo xtask soak`, and its short version in `xtask/tests/soak_short.rs`), the
//! fuzz targets' seed inputs, and the conformance suite's launcher of real Zephyr servers
//! (`cargo xtask conformance`).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod conformance;
pub mod fuzz_seeds;
pub mod soak;
