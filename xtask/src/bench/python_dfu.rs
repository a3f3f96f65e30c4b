//! `cargo xtask bench --python-dfu`: whole DFUs of the same image over the same link, by the
//! CLI (`smpflash --json dfu --force`) and by the Python package (`xtask/drivers/python_dfu.py`),
//! taking turns, so the package's overhead shows as a ratio of times.
//!
//! Two measures per run: the DFU report's own `seconds` (from the start of the update to its
//! verdict, the same code path in both), and the process's wall time (interpreter start, import,
//! connect and close included). Each DFU uploads (`--force`): the device alternates between two
//! images, so every run swaps in a new one.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::child;
use super::device::{SimProcess, SLOT_SIZE};
use super::images;
use super::matrix::{Flash, Link};

/// One DFU's times.
#[derive(Debug, Clone, Copy)]
struct Run {
    dfu_s: f64,
    wall_s: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if !n.is_multiple_of(2) => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn target_args(link: Link, sim: &SimProcess, udp_mtu: usize) -> Vec<String> {
    match link {
        Link::Serial(baud) => {
            vec!["--serial".into(), sim.pty.clone().unwrap_or_default(), "--baud".into(), baud.to_string()]
        }
        _ => vec!["--udp".into(), sim.udp.clone(), "--mtu".into(), udp_mtu.to_string()],
    }
}

fn one(cmd: &mut Command, what: &str) -> Result<Run> {
    let started = Instant::now();
    let done = child::run(cmd, Duration::from_secs(600))?;
    let wall_s = started.elapsed().as_secs_f64();
    if !done.success() {
        bail!("{what} failed: {}", done.why());
    }
    let line = done.stdout.lines().rev().find(|l| l.trim_start().starts_with('{')).unwrap_or("");
    // The CLI prints one pretty document; the driver one line.
    let doc: Value = serde_json::from_str(&done.stdout)
        .or_else(|_| serde_json::from_str(line))
        .with_context(|| format!("{what} printed no JSON report: {:?}", done.stdout))?;
    let dfu_s = doc.get("seconds").and_then(Value::as_f64).context("no seconds in the report")?;
    Ok(Run { dfu_s, wall_s })
}

/// Runs the comparison on each link and flash model and prints one line per pair.
#[allow(clippy::too_many_arguments)]
pub fn run(
    root: &Path,
    smpflash: &Path,
    python: &str,
    work: &Path,
    links: &[Link],
    flashes: &[Flash],
    payload: u64,
    repeat: u32,
    udp_mtu: usize,
) -> Result<Vec<String>> {
    let import = Command::new(python).args(["-c", "import smpflash"]).output()?;
    if !import.status.success() {
        bail!(
            "{python} cannot import smpflash: install the package first (`{python} -m pip install ./python`)"
        );
    }
    let driver = root.join("xtask/drivers/python_dfu.py");
    let a = images::make(root, work, python, payload, "1.2.3", SLOT_SIZE)?;
    let b = images::make(root, work, python, payload, "1.2.4", SLOT_SIZE)?;
    let mut lines = Vec::new();
    for &link in links {
        let (rtt, baud) = match link {
            Link::Udp(rtt) => (rtt, None),
            Link::Serial(baud) => (0, Some(baud)),
            Link::Ble(_) => continue,
        };
        for &flash in flashes {
            let log = work.join(format!("sim-python-dfu-{link}-{flash}.log"));
            let sim = SimProcess::start(smpflash, flash, rtt, baud, &log)?;
            let target = target_args(link, &sim, udp_mtu);
            let (mut cli, mut py) = (Vec::new(), Vec::new());
            for n in 0..repeat {
                // Each run installs the image the device does not run.
                let image = |k: u32| if k.is_multiple_of(2) { &a.path } else { &b.path };
                let c = one(
                    Command::new(smpflash).args(&target).args(["--json", "dfu", "--force"]).arg(image(2 * n)),
                    "smpflash dfu",
                )?;
                let p = one(
                    Command::new(python).arg(&driver).args(&target).arg("--force").arg(image(2 * n + 1)),
                    "python_dfu.py",
                )?;
                eprintln!(
                    "python-dfu {link} {flash} run {}: CLI {:.3} s (wall {:.3}), Python {:.3} s (wall {:.3})",
                    n + 1,
                    c.dfu_s,
                    c.wall_s,
                    p.dfu_s,
                    p.wall_s
                );
                cli.push(c);
                py.push(p);
            }
            let m = |v: &[Run], f: fn(&Run) -> f64| median(v.iter().map(f).collect());
            let (cd, pd) = (m(&cli, |r| r.dfu_s), m(&py, |r| r.dfu_s));
            let (cw, pw) = (m(&cli, |r| r.wall_s), m(&py, |r| r.wall_s));
            lines.push(format!(
                "| {link} | {flash} | {} KiB | {repeat} | {cd:.3} | {pd:.3} | **{:.3}** | {cw:.3} | {pw:.3} | {:.3} |",
                payload / 1024,
                pd / cd,
                pw / cw
            ));
        }
    }
    Ok(lines)
}

/// The table's head.
pub const HEADER: &str = "| link | flash | image | runs | CLI DFU s | Python DFU s | ratio | CLI wall s | Python wall s | wall ratio |\n|---|---|---|---|---|---|---|---|---|---|";
