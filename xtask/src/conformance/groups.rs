//! The table's cells of the groups beside os/img's update commands: fs, shell, stat, settings,
//! enum, Zephyr basic and os tasks/datetime, each run with the real `smpflash` binary and judged
//! against what the manifest and the fixtures README say the server has.

use std::path::Path;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::cases::GROUPS;
use super::fixtures::Server;
use super::run::{smpflash, Cell, Column, Outcome, Rules, Verdict};

const SHORT: std::time::Duration = std::time::Duration::from_secs(20);
const TRANSFER: std::time::Duration = std::time::Duration::from_secs(120);

/// Bytes of the fs cell's file: README, native_sim's littlefs is 16 KiB and uploads of 8 KiB
/// and more fail there with "file write failed"; 3000 bytes take several chunks on every
/// buffer size and fit.
pub const FS_FILE_LEN: usize = 3000;

fn ok_json(o: &Outcome) -> Result<Value, Cell> {
    match (o.code, o.json()) {
        (Some(0), Some(v)) => Ok(v),
        _ => Err(Cell { verdict: Verdict::Fail, note: o.said() }),
    }
}

fn pass(note: impl Into<String>) -> Cell {
    Cell { verdict: Verdict::Pass, note: note.into() }
}

fn fail(note: impl Into<String>) -> Cell {
    Cell { verdict: Verdict::Fail, note: note.into() }
}

fn na(note: &str) -> Cell {
    Cell { verdict: Verdict::NotApplicable, note: note.into() }
}

/// A device error smpflash reported as one (exit 4) whose text names `name`.
fn expected_error(o: &Outcome, name: &str) -> Cell {
    let said = o.said();
    if o.code == Some(4) && said.contains(name) {
        Cell { verdict: Verdict::ExpectedDeviceError, note: format!("{name}, exit 4") }
    } else {
        fail(format!("expected {name} reported as a device error (exit 4); smpflash: {said}"))
    }
}

/// README: on this build an fs download's final partial chunk crashes the device's SMP thread
/// (heap corruption, a server bug): every later cell would time out.
pub const DOWNLOAD_CRASHES: [&str; 1] = ["serial_recovery_buf2048"];

/// Measured: on this build every fs download, even of a file just uploaded, stat'ed and hashed,
/// answers `FS_MGMT_ERR_UNKNOWN` (opening the file for reading fails on the device; the 400,
/// 512 and 384-byte mps2 builds download it).
pub const DOWNLOAD_REFUSED: [&str; 1] = ["serial_recovery_buf1024"];

/// Builds whose manifest lists zbasic but whose enum answer lists no group 63 (measured):
/// storage erase answers rc 8 there.
pub const NO_ZBASIC: [&str; 1] = ["serial_raw"];

