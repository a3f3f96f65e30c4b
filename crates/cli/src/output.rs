//! What a command produced, as data, and the one printer that renders it: a JSON document
//! with `--json`, text otherwise. Commands never print; they return an [`Outcome`].

use std::io::{self, Write};

use serde::Serialize;
use smpflash_ble::ScanResult;
use std::collections::BTreeMap;

use smpflash_core::command::fs::HashType;
use smpflash_core::command::image::SlotInfoImage;
use smpflash_core::command::image::SlotState;
use smpflash_core::command::os::McubootMode;
use smpflash_core::command::os::{MemPool, TaskStat};
use smpflash_core::dfu::DfuReport;
use smpflash_core::fs::FileReport;
use smpflash_core::status::{self, EmptySlot, ImageStatus};
use smpflash_core::upload::{Limits, UploadReport};

use crate::decode::DecodeReport;
use crate::show::ShowReport;

/// What `info` found.
#[derive(Debug, Serialize)]
pub struct Info {
    /// The link, as the transport describes it.
    pub transport: String,
    /// Bootloader name, when the device says.
    pub bootloader: Option<String>,
    /// MCUboot's mode, when the device says.
    pub mode: Option<McubootMode>,
    /// The mode's number as the device sent it.
    #[serde(skip)]
    pub mode_number: Option<i32>,
    /// Whether MCUboot refuses downgrades, when the device says.
    pub no_downgrade: Option<bool>,
    /// The application's `os info` text.
    pub application: Option<String>,
}

/// A command's result. Serializes as the command's `--json` document (see docs/cli.md).
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Outcome {
    /// Nothing to print (the virtual device ran until Ctrl-C).
    #[cfg_attr(not(feature = "sim"), allow(dead_code))]
    Nothing,
    /// `scan`.
    Scan {
        /// Devices found, strongest first.
        devices: Vec<ScanResult>,
    },
    /// `echo`.
    Echo {
        /// The echoed text.
        echo: String,
    },
    /// `params`.
    Params(Limits),
    /// `info`.
    Info(Info),
    /// `reset`.
    Reset {
        /// Always true: the device accepted the reset.
        reset: bool,
    },
    /// `image list`, `image test`, `image confirm`.
    Images {
        /// Image state.
        images: Vec<SlotState>,
        /// Slots left out of the list because they hold no image.
        empty_slots: Vec<EmptySlot>,
    },
    /// `status`.
    Status {
        /// One status per image.
        images: Vec<StatusLine>,
    },
    /// `image erase`.
    Erased {
        /// The slot erased.
        erased: u32,
    },
    /// `image upload`.
    Uploads {
        /// One report per image.
        uploads: Vec<UploadReport>,
    },
    /// `dfu`.
    Dfu(DfuReport),
    /// `image show`.
    Show(ShowReport),
    /// `decode`.
    Decode(DecodeReport),
    /// `fs upload`.
    FileUpload {
        /// What the upload did.
        upload: FileReport,
    },
    /// `fs download`.
    FileDownload {
        /// What the download did.
        download: FileReport,
    },
    /// `fs stat`.
    FileStatus {
        /// Path on the device.
        name: String,
        /// Its length in bytes.
        len: u64,
    },
    /// `fs hash`.
    FileHash(FileHashOutcome),
    /// `fs types`.
    FileHashTypes {
        /// Type name to format (1 hash, 0 checksum) and size.
        types: std::collections::BTreeMap<String, HashType>,
    },
    /// `fs close`.
    FileClosed {
        /// Always true: the device closed its open file (if any).
        closed: bool,
    },
    /// `shell exec`: the exit code follows `ret`.
    Shell {
        /// What the command printed.
        output: String,
        /// Its return value (0 success, a negative errno otherwise).
        ret: i32,
    },
    /// `stat list`.
    StatList {
        /// Statistics group names.
        groups: Vec<String>,
    },
    /// `stat read`.
    Stat {
        /// The group.
        name: String,
        /// Counter name to value.
        fields: BTreeMap<String, u64>,
    },
    /// `settings get`.
    Setting(SettingOutcome),
    /// `settings set|delete|commit|load|save`.
    SettingsDone {
        /// What was done: set, deleted, committed, loaded, saved.
        done: String,
        /// The setting, for set and delete.
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// `enum`.
    Groups {
        /// The device's groups, in its order.
        groups: Vec<smpflash_core::groups::GroupSummary>,
    },
    /// `os tasks`.
    Tasks {
        /// Thread name to its statistics.
        tasks: BTreeMap<String, TaskStat>,
    },
    /// `os mempool`.
    MemPools {
        /// Pool name to its statistics.
        mpools: BTreeMap<String, MemPool>,
    },
    /// `os datetime`.
    DateTime {
        /// The device's clock, as it reports it.
        datetime: String,
    },
    /// `storage erase`.
    StorageErased {
        /// Always true.
        erased: bool,
    },
    /// `image slots`.
    Slots {
        /// Each image's slots and sizes.
        images: Vec<SlotInfoImage>,
    },
}

impl Outcome {
    /// The process's exit code for a command that succeeded: 0, except `shell exec`, whose code
    /// follows the command's `ret` (its magnitude, 1 if that is a multiple of 256).
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Shell { ret, .. } if *ret != 0 => match (ret.unsigned_abs() % 256) as u8 {
                0 => 1,
                n => n,
            },
            _ => 0,
        }
    }
}

