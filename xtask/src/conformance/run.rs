//! One server's row: each command run with the real `smpflash` binary, judged against an
//! expectation computed beforehand from the manifest and the fixtures README's measured facts
//! ([`Rules`]).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use smpflash_core::command::encode_request;
use smpflash_core::command::os::Echo;
use smpflash_core::frame::{Frame, Header, Op, Version};
use smpflash_serial::codec::encoded_len;

use super::child::ChildGuard;
use super::fixtures::{Entry, Fixtures, Framing, Server, Transport};

/// The columns of the table, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// The server started and answered an SMP echo sent by hand in its own framing.
    Start,
    /// `smpflash echo` of a short text.
    Echo,
    /// `smpflash echo` whose request frame fills the device's SMP buffer.
    EchoFull,
    /// `smpflash params`.
    Params,
    /// `smpflash info`.
    Info,
    /// `smpflash image list`.
    ImageList,
    /// `smpflash image upload` of the fixture's signed image to slot 1, then `image list`.
    Upload,
    /// `smpflash image erase`, then `image list`.
    Erase,
    /// `smpflash fs upload|stat|hash|download` of a small file (fs group).
    Fs,
    /// `smpflash shell exec -- kernel version`.
    Shell,
    /// `smpflash stat list` and `stat read smp_svr_stats`.
    Stat,
    /// `smpflash settings get` (no handler registered: root key not found) and `settings commit`.
    Settings,
    /// `smpflash enum`: the groups the manifest lists.
    Enum,
    /// `smpflash os tasks` and `os datetime`.
    OsTasks,
    /// `smpflash storage erase` (Zephyr basic).
    Storage,
    /// `smpflash reset`, then what the device does.
    Reset,
    /// `smpflash dfu` of an image that differs from the running one (the fixture's image
    /// re-signed as version 1.0.0 with `imgtool`), ending with the new image running.
    Dfu,
    /// `smpflash reset --boot-mode 1`, then `smpflash dfu` of another image in MCUboot's serial
    /// recovery, ending with the check of what runs after the reset.
    Recovery,
}

/// Every column.
pub const COLUMNS: [Column; 18] = [
    Column::Start,
    Column::Echo,
    Column::EchoFull,
    Column::Params,
    Column::Info,
    Column::ImageList,
    Column::Upload,
    Column::Erase,
    Column::Fs,
    Column::Shell,
    Column::Stat,
    Column::Settings,
    Column::Enum,
    Column::OsTasks,
    Column::Storage,
    Column::Reset,
    Column::Dfu,
    Column::Recovery,
];

impl Column {
    /// The table heading.
    pub fn title(self) -> &'static str {
        match self {
            Column::Start => "start",
            Column::Echo => "echo",
            Column::EchoFull => "echo (full buffer)",
            Column::Params => "params",
            Column::Info => "info",
            Column::ImageList => "image list",
            Column::Upload => "image upload",
            Column::Erase => "image erase",
            Column::Fs => "fs",
            Column::Shell => "shell",
            Column::Stat => "stat",
            Column::Settings => "settings",
            Column::Enum => "enum",
            Column::OsTasks => "os tasks",
            Column::Storage => "storage erase",
            Column::Reset => "reset",
            Column::Dfu => "dfu",
            Column::Recovery => "dfu in recovery",
        }
    }
}

/// How a cell came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// As expected.
    Pass,
    /// The device answered with the error the rules expect, and smpflash reported it clearly.
    ExpectedDeviceError,
    /// The fixture cannot show the outcome a real device would (QEMU re-applies its loader
    /// images at every reset); smpflash reported exactly what the rules predict for it.
    FixtureLimit,
    /// A known gap (listed in docs/conformance.md); does not fail the run.
    Gap(&'static str),
    /// The command does not apply to this server.
    NotApplicable,
    /// Not run (the server did not start).
    NotRun,
    /// Not as expected: fails the run.
    Fail,
}

/// One cell.
#[derive(Debug, Clone)]
pub struct Cell {
    /// How it came out.
    pub verdict: Verdict,
    /// What happened, briefly.
    pub note: String,
}

impl Cell {
    fn pass(note: impl Into<String>) -> Cell {
        Cell { verdict: Verdict::Pass, note: note.into() }
    }
    fn fail(note: impl Into<String>) -> Cell {
        Cell { verdict: Verdict::Fail, note: note.into() }
    }
    // No cell is a known gap right now (raw framing and line pacing closed the last ones); a
    // rule that meets a limit of smpflash it cannot pass yet marks its cell with this.
    #[allow(dead_code)]
    fn gap(kind: &'static str, note: impl Into<String>) -> Cell {
        Cell { verdict: Verdict::Gap(kind), note: note.into() }
    }
    fn na(note: impl Into<String>) -> Cell {
        Cell { verdict: Verdict::NotApplicable, note: note.into() }
    }
}

/// One server's results.
#[derive(Debug, Clone)]
pub struct Row {
    /// The manifest's `config`.
    pub config: String,
    /// `native_sim` or `mps2_an385`.
    pub target: String,
    /// The manifest's transport name.
    pub transport: &'static str,
    /// One cell per [`COLUMNS`] entry.
    pub cells: Vec<Cell>,
    /// How long the row took.
    pub seconds: f64,
}

