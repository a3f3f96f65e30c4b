//! The images the bench uploads: random payloads signed by MCUboot's imgtool, made fresh in a
//! temporary directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Key the images are signed with (the test fixtures' ECDSA P-256 key).
const KEY: &str = "tests/fixtures/keys/ecdsa-p256.pem";

/// One signed image.
#[derive(Debug, Clone)]
pub struct Image {
    /// Random payload bytes before imgtool added header and TLVs.
    pub payload: u64,
    pub path: PathBuf,
    /// Size of the signed file: what is uploaded.
    pub bytes: u64,
}

/// Deterministic noise (xorshift64*): the same payload every run, with nothing a compressor or
/// a clever transport could exploit.
fn noise(len: u64, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len as usize + 8);
    while (out.len() as u64) < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len as usize);
    out
}

/// Signs `payload` random bytes into `dir` with imgtool, for slots of `slot_size` bytes.
pub fn make(
    root: &Path,
    dir: &Path,
    python: &str,
    payload: u64,
    version: &str,
    slot_size: u64,
) -> Result<Image> {
    let raw = dir.join(format!("payload-{payload}.bin"));
    let path = dir.join(format!("image-{payload}-v{version}.bin"));
    std::fs::write(&raw, noise(payload, payload ^ 0x5EED))?;
    let out = Command::new(python)
        .args(["-m", "imgtool.main", "sign", "-k"])
        .arg(root.join(KEY))
        .args(["--header-size", "0x200", "--pad-header", "--align", "4", "--version", version])
        .args(["--slot-size", &format!("{slot_size:#x}")])
        .arg(&raw)
        .arg(&path)
        .output()
        .context("cannot run imgtool (python3 -m imgtool.main)")?;
    if !out.status.success() {
        bail!("imgtool sign failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let bytes = std::fs::metadata(&path)?.len();
    Ok(Image { payload, path, bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_repeatable_and_sized() {
        assert_eq!(noise(1000, 7), noise(1000, 7));
        assert_ne!(noise(1000, 7), noise(1000, 8));
        assert_eq!(noise(13, 1).len(), 13);
    }
}