/// What `settings get` found.
#[derive(Debug, Serialize)]
pub struct SettingOutcome {
    /// The setting.
    pub name: String,
    /// Its value, hex.
    pub hex: String,
    /// Its value as text, when it is printable UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The device's value limit, when the request asked for more.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u32>,
}

/// What `fs hash` found.
#[derive(Debug, Serialize)]
pub struct FileHashOutcome {
    /// Path on the device.
    pub name: String,
    /// The type the device used.
    #[serde(rename = "type")]
    pub kind: String,
    /// Bytes hashed.
    pub len: u64,
    /// The hash (hex) or checksum (8 hex digits).
    pub output: String,
}

/// One image's status with its sentence (JSON readers get both the data and the words).
#[derive(Debug, Serialize)]
pub struct StatusLine {
    /// The status.
    #[serde(flatten)]
    pub status: ImageStatus,
    /// Its sentence.
    pub sentence: String,
}

impl From<ImageStatus> for StatusLine {
    fn from(status: ImageStatus) -> Self {
        StatusLine { sentence: status.to_string(), status }
    }
}

impl Outcome {
    /// The image list, with the empty slots it implies.
    pub fn images(images: Vec<SlotState>) -> Self {
        Outcome::Images { empty_slots: status::empty_slots(&images), images }
    }
}

/// Renders outcomes as text or JSON.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    /// JSON documents instead of text.
    pub json: bool,
}

impl Printer {
    /// Prints `outcome` on stdout.
    pub fn print(&self, outcome: &Outcome) {
        let stdout = io::stdout();
        let mut out = stdout.lock();
        // A closed pipe (`smpflash ... | head`) is not an error worth a message.
        let _ = if self.json { json(&mut out, outcome) } else { text(&mut out, outcome) };
    }
}

fn json(out: &mut impl Write, outcome: &Outcome) -> io::Result<()> {
    if matches!(outcome, Outcome::Nothing) {
        return Ok(());
    }
    serde_json::to_writer_pretty(&mut *out, outcome)?;
    writeln!(out)
}