impl Row {
    /// Whether any cell failed.
    pub fn failed(&self) -> bool {
        self.cells.iter().any(|c| c.verdict == Verdict::Fail)
    }
}

/// Bytes of the SMP buffer Zephyr's serial transport spends besides the frame: the packet's
/// 2-byte length and 2-byte CRC (smpflash's `SerialTransport::frame_overhead`).
pub const SERIAL_FRAME_OVERHEAD: usize = 4;

/// The IP and UDP headers under native_sim's 1500-byte MTU (the README: frames over about 1500
/// bytes get `rc 9`).
pub fn udp_frame_limit(ipv6: bool) -> usize {
    1500 - if ipv6 { 40 } else { 20 } - 8
}

/// What each cell expects, computed from the manifest entry and the README's measured facts
/// before anything runs.
#[derive(Debug, Clone)]
pub struct Rules {
    /// `serial_raw`: the server speaks the raw framing; smpflash runs without `--framing` and
    /// must detect it (console probe unanswered, raw probe answered), then pass like the rest.
    pub raw_framing: bool,
    /// The img group is compiled in.
    pub img: bool,
    /// The full-buffer frame.
    pub full_frame: usize,
    /// The echo text that makes the request exactly `full_frame` bytes (or the largest below).
    pub full_text: usize,
    /// README: `native_sim.serial`, `.shell`, `.serial_line512` drop bursts longer than about
    /// two 128-character lines; true when the full-buffer frame is such a burst.
    pub full_frame_dropped: bool,
    /// README: the `os info` answer does not fit a 96-byte buffer (`rc 7`); the rule: any buffer
    /// under 128 bytes.
    pub info_does_not_fit: bool,
    /// README: `serial_noparams` has the params command compiled out (`rc 8`).
    pub params_absent: bool,
    /// README: native_sim exits on `os reset`; mps2 comes back.
    pub reset_exits: bool,
    /// The mps2 boards (console or raw framing): MCUboot RAM_LOAD, the img group; `dfu` runs.
    pub dfu: bool,
    /// The builds the recovery update runs on (one 4.4.0, the `27c54835` one): `reset
    /// --boot-mode 1` enters MCUboot's serial recovery (README).
    pub recovery_dfu: bool,
}

/// How many bytes Zephyr's echo answer is longer than smpflash's echo request of the same text:
/// the indefinite-length map's closing `FF`.
pub const RAW_ECHO_ANSWER_GROWTH: usize = 1;

/// The servers the recovery update runs on: one 4.4.0 build and the `27c54835` build, whose
/// recovery answers params (README).
const RECOVERY_DFU: [&str; 2] = ["serial_recovery_buf1024", "serial_recovery"];

/// The pause between console lines for the builds that drop bursts (`--line-delay`).
const PACED_LINE_MS: u64 = 10;

/// Builds of the README's list that drop long bursts on their emulated UART.
const BURST_DROPPING: [&str; 3] = ["serial", "shell", "serial_line512"];

/// The request frame length of an echo of `n` characters.
pub fn echo_frame_len(n: usize) -> usize {
    encode_request(&Echo { d: "x".repeat(n) }, Version::V1, 0).map(|f| f.len()).unwrap_or(usize::MAX)
}

impl Rules {
    /// The rules for one server.
    pub fn of(e: &Entry) -> Rules {
        let full_frame = match e.framing() {
            Framing::Datagram => e.buf_size.min(udp_frame_limit(e.ip_family.as_deref() == Some("ipv6"))),
            Framing::Console => e.buf_size - SERIAL_FRAME_OVERHEAD,
            // The raw framing puts the request frame alone in the buffer, but then the echo's
            // answer is the binding limit: Zephyr encodes the answer's map with indefinite
            // length (`BF … FF`, zcbor without canonical encoding), one byte more than the
            // request's definite map (`A1 …`), and the answer must fit the same buffer size. A
            // `buf_size` request is taken and answered `rc 7` (measured).
            Framing::Raw => e.buf_size - RAW_ECHO_ANSWER_GROWTH,
        };
        let full_text = (0..full_frame).rev().find(|&n| echo_frame_len(n) <= full_frame).unwrap_or(0);
        let burst = 2 * 128;
        Rules {
            raw_framing: e.transport == Transport::SerialRaw,
            img: e.has_group("img"),
            full_frame,
            full_text,
            full_frame_dropped: e.target == "native_sim"
                && BURST_DROPPING.contains(&e.config.as_str())
                && encoded_len(full_frame) > burst,
            info_does_not_fit: e.buf_size < 128,
            params_absent: e.config.contains("noparams"),
            reset_exits: e.target == "native_sim",
            dfu: e.target == "mps2_an385" && e.has_group("img"),
            recovery_dfu: e.target == "mps2_an385"
                && e.serial_recovery
                && e.framing() == Framing::Console
                && RECOVERY_DFU.contains(&e.config.as_str()),
        }
    }
}

/// One smpflash invocation's result.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Exit code (None: killed after its time limit).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// How long it ran.
    pub elapsed: Duration,
}