/// Runs one of the group columns.
pub fn check(column: Column, r: &Rules, server: &Server, bin: &Path, scratch: &Path) -> Cell {
    let e = server.entry.clone();
    let run = |args: &[&str], limit| {
        let mut all = vec!["--json"];
        // The builds whose UARTs drop long bursts get their lines paced (as the full-buffer
        // echo does).
        if r.full_frame_dropped {
            all.extend(["--line-delay", "10"]);
        }
        all.extend(args);
        smpflash(server, bin, &all, limit)
    };
    match column {
        Column::Fs if !e.has_group("fs") => na("no fs group"),
        Column::Fs => {
            // Pipelined everywhere, the burst-dropping UARTs included: `--line-delay` paces
            // frames as well as lines, so requests in flight no longer run into each other
            // there (a 4000-byte upload took 20-26 s of timeouts before that, 0.7 s after).
            // The file the fs cell moves: recognisable, not compressible.
            let content = smpflash_core::loopback::noise(FS_FILE_LEN, 0x2545_f491);
            // The server's own scratch directory: servers run side by side.
            let dir = scratch.join(&e.config);
            if let Err(err) = std::fs::create_dir_all(&dir) {
                return fail(format!("cannot create {}: {err}", dir.display()));
            }
            let local = dir.join("conformance-fs.bin");
            let back = dir.join("conformance-fs.back");
            if let Err(err) = std::fs::write(&local, &content) {
                return fail(format!("cannot write {}: {err}", local.display()));
            }
            let remote = "/lfs1/conformance.bin";
            let (l, b) = (local.to_string_lossy(), back.to_string_lossy());
            let up = match ok_json(&run(&["fs", "upload", &l, remote], TRANSFER)) {
                Ok(v) => v,
                Err(c) => return c,
            };
            let checked = up["upload"]["verified"]["kind"].as_str().unwrap_or("nothing").to_string();
            match ok_json(&run(&["fs", "stat", remote], SHORT)) {
                Ok(v) if v["len"] == FS_FILE_LEN => {}
                Ok(v) => return fail(format!("fs stat: expected {FS_FILE_LEN} bytes, got {}", v["len"])),
                Err(c) => return c,
            }
            let sha: String = Sha256::digest(&content).iter().map(|b| format!("{b:02x}")).collect();
            match ok_json(&run(&["fs", "hash", remote, "--type", "sha256"], SHORT)) {
                Ok(v) if v["output"] == sha.as_str() => {}
                Ok(v) => return fail(format!("fs hash: expected {sha}, got {}", v["output"])),
                Err(c) => return c,
            }
            if DOWNLOAD_CRASHES.contains(&e.config.as_str()) {
                return Cell {
                    verdict: Verdict::FixtureLimit,
                    note: format!(
                        "{FS_FILE_LEN} B up, checked by {checked}; stat, sha256; download not run (README: a \
                         download's final partial chunk crashes this build's SMP thread)"
                    ),
                };
            }
            if DOWNLOAD_REFUSED.contains(&e.config.as_str()) {
                let cell =
                    expected_error(&run(&["fs", "download", remote, &b], TRANSFER), "FS_MGMT_ERR_UNKNOWN");
                return Cell {
                    note: format!(
                        "{FS_FILE_LEN} B up, checked by {checked}; stat, sha256; download: {}",
                        cell.note
                    ),
                    ..cell
                };
            }
            if let Err(c) = ok_json(&run(&["fs", "download", remote, &b], TRANSFER)) {
                return c;
            }
            match std::fs::read(&back) {
                Ok(got) if got == content => {
                    pass(format!("{FS_FILE_LEN} B up and down, checked by {checked}; stat, sha256"))
                }
                Ok(got) => fail(format!("downloaded {} B that differ from the upload", got.len())),
                Err(err) => fail(format!("fs download wrote no file: {err}")),
            }
        }
        Column::Shell if !e.has_group("shell") => na("no shell group"),
        Column::Shell => match ok_json(&run(&["shell", "exec", "--", "kernel", "version"], SHORT)) {
            Ok(v) if v["ret"] == 0 && v["output"].as_str().is_some_and(|o| o.contains("Zephyr version")) => {
                pass(format!("kernel version: {}", v["output"].as_str().unwrap_or("").trim()))
            }
            Ok(v) => fail(format!("expected `Zephyr version …` and ret 0, got {v}")),
            Err(c) => c,
        },
        Column::Stat if !e.has_group("stat") => na("no stat group"),
        Column::Stat => {
            let list = match ok_json(&run(&["stat", "list"], SHORT)) {
                Ok(v) => v,
                Err(c) => return c,
            };
            if !list["groups"].as_array().is_some_and(|g| g.iter().any(|n| n == "smp_svr_stats")) {
                return fail(format!("expected smp_svr_stats in the list, got {list}"));
            }
            match ok_json(&run(&["stat", "read", "smp_svr_stats"], SHORT)) {
                Ok(v) if v["fields"]["ticks"].is_u64() => {
                    pass(format!("smp_svr_stats ticks {}", v["fields"]["ticks"]))
                }
                Ok(v) => fail(format!("expected the ticks counter, got {v}")),
                Err(c) => c,
            }
        }
        Column::Settings if !e.has_group("settings") => na("no settings group"),
        Column::Settings => {
            // smp_svr registers no settings handler: a name's root key is not found.
            let o = run(&["settings", "get", "conformance/key"], SHORT);
            let cell = expected_error(&o, "SETTINGS_MGMT_ERR_ROOT_KEY_NOT_FOUND");
            if cell.verdict == Verdict::Fail {
                return cell;
            }
            match ok_json(&run(&["settings", "commit"], SHORT)) {
                Ok(_) => Cell { note: format!("{}; commit passes", cell.note), ..cell },
                Err(c) => c,
            }
        }
        Column::Enum if !e.has_group("enum") => na("no enum group"),
        // README: a 96-byte buffer does not hold the answers (as os info's rc 7).
        Column::Enum if r.info_does_not_fit => expected_error(&run(&["enum"], SHORT), "MGMT_ERR_ECORRUPT"),
        Column::Enum => match ok_json(&run(&["enum"], SHORT)) {
            Ok(v) => {
                let mut got: Vec<u64> = v["groups"]
                    .as_array()
                    .map(|g| g.iter().filter_map(|x| x["group"].as_u64()).collect())
                    .unwrap_or_default();
                let mut want: Vec<u64> = GROUPS
                    .iter()
                    .filter(|(name, _)| *name != "zbasic" || !NO_ZBASIC.contains(&e.config.as_str()))
                    .filter(|(name, _)| e.has_group(name))
                    .map(|(_, id)| u64::from(*id))
                    .collect();
                got.sort_unstable();
                want.sort_unstable();
                if got == want {
                    pass(format!("{} groups, as the manifest lists", got.len()))
                } else {
                    fail(format!("expected groups {want:?}, the device lists {got:?}"))
                }
            }
            Err(c) => c,
        },
        Column::Storage if !e.has_group("zbasic") => na("no zbasic group"),
        Column::Storage => {
            let o = run(&["storage", "erase"], TRANSFER);
            if NO_ZBASIC.contains(&e.config.as_str()) {
                return expected_error(&o, "rc 8");
            }
            match ok_json(&o) {
                Ok(_) => pass("storage partition erased"),
                Err(c) => c,
            }
        }
        Column::OsTasks if r.info_does_not_fit => expected_error(&run(&["os", "tasks"], SHORT), "rc 7"),
        Column::OsTasks => {
            let tasks = match ok_json(&run(&["os", "tasks"], SHORT)) {
                Ok(v) => v,
                Err(c) => return c,
            };
            let n = tasks["tasks"].as_object().map_or(0, |t| t.len());
            if n == 0 {
                return fail(format!("expected threads, got {tasks}"));
            }
            // The fixtures are built without CONFIG_MCUMGR_GRP_OS_DATETIME.
            let o = run(&["os", "datetime"], SHORT);
            let dt = expected_error(&o, "rc 8");
            if dt.verdict == Verdict::Fail {
                return dt;
            }
            Cell {
                verdict: Verdict::ExpectedDeviceError,
                note: format!("{n} threads; datetime rc 8 (compiled out)"),
            }
        }
        other => unreachable!("{other:?} is not a group column"),
    }
}
