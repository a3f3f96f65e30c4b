//! How each client is started against a device, and what its output says about the upload.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::device::{override_args, PROFILE};
use super::matrix::{Flash, Tool};

/// Where a client finds the device.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// smpflash's in-process device behind a simulated BLE link, starting from `state` if any.
    Ble {
        profile: &'static str,
        flash: Flash,
        state: Option<&'a Path>,
    },
    /// A UDP device and the path MTU every tool is told.
    Udp {
        addr: &'a str,
        mtu: usize,
    },
    Serial {
        path: &'a str,
        baud: u32,
    },
}

/// The programs the clients are.
pub struct Programs {
    pub smpflash: PathBuf,
    pub python: String,
    pub drivers: PathBuf,
}

/// What one upload reported.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// The upload's own time, from its first request to the device's last offset.
    pub seconds: f64,
    pub bytes: u64,
    pub window: Option<u64>,
    pub chunk: Option<u64>,
    pub retransmits: Option<u64>,
}

pub fn command(p: &Programs, tool: Tool, target: Target<'_>, image: &Path) -> Command {
    match tool {
        Tool::Smpflash | Tool::SmpflashW1 => {
            let mut c = Command::new(&p.smpflash);
            match target {
                Target::Ble { profile, flash, state } => {
                    c.arg(format!("--sim={PROFILE}"))
                        .args(override_args("--sim-set"))
                        .args(["--sim-link", &format!("ble-{profile}")])
                        .args(["--sim-time-scale", &flash.time_scale().to_string()]);
                    if let Some(s) = state {
                        c.arg("--sim-state").arg(s);
                    }
                }
                Target::Udp { addr, mtu } => {
                    c.args(["--udp", addr, "--mtu", &mtu.to_string()]);
                }
                Target::Serial { path, baud } => {
                    c.args(["--serial", path, "--baud", &baud.to_string()]);
                }
            }
            if tool == Tool::SmpflashW1 {
                c.args(["--window", "1"]);
            }
            c.args(["--json", "image", "upload"]).arg(image);
            c
        }
        Tool::Smpclient | Tool::McumgrToolkit => {
            let script = match tool {
                Tool::Smpclient => "smpclient_upload.py",
                _ => "mcumgr_toolkit_upload.py",
            };
            let mut c = Command::new(&p.python);
            c.arg(p.drivers.join(script));
            match target {
                // mcumgr-toolkit's UDP client takes no MTU; it sizes its own chunks.
                Target::Udp { addr, mtu } if tool == Tool::Smpclient => {
                    c.args(["--udp", addr, "--mtu", &mtu.to_string()])
                }
                Target::Udp { addr, .. } => c.args(["--udp", addr]),
                Target::Serial { path, baud } => c.args(["--serial", path, "--baud", &baud.to_string()]),
                Target::Ble { .. } => unreachable!("peers have no BLE here; the matrix says n/a"),
            };
            c.arg("--image").arg(image);
            c
        }
    }
}

fn number(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

fn count(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

/// Reads the upload's report from the client's standard output.
pub fn parse(tool: Tool, stdout: &str) -> Result<Measured> {
    let doc: Value = match tool {
        // `--json` prints one pretty document.
        Tool::Smpflash | Tool::SmpflashW1 => serde_json::from_str(stdout),
        // The drivers print one line last.
        Tool::Smpclient | Tool::McumgrToolkit => {
            serde_json::from_str(stdout.lines().rev().find(|l| l.starts_with('{')).unwrap_or(""))
        }
    }
    .with_context(|| format!("{tool} printed no JSON report: {stdout:?}"))?;
    let report = match tool {
        Tool::Smpflash | Tool::SmpflashW1 => {
            doc.get("uploads").and_then(|u| u.get(0)).cloned().context("no upload in smpflash's report")?
        }
        _ => doc,
    };
    let (Some(seconds), Some(bytes)) = (number(&report, "seconds"), count(&report, "bytes")) else {
        bail!("{tool}'s report lacks seconds or bytes: {report}");
    };
    Ok(Measured {
        seconds,
        bytes,
        window: count(&report, "window"),
        chunk: count(&report, "chunk"),
        retransmits: count(&report, "retransmits"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_of_smpflash_and_the_drivers_parse() {
        let smpflash = r#"{"uploads": [{"bytes": 262806, "chunk": 1448, "seconds": 1.5, "window": 3,
                           "retransmits": 2}]}"#;
        let m = parse(Tool::Smpflash, smpflash).unwrap();
        assert_eq!(
            (m.seconds, m.bytes, m.window, m.chunk, m.retransmits),
            (1.5, 262806, Some(3), Some(1448), Some(2))
        );
        let driver = "noise\n{\"seconds\": 2.0, \"bytes\": 10, \"chunk\": 5, \"window\": null}\n";
        let m = parse(Tool::McumgrToolkit, driver).unwrap();
        assert_eq!((m.seconds, m.window, m.retransmits), (2.0, None, None));
        assert!(parse(Tool::Smpclient, "Traceback").is_err());
    }
}