impl Outcome {
    /// The `--json` document on stdout.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.stdout).ok()
    }

    /// What smpflash said, briefly: its JSON error, or the last line of its output.
    pub fn said(&self) -> String {
        let text = match self.json() {
            Some(v) if v.get("error").is_some() => {
                format!(
                    "exit {}: {}",
                    self.code.map_or("killed".into(), |c| c.to_string()),
                    v["error"].as_str().unwrap_or("")
                )
            }
            _ => {
                let last = self.stdout.lines().chain(self.stderr.lines()).rfind(|l| !l.trim().is_empty());
                format!(
                    "exit {}: {}",
                    self.code.map_or("killed".into(), |c| c.to_string()),
                    last.unwrap_or("")
                )
            }
        };
        shorten(&text, 160)
    }
}

fn shorten(s: &str, max: usize) -> String {
    let s = s.replace('|', "/").replace('\n', " ");
    if s.chars().count() <= max {
        s
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

/// Builds `smpflash` once (with cargo, honouring `CARGO_TARGET_DIR`) and returns its path.
pub fn build_smpflash(root: &Path) -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "-p",
        "smpflash-cli",
        "--bin",
        "smpflash",
        "--message-format=json-render-diagnostics",
    ])
    .current_dir(root)
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    // A guarded child: Ctrl-C during the build stops cargo too.
    let mut build = ChildGuard::spawn(&mut cmd, "cargo build").context("cannot run cargo build")?;
    let mut stdout = String::new();
    build.child_mut().stdout.take().expect("piped").read_to_string(&mut stdout)?;
    let status = build.wait_within(Duration::from_secs(3600))?;
    if !status.is_some_and(|s| s.success()) {
        bail!("cargo build -p smpflash-cli failed");
    }
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["reason"] == "compiler-artifact" && v["target"]["name"] == "smpflash")
        .find_map(|v| v["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| anyhow!("cargo build named no smpflash executable"))
}

/// Runs `smpflash` against `server` with `args` after the link options, killed after `limit`.
pub fn smpflash(server: &Server, bin: &Path, args: &[&str], limit: Duration) -> Outcome {
    let mut cmd = server.command(bin);
    cmd.args(server.smpflash_link_args()).args(args);
    run_limited(cmd, limit)
}

fn run_limited(mut cmd: Command, limit: Duration) -> Outcome {
    let start = Instant::now();
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = match ChildGuard::spawn(&mut cmd, "smpflash") {
        Ok(c) => c,
        Err(e) => {
            return Outcome {
                code: Some(-1),
                stdout: String::new(),
                stderr: format!("cannot start: {e}"),
                elapsed: start.elapsed(),
            }
        }
    };
    let out = child.child_mut().stdout.take().expect("piped");
    let err = child.child_mut().stderr.take().expect("piped");
    let read = |mut p: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut s = Vec::new();
            let _ = p.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let (out, err) = (read(Box::new(out)), read(Box::new(err)));
    let status = child.wait_within(limit).ok().flatten();
    child.kill();
    Outcome {
        code: status.and_then(|s| s.code()),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        elapsed: start.elapsed(),
    }
}

const SHORT: Duration = Duration::from_secs(20);
const UPLOAD: Duration = Duration::from_secs(240);

/// Starts `entry`, runs every column against it, and stops it. `progress` gets a line per cell.
pub fn row(fixtures: &Fixtures, entry: &Entry, bin: &Path, scratch: &Path, progress: &dyn Fn(&str)) -> Row {
    let start = Instant::now();
    let rules = Rules::of(entry);
    let mut cells = Vec::new();
    let mut server = match Server::start(fixtures, entry, scratch) {
        Ok(s) => s,
        Err(e) => {
            let note = shorten(&format!("{e:#}"), 300);
            progress(&format!("start: FAIL: {note}"));
            cells.push(Cell::fail(note));
            cells.resize(COLUMNS.len(), Cell { verdict: Verdict::NotRun, note: String::new() });
            return Row {
                config: entry.config.clone(),
                target: entry.target.clone(),
                transport: entry.transport.name(),
                cells,
                seconds: start.elapsed().as_secs_f64(),
            };
        }
    };
    let framing = match server.framing {
        Framing::Raw => "raw frame",
        Framing::Console => "console frame",
        Framing::Datagram => "datagram",
    };
    cells.push(Cell::pass(format!("{:.1} s; echo by hand, {framing}", server.ready_after.as_secs_f64())));
    progress(&format!("start: {}", cells[0].note));
    let images = Images::build(fixtures, entry, &rules, scratch);
    for column in &COLUMNS[1..] {
        let cell = match column {
            Column::Dfu | Column::Recovery => check_dfu(*column, &rules, &server, &images, bin),
            Column::Fs
            | Column::Shell
            | Column::Stat
            | Column::Settings
            | Column::Enum
            | Column::OsTasks
            | Column::Storage => super::groups::check(*column, &rules, &server, bin, scratch),
            _ => check(*column, &rules, &mut server, fixtures, bin),
        };
        progress(&format!("{}: {:?}: {}", column.title(), cell.verdict, cell.note));
        cells.push(cell);
    }
    Row {
        config: entry.config.clone(),
        target: entry.target.clone(),
        transport: entry.transport.name(),
        cells,
        seconds: start.elapsed().as_secs_f64(),
    }
}

/// Ok(document) for exit 0 with a JSON document; otherwise the failing cell.
fn ok_json(o: &Outcome) -> std::result::Result<Value, Cell> {
    match (o.code, o.json()) {
        (Some(0), Some(v)) => Ok(v),
        _ => Err(Cell::fail(o.said())),
    }
}

fn check(column: Column, r: &Rules, server: &mut Server, fixtures: &Fixtures, bin: &Path) -> Cell {
    let e = server.entry.clone();
    let no_img = || Cell::na("no img group");
    match column {
        Column::Start => unreachable!("the start cell comes from the launcher"),
        Column::Dfu | Column::Recovery => unreachable!("check_dfu runs the DFU columns"),
        Column::Fs
        | Column::Shell
        | Column::Stat
        | Column::Settings
        | Column::Enum
        | Column::OsTasks
        | Column::Storage => unreachable!("groups::check runs the group columns"),
        Column::Echo => {
            let text = "conformance";
            let o = smpflash(server, bin, &["--json", "--timeout", "2", "echo", text], SHORT);
            match ok_json(&o) {
                Ok(v) if v["echo"] == text && r.raw_framing => Cell::pass("raw framing detected"),
                Ok(v) if v["echo"] == text => Cell::pass(""),
                Ok(v) => Cell::fail(format!("echoed {}", v["echo"])),
                Err(c) => c,
            }
        }
        Column::ImageList | Column::Upload | Column::Erase if !r.img => no_img(),
        Column::EchoFull => {
            let text = "x".repeat(r.full_text);
            let frame = echo_frame_len(r.full_text);
            // Rule (README): these emulated UARTs drop bursts over ~2 lines, so the lines are
            // paced as a user of such a device would (`--line-delay`); 10 ms lets each line
            // drain (measured by hand: the same frame goes through at 10 ms).
            let paced = r.full_frame_dropped.then(|| PACED_LINE_MS.to_string());
            if paced.is_some() {
                // Unpaced first: the frame is lost, and the timeout must come with the advice
                // to pace (smpflash found the console framing from its short probe).
                let o = smpflash(server, bin, &["--json", "--timeout", "1", "echo", text.as_str()], SHORT);
                let said =
                    o.json().and_then(|v| v["error"].as_str().map(String::from)).unwrap_or_else(|| o.said());
                if o.code != Some(6) || !said.contains("--line-delay") {
                    return Cell::fail(format!(
                        "unpaced {frame} B frame: expected a timeout (exit 6) advising --line-delay, got \
                         exit {:?}: {said}",
                        o.code
                    ));
                }
            }
            let mut args = vec!["--json"];
            if let Some(ms) = &paced {
                args.extend(["--line-delay", ms.as_str()]);
            }
            args.extend(["echo", text.as_str()]);
            let o = smpflash(server, bin, &args, SHORT);
            let how = match &paced {
                Some(ms) => {
                    format!("{frame} B frame, paced {ms} ms (unpaced: lost, pacing advised)")
                }
                None => format!("{frame} B frame"),
            };
            match ok_json(&o) {
                Ok(v) if v["echo"] == text.as_str() => Cell::pass(how),
                Ok(_) => Cell::fail(format!("{how}: the echo came back different")),
                Err(c) => {
                    Cell::fail(format!("{how} ({} B of console lines): {}", encoded_len(frame), c.note))
                }
            }
        }
        Column::Params => {
            let o = smpflash(server, bin, &["--json", "params"], SHORT);
            match ok_json(&o) {
                Err(c) => c,
                Ok(v) if r.params_absent => {
                    if v["reported"] == false {
                        Cell {
                            verdict: Verdict::ExpectedDeviceError,
                            note: "rc 8: \"does not report its buffers\"".into(),
                        }
                    } else {
                        Cell::fail(format!("expected no params (compiled out), got {v}"))
                    }
                }
                Ok(v) => {
                    if v["reported"] == true && v["buf_size"] == e.buf_size && v["buf_count"] == e.buf_count {
                        Cell::pass(format!("{} × {}", e.buf_size, e.buf_count))
                    } else {
                        Cell::fail(format!("expected {} × {} reported, got {v}", e.buf_size, e.buf_count))
                    }
                }
            }
        }
        Column::Info => {
            let o = smpflash(server, bin, &["--json", "info"], SHORT);
            if r.info_does_not_fit {
                let said = o.said();
                return if o.code == Some(4) && said.contains("rc 7") {
                    Cell {
                        verdict: Verdict::ExpectedDeviceError,
                        note: format!("rc 7 reported, exit 4; smpflash: {said}"),
                    }
                } else {
                    Cell::fail(format!(
                        "expected the device's rc 7 (os info does not fit {} B) reported as a device error (exit 4); smpflash: {}",
                        e.buf_size,
                        shorten(&o.stdout, 200)
                    ))
                };
            }
            match ok_json(&o) {
                Err(c) => c,
                Ok(v) => {
                    let app = v["application"].as_str().unwrap_or("");
                    if !app.contains("Zephyr") {
                        Cell::fail(format!("expected the os info text, got {}", v["application"]))
                    } else if !v["bootloader"].is_null() {
                        Cell::fail(format!(
                            "expected no bootloader info (rc 8, README), got {}",
                            v["bootloader"]
                        ))
                    } else {
                        Cell::pass("os info; bootloader unknown (rc 8)")
                    }
                }
            }
        }
        Column::ImageList => {
            let o = smpflash(server, bin, &["--json", "image", "list"], SHORT);
            match ok_json(&o) {
                Err(c) => c,
                Ok(v) => match slot(&v, 0) {
                    Some(s) if s["active"] == true => {
                        Cell::pass(format!("slot 0 active: {}", hash_prefix(&s["hash"])))
                    }
                    _ => Cell::fail(format!(
                        "expected an active image in slot 0, got {}",
                        shorten(&v.to_string(), 200)
                    )),
                },
            }
        }
        Column::Upload => {
            let Some(image) = e.signed_image() else {
                return Cell::fail("the manifest names no signed image");
            };
            let file = fixtures.dir.join(image);
            let file = file.to_string_lossy();
            let shown = run_limited(
                {
                    let mut c = Command::new(bin);
                    c.args(["--json", "image", "show", &file]);
                    c
                },
                SHORT,
            );
            let Some(hash) = shown.json().and_then(|v| v["images"][0]["hash"].as_str().map(str::to_string))
            else {
                return Cell::fail(format!("image show: {}", shown.said()));
            };
            let o = smpflash(server, bin, &["--json", "image", "upload", &file], UPLOAD);
            if let Err(c) = ok_json(&o) {
                return c;
            }
            let seconds = o.elapsed.as_secs_f64();
            let l = smpflash(server, bin, &["--json", "image", "list"], SHORT);
            match ok_json(&l) {
                Err(c) => Cell::fail(format!("list after upload: {}", c.note)),
                Ok(v) => match slot(&v, 1) {
                    Some(s) if s["hash"] == hash.as_str() => {
                        // The fixture's own image is the one running: `status` must say so.
                        match status_says(server, bin, "same_image_in_both_slots") {
                            Ok(()) => Cell::pass(format!(
                                "{seconds:.1} s, in slot 1: {}, status agrees",
                                &hash[..8]
                            )),
                            Err(c) => c,
                        }
                    }
                    _ => Cell::fail(format!(
                        "slot 1 does not list {}: {}",
                        &hash[..8],
                        shorten(&v.to_string(), 200)
                    )),
                },
            }
        }
        Column::Erase => {
            let o = smpflash(server, bin, &["--json", "image", "erase"], SHORT);
            match ok_json(&o) {
                Err(c) => c,
                Ok(v) if v["erased"] != 1 => Cell::fail(format!("expected erased 1, got {v}")),
                Ok(_) => {
                    let l = smpflash(server, bin, &["--json", "image", "list"], SHORT);
                    match ok_json(&l) {
                        Err(c) => Cell::fail(format!("list after erase: {}", c.note)),
                        Ok(v) => match slot(&v, 1) {
                            Some(s) if !s["hash"].is_null() => {
                                Cell::fail(format!("slot 1 still lists {}", s["hash"]))
                            }
                            _ => match status_says(server, bin, "nothing_uploaded") {
                                Ok(()) => Cell::pass("slot 1 empty, status agrees"),
                                Err(c) => c,
                            },
                        },
                    }
                }
            }
        }
        Column::Reset => {
            let ticks_before = if r.reset_exits || !e.has_group("stat") {
                None
            } else {
                // Far enough from boot that a restarted counter is smaller.
                while stat_ticks(server).is_ok_and(|t| t < 3) {
                    thread::sleep(Duration::from_millis(500));
                }
                match stat_ticks(server) {
                    Ok(t) => Some(t),
                    Err(err) => return Cell::fail(format!("before reset, stat read: {err:#}")),
                }
            };
            let o = smpflash(server, bin, &["--json", "reset"], SHORT);
            match ok_json(&o) {
                Err(c) => return c,
                Ok(v) if v["reset"] != true => return Cell::fail(format!("expected reset true, got {v}")),
                Ok(_) => {}
            }
            if r.reset_exits {
                return match server.wait_exit(Duration::from_secs(5)) {
                    Ok(Some(_)) => Cell::pass("answered, then the process exited"),
                    _ => Cell::fail("answered, but the native_sim process did not exit (README: it does)"),
                };
            }
            // An echo right after the answer may come from the application before it resets:
            // the device is back when the sample's `ticks` counter (seconds since boot) started
            // again, or, without the stat group, when it answers after the reset delay.
            let back = Instant::now();
            let budget = Duration::from_secs(40);
            match ticks_before {
                Some(before) => loop {
                    match stat_ticks(server) {
                        Ok(t) if t < before => break,
                        _ if back.elapsed() > budget => {
                            return Cell::fail(format!(
                                "answered, but the device did not restart within {budget:?} (stat ticks never fell below {before})"
                            ))
                        }
                        _ => thread::sleep(Duration::from_millis(200)),
                    }
                },
                None => {
                    thread::sleep(Duration::from_secs(2));
                    if let Err(err) = server.wait_ready(budget) {
                        return Cell::fail(format!("answered, but the device did not come back: {err:#}"));
                    }
                }
            }
            let restarted = back.elapsed();
            let o = smpflash(server, bin, &["--json", "echo", "back"], SHORT);
            match ok_json(&o) {
                Ok(v) if v["echo"] == "back" => Cell::pass(format!(
                    "answered, back in {:.1} s (stat ticks {} → {}), echo ok",
                    restarted.as_secs_f64(),
                    ticks_before.map_or("?".into(), |t| t.to_string()),
                    stat_ticks(server).map_or("?".into(), |t| t.to_string()),
                )),
                Ok(v) => Cell::fail(format!("after reset echoed {v}")),
                Err(c) => Cell::fail(format!("after reset: {}", c.note)),
            }
        }
    }
}

/// The images the DFU columns send, built from the fixture's own `.signed.bin` with imgtool.
struct Images {
    /// For the application's update: version 1.0.0 (the fixtures run 0.0.0), the fixture's own
    /// load address so it runs. `Err` says why it could not be built.
    dfu: std::result::Result<(PathBuf, String), String>,
    /// For the recovery update: version 2.0.0, load address 0x20050000 (the primary slot's
    /// RAM address: README, RAM_LOAD MCUboot lists an image by hashing RAM at its load
    /// address, so only such an image is listed after a recovery upload).
    recovery: std::result::Result<(PathBuf, String), String>,
}

/// The primary slot's SRAM address on the mps2-an385 fixtures (README).
const PRIMARY_SLOT_RAM: u32 = 0x2005_0000;

impl Images {
    fn build(fixtures: &Fixtures, e: &Entry, r: &Rules, scratch: &Path) -> Images {
        let none = || Err("not built".to_string());
        if !r.dfu {
            return Images { dfu: none(), recovery: none() };
        }
        let payload = (|| -> Result<(PathBuf, u32)> {
            let image = e.signed_image().context("the manifest names no signed image")?;
            let bytes = std::fs::read(fixtures.dir.join(&image)).with_context(|| image.clone())?;
            let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().expect("4 bytes"));
            let (load, hdr, size) =
                (u32_at(4), u16::from_le_bytes([bytes[8], bytes[9]]) as usize, u32_at(12) as usize);
            let body = bytes.get(hdr..hdr + size).context("the image is shorter than its header says")?;
            let path = scratch.join(format!("{}-payload.bin", e.config));
            std::fs::write(&path, body)?;
            Ok((path, load))
        })();
        let (payload, load) = match payload {
            Ok(p) => p,
            Err(err) => return Images { dfu: Err(format!("{err:#}")), recovery: Err(format!("{err:#}")) },
        };
        let sign = |version: &str, load: u32, name: &str| -> std::result::Result<(PathBuf, String), String> {
            let out = scratch.join(format!("{}-{name}", e.config));
            let o = Command::new("imgtool")
                .args(["sign", "--version", version, "--header-size", "0x200", "--pad-header"])
                .args(["--slot-size", "0x80000", "--load-addr", &format!("{load:#x}")])
                .arg(&payload)
                .arg(&out)
                .output()
                .map_err(|err| format!("cannot run imgtool (pip install imgtool): {err}"))?;
            if !o.status.success() {
                return Err(format!("imgtool sign: {}", String::from_utf8_lossy(&o.stderr).trim()));
            }
            let digest = image_hash(&out)?;
            Ok((out, digest))
        };
        Images {
            dfu: sign("1.0.0", load, "dfu-v1.0.0.bin"),
            recovery: if r.recovery_dfu {
                sign("2.0.0", PRIMARY_SLOT_RAM, "recovery-v2.0.0.bin")
            } else {
                none()
            },
        }
    }
}

