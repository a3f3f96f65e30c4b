//! `cargo xtask bench --fs`: files moved to and from the virtual device's file system (the fs
//! group) by smpflash and by smpclient (`upload_file` / `download_file`), each measured against
//! what the link can carry for file requests and answers. Results are in docs/performance.md.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;

use super::capacity::{serial_wire_bytes, Device, IPV4_UDP_HEADERS};
use super::child;
use super::device::SimProcess;
use super::matrix::{self, Flash, Link, KIB};
use super::Args;

/// SMP header in front of every frame.
const SMP_HEADER: usize = 8;

/// Length field and CRC16 around each frame in a console packet.
const SERIAL_PACKET_OVERHEAD: usize = 4;

/// UART bits per byte (8N1).
const UART_BITS_PER_BYTE: f64 = 10.0;

/// The links of the fs bench: a 15 ms round trip over UDP and a 1 Mbaud UART.
const LINKS: [Link; 2] = [Link::Udp(15), Link::Serial(1_000_000)];

/// File sizes.
const SIZES: [u64; 2] = [64 * KIB, 1024 * KIB];

/// Which way the file goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Upload,
    Download,
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Direction::Upload => "upload",
            Direction::Download => "download",
        })
    }
}

/// Bytes of a CBOR head for the value or length `v`.
fn cbor_head(v: u64) -> usize {
    match v {
        0..=23 => 1,
        24..=0xFF => 2,
        0x100..=0xFFFF => 3,
        0x1_0000..=0xFFFF_FFFF => 5,
        _ => 9,
    }
}

fn key(s: &str) -> usize {
    cbor_head(s.len() as u64) + s.len()
}

/// Bytes of a file upload request around its `n` data bytes at `off` (`len` on the first).
fn upload_overhead(off: u64, n: usize, len: u64, name: &str) -> usize {
    let first = off == 0;
    SMP_HEADER
        + cbor_head(if first { 4 } else { 3 })
        + key("off")
        + cbor_head(off)
        + key("data")
        + cbor_head(n as u64)
        + key("name")
        + key(name)
        + if first { key("len") + cbor_head(len) } else { 0 }
}

/// The frames of an upload of `len` bytes to `name` in requests of at most `frame` bytes.
fn upload_frames(len: u64, frame: usize, name: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut off = 0u64;
    while off < len {
        let room = frame.saturating_sub(upload_overhead(off, 0, len, name) - 1);
        let n = (room.saturating_sub(9)..=room)
            .rev()
            .find(|&n| upload_overhead(off, n, len, name) + n <= frame)
            .unwrap_or(0)
            .min((len - off) as usize);
        assert!(n > 0, "a {frame}-byte frame carries no file data");
        out.push((upload_overhead(off, n, len, name) + n, n));
        off += n as u64;
    }
    out
}

/// Zephyr's `MCUMGR_GRP_FS_DL_CHUNK_SIZE` for `buf_size` (`fs_mgmt_config.h`).
fn download_chunk(buf_size: usize) -> usize {
    buf_size - (SMP_HEADER + 10 + 8 + 9 + 4 + 8)
}

/// The answer frames of a download of `len` bytes in the device's chunks.
fn download_frames(len: u64, buf_size: usize) -> Vec<(usize, usize)> {
    let chunk = download_chunk(buf_size) as u64;
    let mut out = Vec::new();
    let mut off = 0u64;
    while off < len {
        let n = chunk.min(len - off) as usize;
        let first = off == 0;
        let frame = SMP_HEADER
            + cbor_head(if first { 3 } else { 2 })
            + key("off")
            + cbor_head(off)
            + key("data")
            + cbor_head(n as u64)
            + n
            + if first { key("len") + cbor_head(len) } else { 0 };
        out.push((frame, n));
        off += n as u64;
    }
    out
}

/// File bytes per second the link carries: over UDP the window of full requests (upload) or
/// answers (download) per round trip; over a UART the direction that carries the data, full.
fn capacity(device: &Device, link: Link, direction: Direction, len: u64, name: &str) -> f64 {
    let buf = device.profile.buf_size;
    let frames = match (direction, link) {
        (Direction::Upload, Link::Serial(_)) => upload_frames(len, buf - SERIAL_PACKET_OVERHEAD, name),
        (Direction::Upload, _) => upload_frames(len, buf.min(device.udp_mtu - IPV4_UDP_HEADERS), name),
        (Direction::Download, _) => download_frames(len, buf),
    };
    match link {
        Link::Udp(rtt_ms) => {
            len as f64 * device.window() as f64 / (frames.len() as f64 * rtt_ms as f64 / 1000.0)
        }
        Link::Serial(baud) => {
            let wire: usize = frames.iter().map(|(f, _)| serial_wire_bytes(*f)).sum();
            len as f64 * (f64::from(baud) / UART_BITS_PER_BYTE) / wire as f64
        }
        Link::Ble(_) => unreachable!("the fs bench runs over UDP and serial"),
    }
}