fn text(out: &mut impl Write, outcome: &Outcome) -> io::Result<()> {
    match outcome {
        Outcome::Nothing | Outcome::Uploads { .. } => Ok(()),
        Outcome::Scan { devices } => {
            for d in devices {
                writeln!(
                    out,
                    "{:<20} {:<24} {}",
                    d.address,
                    d.name.as_deref().unwrap_or("-"),
                    d.rssi.map_or("-".into(), |r| format!("{r} dBm"))
                )?;
            }
            if devices.is_empty() {
                writeln!(out, "no device advertising the SMP service found")?;
            }
            Ok(())
        }
        Outcome::Echo { echo } => writeln!(out, "{echo}"),
        Outcome::Params(l) if l.reported => writeln!(
            out,
            "buf_size {} bytes, buf_count {}: up to {} requests in flight",
            l.buf_size,
            l.buf_count,
            l.window()
        ),
        Outcome::Params(l) => writeln!(
            out,
            "the device does not report its buffers; assuming {} bytes, 1 request in flight",
            l.buf_size
        ),
        Outcome::Info(i) => {
            writeln!(out, "connection:  {}", i.transport)?;
            writeln!(
                out,
                "bootloader:  {}",
                i.bootloader.as_deref().unwrap_or("unknown (the device does not say)")
            )?;
            match (i.mode, i.mode_number) {
                (Some(m), Some(n)) => writeln!(
                    out,
                    "mode:        {m:?} ({n}){}",
                    if i.no_downgrade == Some(true) { ", refuses downgrades" } else { "" }
                )?,
                _ => writeln!(out, "mode:        unknown")?,
            }
            writeln!(out, "application: {}", i.application.as_deref().unwrap_or("unknown"))
        }
        Outcome::Reset { .. } => writeln!(out, "device is resetting"),
        Outcome::Images { images, empty_slots } => {
            image_table(out, images)?;
            for e in empty_slots {
                writeln!(out, "image {} slot {} is empty: nothing has been uploaded to it", e.image, e.slot)?;
            }
            Ok(())
        }
        Outcome::Status { images } => {
            for line in images {
                writeln!(out, "{}", line.sentence)?;
            }
            if images.is_empty() {
                writeln!(out, "the device lists no images")?;
            }
            Ok(())
        }
        Outcome::Erased { erased } => writeln!(out, "slot {erased} erased"),
        Outcome::Dfu(report) => {
            // The closing line belongs with the progress lines on stderr; the table is the
            // result.
            eprintln!("• done in {:.1} s; image state now:", report.seconds);
            image_table(out, &report.after)
        }
        Outcome::Show(report) => crate::show::text(out, report),
        Outcome::Decode(report) => crate::decode::text(out, report),
        Outcome::FileUpload { upload: r } => file_line(out, "uploaded", "to", r),
        Outcome::FileDownload { download: r } => file_line(out, "downloaded", "from", r),
        Outcome::FileStatus { name, len } => writeln!(out, "{name}: {len} bytes"),
        Outcome::FileHash(h) => writeln!(out, "{}  {} ({}, {} bytes)", h.output, h.name, h.kind, h.len),
        Outcome::FileHashTypes { types } => {
            for (name, t) in types {
                let what = if t.format == 1 { "hash" } else { "checksum" };
                writeln!(out, "{name:<8} {what}, {} bytes", t.size)?;
            }
            Ok(())
        }
        Outcome::FileClosed { .. } => writeln!(out, "open file closed"),
        Outcome::Shell { output, ret } => {
            // Zephyr's shell ends lines with CR LF and starts its output with one; a terminal
            // wants neither the CRs nor the leading empty line (`--json` keeps the text as sent).
            let text = output.replace("\r\n", "\n");
            let text = text.strip_prefix('\n').unwrap_or(&text);
            write!(out, "{text}")?;
            if !text.is_empty() && !text.ends_with('\n') {
                writeln!(out)?;
            }
            if *ret != 0 {
                eprintln!("command returned {ret}");
            }
            Ok(())
        }
        Outcome::StatList { groups } => {
            for g in groups {
                writeln!(out, "{g}")?;
            }
            Ok(())
        }
        Outcome::Stat { name, fields } => {
            writeln!(out, "{name}:")?;
            for (k, v) in fields {
                writeln!(out, "  {k:<24} {v}")?;
            }
            Ok(())
        }
        Outcome::Setting(s) => match &s.text {
            Some(t) => writeln!(out, "{} = {} ({t:?})", s.name, s.hex),
            None => writeln!(out, "{} = {}", s.name, s.hex),
        },
        Outcome::SettingsDone { done, name: Some(n) } => writeln!(out, "{n} {done}"),
        Outcome::SettingsDone { done, name: None } => writeln!(out, "settings {done}"),
        Outcome::Groups { groups } => {
            for g in groups {
                match g.handlers {
                    Some(h) => writeln!(out, "{:<5} {} ({h} commands)", g.group, g.name)?,
                    None => writeln!(out, "{:<5} {}", g.group, g.name)?,
                }
            }
            Ok(())
        }
        Outcome::Tasks { tasks } => {
            writeln!(
                out,
                "{:<20} {:>5} {:>4} {:>6} {:>12} {:>8}",
                "task", "prio", "tid", "state", "stack", "switches"
            )?;
            for (name, t) in tasks {
                writeln!(
                    out,
                    "{name:<20} {:>5} {:>4} {:>6} {:>12} {:>8}",
                    t.prio,
                    t.tid,
                    t.state,
                    match (t.stkuse, t.stksiz) {
                        (Some(u), Some(s)) => format!("{u}/{s}"),
                        _ => "-".into(),
                    },
                    t.cswcnt
                )?;
            }
            Ok(())
        }
        Outcome::MemPools { mpools } => {
            for (name, p) in mpools {
                writeln!(
                    out,
                    "{name:<20} {} blocks of {} bytes, {} free (fewest {})",
                    p.nblks, p.blksiz, p.nfree, p.min
                )?;
            }
            if mpools.is_empty() {
                writeln!(out, "(no memory pools)")?;
            }
            Ok(())
        }
        Outcome::DateTime { datetime } => writeln!(out, "{datetime}"),
        Outcome::StorageErased { .. } => writeln!(out, "storage partition erased"),
        Outcome::Slots { images } => {
            writeln!(out, "{:<6} {:<5} {:>10} {:>14}", "image", "slot", "size", "max image")?;
            for i in images {
                for s in &i.slots {
                    let max = i.max_image_size.map_or("-".into(), |m| m.to_string());
                    writeln!(out, "{:<6} {:<5} {:>10} {:>14}", i.image, s.slot, s.size, max)?;
                }
            }
            Ok(())
        }
    }
}