/// The MCUboot image hash of a file, as smpflash's `image show` computes it.
fn image_hash(path: &Path) -> std::result::Result<String, String> {
    let image = smpflash_core::mcuboot::load(path).map_err(|e| e.to_string())?;
    Ok(image.images[0].image.hash().iter().map(|b| format!("{b:02x}")).collect())
}

/// The DFU step names of a run's JSON lines (`{"event":"step","step":{"step":"reset"}}`).
fn steps_of(o: &Outcome) -> Vec<String> {
    o.stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == "step")
        .filter_map(|v| v["step"]["step"].as_str().map(str::to_string))
        .collect()
}

/// The notes of a run's JSON lines.
fn notes_of(o: &Outcome) -> Vec<Value> {
    o.stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == "note")
        .map(|v| v["note"].clone())
        .collect()
}

fn check_dfu(column: Column, r: &Rules, server: &Server, images: &Images, bin: &Path) -> Cell {
    match column {
        Column::Dfu if !r.dfu => Cell::na("not an mps2 board"),
        Column::Recovery if !r.recovery_dfu => Cell::na(if r.dfu {
            "run on serial_recovery_buf1024 and serial_recovery"
        } else {
            "not an mps2 board"
        }),
        Column::Dfu => {
            let (file, hash) = match &images.dfu {
                Ok(x) => x,
                Err(why) => return Cell::fail(format!("cannot build the update image: {why}")),
            };
            // Rule (README): RAM_LOAD, no bootloader info, state writes refused with rc 8; the
            // update is built for RAM_LOAD, so smpflash must infer the mode, upload, reset
            // without marks and see the new image run.
            let o = smpflash(server, bin, &["--json", "dfu", &file.to_string_lossy()], UPLOAD);
            let v = match ok_json(&o) {
                Ok(v) => v,
                Err(c) => return c,
            };
            let said = notes_of(&o).iter().any(|n| n["note"] == "newest_valid_boots");
            let s = steps_of(&o);
            let running = v["after"].as_array().and_then(|a| a.iter().find(|s| s["active"] == true));
            match running {
                Some(run) if run["hash"] == hash.as_str() && said && !s.iter().any(|x| x == "mark") => {
                    Cell::pass(format!(
                        "1.0.0 runs from slot {}: {}, RAM_LOAD inferred, no marks; {:.1} s",
                        run["slot"],
                        &hash[..8],
                        o.elapsed.as_secs_f64()
                    ))
                }
                Some(run) if run["hash"] == hash.as_str() => Cell::fail(format!(
                    "the new image runs, but smpflash did not say why it did not mark (notes {:?}, steps {s:?})",
                    notes_of(&o)
                )),
                _ => Cell::fail(format!(
                    "exit 0 but the new image {} does not run: {}",
                    &hash[..8],
                    shorten(&v["after"].to_string(), 200)
                )),
            }
        }
        Column::Recovery => {
            let (file, hash) = match &images.recovery {
                Ok(x) => x,
                Err(why) => return Cell::fail(format!("cannot build the recovery image: {why}")),
            };
            let o = smpflash(server, bin, &["--json", "reset", "--boot-mode", "1"], SHORT);
            if let Err(c) = ok_json(&o) {
                return Cell::fail(format!("reset --boot-mode 1: {}", c.note));
            }
            thread::sleep(Duration::from_secs(2));
            // In recovery: echo answers rc 8 (README).
            let o = smpflash(server, bin, &["--json", "--timeout", "3", "echo", "x"], SHORT);
            if !(o.code == Some(4) && o.said().contains("rc 8")) {
                return Cell::fail(format!(
                    "after reset --boot-mode 1, expected echo rc 8 (recovery): {}",
                    o.said()
                ));
            }
            let o = smpflash(server, bin, &["--json", "dfu", &file.to_string_lossy()], UPLOAD);
            let s = steps_of(&o);
            let recovered = notes_of(&o).iter().any(|n| n["note"] == "serial_recovery");
            let verified_upload = s.iter().any(|x| x == "verify_upload") && s.iter().any(|x| x == "reset");
            let checked = s.last().map(String::as_str) == Some("verify_booted");
            if !(recovered && verified_upload && checked) {
                return Cell::fail(format!(
                    "expected recovery recognised, the upload verified in slot 0, a reset and the check of what boots; steps {s:?}; {}",
                    o.said()
                ));
            }
            // Rule (README): QEMU re-applies its loader images at every reset, so the primary
            // slot holds the factory image again after the reset that leaves recovery, and
            // MCUboot boots the newest valid image of the two slots: the image written in
            // recovery cannot run on this fixture. smpflash must verify the upload in slot 0
            // before the reset, and after it say that another image runs (exit 5), not "done".
            let fixture_limit =
                o.code == Some(5) && o.said().contains("not the image written to its primary slot");
            let cell = if fixture_limit {
                Cell {
                    verdict: Verdict::FixtureLimit,
                    note: format!(
                        "{} verified in slot 0, QEMU reloaded slot 0, said so; {:.1} s: recovery recognised, the upload verified in slot 0, then QEMU's loader restored slot 0 at the reset and smpflash said another image runs: {}",
                        &hash[..8],
                        o.elapsed.as_secs_f64(),
                        o.said()
                    ),
                }
            } else if o.code == Some(0) {
                Cell::pass(format!(
                    "{} runs after leaving recovery; {:.1} s",
                    &hash[..8],
                    o.elapsed.as_secs_f64()
                ))
            } else {
                return Cell::fail(o.said());
            };
            // The application is back (a plain reset).
            let back = smpflash(server, bin, &["--json", "echo", "back"], SHORT);
            match ok_json(&back) {
                Ok(v) if v["echo"] == "back" => cell,
                _ => Cell::fail(format!(
                    "after the recovery update the application does not answer: {}",
                    back.said()
                )),
            }
        }
        _ => unreachable!("only the DFU columns"),
    }
}