/// One measured transfer.
#[derive(Debug, Clone, serde::Serialize)]
struct Run {
    link: String,
    direction: String,
    tool: &'static str,
    bytes: u64,
    run: u32,
    seconds: Option<f64>,
    capacity_bytes_per_s: f64,
    ratio: Option<f64>,
    window: Option<u64>,
    chunk: Option<u64>,
    error: Option<String>,
}

fn link_args(link: Link, sim: &SimProcess, mtu: usize) -> Vec<String> {
    match link {
        Link::Udp(_) => vec!["--udp".into(), sim.udp.clone(), "--mtu".into(), mtu.to_string()],
        Link::Serial(baud) => {
            vec!["--serial".into(), sim.pty.clone().unwrap_or_default(), "--baud".into(), baud.to_string()]
        }
        Link::Ble(_) => unreachable!("no BLE in the fs bench"),
    }
}

/// Seconds, window and chunk of one transfer, from the tool's JSON.
fn measure(cmd: &mut Command, tool: &str, direction: Direction) -> Result<(f64, Option<u64>, Option<u64>)> {
    let done = child::run(cmd, Duration::from_secs(600))?;
    if !done.success() {
        anyhow::bail!("{tool}: {}", done.why());
    }
    let line = done.stdout.lines().rev().find(|l| l.starts_with('{')).unwrap_or("");
    let doc: Value = if tool == "smpflash" {
        let all: Value = serde_json::from_str(&done.stdout).context("smpflash printed no JSON")?;
        all[direction.to_string()].clone()
    } else {
        serde_json::from_str(line).with_context(|| format!("{tool} printed no JSON: {:?}", done.stdout))?
    };
    let seconds = doc["seconds"].as_f64().context("no seconds in the report")?;
    Ok((seconds, doc["window"].as_u64(), doc["chunk"].as_u64()))
}

/// Runs the fs bench.
pub fn run(args: &Args, root: &Path, device: &Device, smpflash: &Path, work: &Path) -> Result<()> {
    let links = matrix::select(&LINKS, args.links.as_deref(), "link")?;
    let sizes = args.sizes.as_deref().map(matrix::parse_sizes).transpose()?.unwrap_or(SIZES.to_vec());
    let python = super::python();
    let driver = root.join("xtask/drivers/smpclient_fs.py");
    let mut runs: Vec<Run> = Vec::new();
    for &link in &links {
        let (rtt, baud) = match link {
            Link::Udp(ms) => (ms, None),
            Link::Serial(b) => (0, Some(b)),
            Link::Ble(_) => anyhow::bail!("the fs bench runs over UDP and serial only"),
        };
        let sim = SimProcess::start(smpflash, Flash::Fast, rtt, baud, &work.join(format!("fs-{link}.log")))?;
        let la = link_args(link, &sim, device.udp_mtu);
        for &size in &sizes {
            let local = work.join(format!("fs-{size}.bin"));
            std::fs::write(&local, smpflash_core::loopback::noise(size as usize, size as u32))?;
            // The uploads replace one file, which the downloads then read (and compare with the
            // local file): the 2 MiB file system holds it beside nothing else.
            let source = "/lfs1/up.bin";
            for direction in [Direction::Upload, Direction::Download] {
                let cap = capacity(device, link, direction, size, "/lfs1/up.bin");
                for r in 1..=args.repeat {
                    for tool in ["smpflash", "smpclient"] {
                        let back = work.join("fs-back.bin");
                        let mut cmd = if tool == "smpflash" {
                            let mut c = Command::new(smpflash);
                            c.args(&la).arg("--json").arg("fs");
                            match direction {
                                Direction::Upload => c.arg("upload").arg(&local).arg("/lfs1/up.bin"),
                                Direction::Download => c.arg("download").arg(source).arg(&back),
                            };
                            c
                        } else {
                            let mut c = Command::new(&python);
                            c.arg(&driver);
                            match link {
                                Link::Udp(_) => {
                                    c.args(["--udp", &sim.udp, "--mtu", &device.udp_mtu.to_string()])
                                }
                                _ => c.args([
                                    "--serial",
                                    sim.pty.as_deref().unwrap_or(""),
                                    "--baud",
                                    &baud.unwrap_or(0).to_string(),
                                ]),
                            };
                            match direction {
                                Direction::Upload => c.arg("--upload").arg(&local).arg("/lfs1/up.bin"),
                                Direction::Download => c.arg("--download").arg(source).arg(&back),
                            };
                            c
                        };
                        let mut record = Run {
                            link: link.to_string(),
                            direction: direction.to_string(),
                            tool,
                            bytes: size,
                            run: r,
                            seconds: None,
                            capacity_bytes_per_s: cap,
                            ratio: None,
                            window: None,
                            chunk: None,
                            error: None,
                        };
                        match measure(&mut cmd, tool, direction) {
                            Ok((s, w, c)) => {
                                if direction == Direction::Download
                                    && std::fs::read(&back)? != std::fs::read(&local)?
                                {
                                    record.error = Some("downloaded bytes differ".into());
                                } else {
                                    record.seconds = Some(s);
                                    record.ratio = Some(size as f64 / s / cap);
                                    record.window = w;
                                    record.chunk = c;
                                }
                            }
                            Err(e) => record.error = Some(format!("{e:#}")),
                        }
                        eprintln!(
                            "fs bench: {link} {direction} {} KiB {tool} run {r}: {}",
                            size / KIB,
                            match (&record.error, record.seconds) {
                                (Some(e), _) => e.clone(),
                                (None, Some(s)) => format!(
                                    "{s:.3} s, {:.1} kB/s, {:.3} of capacity",
                                    size as f64 / s / 1000.0,
                                    record.ratio.unwrap_or(0.0)
                                ),
                                _ => String::new(),
                            }
                        );
                        runs.push(record);
                    }
                }
            }
        }
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&serde_json::json!({ "fs_runs": runs }))? + "\n")?;
    }
    let table = table(&runs);
    println!("{table}");
    if let Some(path) = &args.markdown {
        std::fs::write(path, &table)?;
    }
    Ok(())
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

