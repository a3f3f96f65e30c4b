//! What the CLI's peer-tool tests share: where the repository is, and a check that the Python
//! peers are installed (a missing one fails the test with the install command; it never skips).
// Each test crate uses a different part of this module.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// How to get the Python peers the interop tests drive.
pub const INSTALL: &str = "install the interop tools: pip install -r tests/requirements.txt";

/// The repository root (the tests run the scripts and examples from there).
pub fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// Panics with [`INSTALL`] unless `python3 -c "import MODULES"` works.
pub fn require_python(modules: &str) {
    match Command::new("python3").args(["-c", &format!("import {modules}")]).output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!("{INSTALL}\n{}", String::from_utf8_lossy(&out.stderr)),
        Err(e) => panic!("{INSTALL} (cannot run python3: {e})"),
    }
}