/// `smpflash status` on image 0 must find `situation` (its sentence is shown when it does not).
fn status_says(server: &Server, bin: &Path, situation: &str) -> std::result::Result<(), Cell> {
    let o = smpflash(server, bin, &["--json", "status"], SHORT);
    let v = ok_json(&o).map_err(|c| Cell::fail(format!("status: {}", c.note)))?;
    let image = &v["images"][0];
    if image["situation"] == situation {
        Ok(())
    } else {
        Err(Cell::fail(format!(
            "status: expected {situation}, got {}: {}",
            image["situation"],
            shorten(&image["sentence"].to_string(), 200)
        )))
    }
}

fn slot(list: &Value, n: u64) -> Option<&Value> {
    list["images"].as_array()?.iter().find(|s| s["image"] == 0 && s["slot"] == n)
}

fn hash_prefix(h: &Value) -> String {
    h.as_str().map(|s| s.chars().take(8).collect()).unwrap_or_default()
}

/// `stat show smp_svr_stats` → `{"fields": {"ticks": N}}`, the Zephyr sample's seconds since
/// boot, sent as a raw frame through the launcher.
pub fn stat_ticks(server: &Server) -> Result<u64> {
    #[derive(serde::Serialize)]
    struct StatShow<'a> {
        name: &'a str,
    }
    #[derive(serde::Deserialize)]
    struct Fields {
        ticks: u64,
    }
    #[derive(serde::Deserialize)]
    struct Shown {
        fields: Fields,
    }
    let body = smpflash_core::cbor::to_vec(&StatShow { name: "smp_svr_stats" }, "stat show")?;
    let header = Header { version: Version::V1, op: Op::Read, flags: 0, len: 0, group: 2, seq: 0x77, id: 0 };
    let request = Frame::new(header, body)?.encode();
    let answer = Frame::decode(&server.exchange(&request, Duration::from_secs(2))?)?;
    if answer.header.group != 2 || answer.header.seq != 0x77 {
        bail!("an answer that is not the stat read's: {:?}", answer.header);
    }
    let shown: Shown = smpflash_core::cbor::from_slice(&answer.body, "stat show")
        .with_context(|| smpflash_core::cbor::diagnostic(&answer.body))?;
    Ok(shown.fields.ticks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(config: &str, transport: Transport, buf_size: usize, groups: &[&str]) -> Entry {
        Entry {
            artifact: format!("{config}.exe"),
            config: config.into(),
            target: "native_sim".into(),
            transport,
            buf_size,
            buf_count: 4,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            mcuboot: false,
            serial_recovery: false,
            recovery_buf_size: None,
            recovery_buf_count: None,
            line_length_max: Some(128),
            ip_family: (transport == Transport::Udp).then(|| "ipv6".into()),
            udp_port: None,
            run: None,
            qemu_cmd: None,
        }
    }

    #[test]
    fn the_full_buffer_echo_fills_the_buffer_less_the_framing() {
        let r = Rules::of(&entry("serial_buf512", Transport::Serial, 512, &["os"]));
        assert_eq!(r.full_frame, 508);
        assert_eq!(echo_frame_len(r.full_text), 508);
        assert!(!r.full_frame_dropped && !r.info_does_not_fit && !r.params_absent && !r.img);
        let udp6 = Rules::of(&entry("udp6", Transport::Udp, 2048, &["os"]));
        assert_eq!(udp6.full_frame, 1452);
        assert_eq!(echo_frame_len(udp6.full_text), 1452);
    }

    #[test]
    fn readme_facts_become_expectations() {
        assert!(Rules::of(&entry("serial_buf96", Transport::Serial, 96, &["os"])).info_does_not_fit);
        assert!(Rules::of(&entry("serial_noparams", Transport::Serial, 384, &["os"])).params_absent);
        assert!(Rules::of(&entry("serial", Transport::Serial, 384, &["os"])).full_frame_dropped);
        assert!(Rules::of(&entry("shell", Transport::Shell, 384, &["os"])).full_frame_dropped);
        assert!(!Rules::of(&entry("serial_bigrx", Transport::Serial, 384, &["os"])).full_frame_dropped);
        let raw = Rules::of(&entry("serial_raw", Transport::SerialRaw, 384, &["os", "img"]));
        assert!(raw.raw_framing && raw.img && raw.reset_exits);
        assert_eq!(raw.full_frame, 383, "the frame alone fills the buffer, less the answer's growth");
    }

    #[test]
    fn the_dfu_columns_run_on_the_console_framed_mps2_boards() {
        let mps2 = |config: &str, transport| Entry {
            target: "mps2_an385".into(),
            serial_recovery: true,
            mcuboot: true,
            ..entry(config, transport, 1024, &["os", "img"])
        };
        let r = Rules::of(&mps2("serial_recovery_buf1024", Transport::Serial));
        assert!(r.dfu && r.recovery_dfu);
        let r = Rules::of(&mps2("serial_recovery", Transport::Serial));
        assert!(r.dfu && r.recovery_dfu, "the 27c54835 build");
        let r = Rules::of(&mps2("serial_recovery_buf400", Transport::Serial));
        assert!(r.dfu && !r.recovery_dfu);
        let r = Rules::of(&mps2("serial_recovery_raw", Transport::SerialRaw));
        assert!(r.dfu && !r.recovery_dfu, "dfu over the raw framing too; recovery on the two console builds");
        assert!(!Rules::of(&entry("serial_buf1024", Transport::Serial, 1024, &["os"])).dfu);
    }
}