/// The Markdown table: per link, direction and size, each tool's median time, its ratio to the
/// link's capacity, and smpflash's speed over smpclient's.
fn table(runs: &[Run]) -> String {
    let mut out = String::from(
        "| link | direction | size | capacity (kB/s) | smpflash (s) | of capacity | smpclient (s) | of capacity | smpflash ÷ smpclient |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut keys: Vec<(String, String, u64)> =
        runs.iter().map(|r| (r.link.clone(), r.direction.clone(), r.bytes)).collect();
    keys.dedup();
    for (link, dir, bytes) in keys {
        let of = |tool: &str| {
            median(
                runs.iter()
                    .filter(|r| r.link == link && r.direction == dir && r.bytes == bytes && r.tool == tool)
                    .filter_map(|r| r.seconds)
                    .collect(),
            )
        };
        let cap = runs
            .iter()
            .find(|r| r.link == link && r.direction == dir && r.bytes == bytes)
            .map_or(0.0, |r| r.capacity_bytes_per_s);
        let cell = |s: Option<f64>| {
            s.map_or(("failed".to_string(), "-".to_string()), |s| {
                (format!("{s:.3}"), format!("{:.2}", bytes as f64 / s / cap))
            })
        };
        let (a, ar) = cell(of("smpflash"));
        let (b, br) = cell(of("smpclient"));
        let speedup = match (of("smpflash"), of("smpclient")) {
            (Some(a), Some(b)) => format!("{:.2}×", b / a),
            _ => "-".into(),
        };
        out.push_str(&format!(
            "| {link} | {dir} | {} KiB | {:.1} | {a} | {ar} | {b} | {br} | {speedup} |\n",
            bytes / KIB,
            cap / 1000.0
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_request_overheads_match_the_encoder() {
        use serde_bytes::ByteBuf;
        use smpflash_core::command::fs::FileUpload;
        use smpflash_core::upload::max_data_len;
        for frame in [384usize, 1472, 2475] {
            for off in [0u64, 100, 70_000] {
                let len = 1 << 20;
                let req = FileUpload {
                    off,
                    data: ByteBuf::new(),
                    name: "/lfs1/up.bin".into(),
                    len: (off == 0).then_some(len),
                };
                let engine = max_data_len(frame, &req).unwrap();
                let mine = upload_frames(len - off, frame, "/lfs1/up.bin");
                // The first frame of an upload starting at `off`: compare its data length where
                // the offsets' heads agree (both at 0, or both large).
                if off == 0 {
                    assert_eq!(mine[0].1, engine, "frame {frame}");
                }
            }
        }
        // Zephyr: 384-byte buffers give 337-byte download chunks.
        assert_eq!(download_chunk(384), 337);
    }
}