fn file_line(out: &mut impl Write, did: &str, dir: &str, r: &FileReport) -> io::Result<()> {
    let secs = r.seconds.max(1e-6);
    write!(
        out,
        "{did} {} bytes {dir} {} in {:.2} s ({:.1} KiB/s, {}-byte chunks, {} in flight)",
        r.bytes,
        r.remote,
        r.seconds,
        r.bytes as f64 / secs / 1024.0,
        r.chunk,
        r.window
    )?;
    if r.attempts > 1 {
        write!(
            out,
            "; the first transfer did not match the device's hash, the second went one request at a time"
        )?;
    }
    match &r.verified {
        Some(v) => writeln!(out, "; {} matches: {}", v.kind.name(), v.value),
        None => writeln!(out, "; not checked (the device has no file hash)"),
    }
}

fn flags(s: &SlotState) -> String {
    let mut f = Vec::new();
    for (on, name) in [
        (s.active, "active"),
        (s.confirmed, "confirmed"),
        (s.pending, "pending"),
        (s.permanent, "permanent"),
        (!s.bootable, "not-bootable"),
    ] {
        if on {
            f.push(name);
        }
    }
    f.join(" ")
}

/// The image list as an aligned table.
fn image_table(out: &mut impl Write, images: &[SlotState]) -> io::Result<()> {
    writeln!(out, "{:<6} {:<5} {:<16} {:<18} flags", "image", "slot", "version", "hash")?;
    for s in images {
        let hash = s.hash.as_ref().map_or_else(|| "-".into(), |h| h.short(8));
        writeln!(out, "{:<6} {:<5} {:<16} {:<18} {}", s.image, s.slot, s.version, hash, flags(s))?;
    }
    if images.is_empty() {
        writeln!(out, "(no images)")?;
    }
    Ok(())
}
