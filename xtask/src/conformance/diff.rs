//! The differential test: the same raw requests ([`cases::generate`]) to a real Zephyr server
//! and to the virtual device (`smpflash sim`) set up like it, the answers compared by one rule
//! ([`shape`]); every difference is either covered by the intended list ([`intended::LIST`])
//! or fails the run.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use ciborium::Value;

use super::cases::{self, Case, Ctx, Kind};
use super::child::{self, ChildGuard};
use super::fixtures::{Entry, Fixtures, Framing, RawLink, Server, Transport};
use super::intended::{self, Intended};
use super::shape;

/// The servers of the differential test by default: native_sim over UDP (every group but
/// img), native_sim over the console framing with a bigger buffer (os, stat, enum) and with
/// every group but img (`serial_bigrx`), over the raw UART framing (`serial_raw`: how a
/// byte stream without packets is cut into requests), mps2 with MCUboot and the img group.
pub const DEFAULT_SERVERS: [&str; 5] =
    ["udp", "serial_buf1024", "serial_bigrx", "serial_raw", "serial_recovery_buf1024"];

/// The answers of one target to one case: the frames with the case's sequence number, then
/// any that came later (before the next case was sent).
pub type Answers = Vec<Vec<u8>>;

/// One case on one server.
#[derive(Debug)]
pub struct Outcome {
    /// The request.
    pub case: Case,
    /// The real server's answers.
    pub real: Answers,
    /// The virtual device's answers.
    pub sim: Answers,
    /// The differences by the rule (empty: identical).
    pub differences: Vec<String>,
    /// The intended-list entry covering them, if any.
    pub intended: Option<&'static Intended>,
}

impl Outcome {
    /// A difference nothing covers.
    pub fn unexpected(&self) -> bool {
        !self.differences.is_empty() && self.intended.is_none()
    }
}

/// One server's differential run.
#[derive(Debug)]
pub struct ServerDiff {
    /// The manifest's config.
    pub config: String,
    /// The transport both were reached by.
    pub transport: String,
    /// Each case.
    pub outcomes: Vec<Outcome>,
    /// The run could not be made (a start failed).
    pub error: Option<String>,
    /// How long it took.
    pub seconds: f64,
}

impl ServerDiff {
    /// Whether it fails the run.
    pub fn failed(&self) -> bool {
        self.error.is_some() || self.outcomes.iter().any(Outcome::unexpected)
    }
}

/// The virtual device as a child process.
struct Sim {
    _child: ChildGuard,
    udp: SocketAddr,
    pty: Option<PathBuf>,
    /// The pty's framing: the server's (console, or raw for `serial_raw`).
    framing: Framing,
}

impl Sim {
    fn start(bin: &Path, entry: &Entry) -> Result<Sim> {
        let mut cmd = child::with_pdeathsig(&bin.to_string_lossy());
        // The mps2 boards run MCUboot RAM_LOAD: the `ram-load` profile models it.
        let profile = if entry.target == "mps2_an385" { "ram-load" } else { "zephyr-default" };
        cmd.args(["sim", "--profile", profile, "--time-scale", "0", "--udp", "127.0.0.1:0"]);
        for o in sim_overrides(entry) {
            cmd.args(["--set", &o]);
        }
        let serial = entry.transport != Transport::Udp;
        // The sim's pty speaks the server's framing, so both read the same bytes alike (a raw
        // UART frames by the header's length; the console framing by its packets).
        let framing = if entry.transport == Transport::SerialRaw { Framing::Raw } else { Framing::Console };
        if serial {
            cmd.arg("--pty");
            if framing == Framing::Raw {
                cmd.args(["--pty-framing", "raw"]);
            }
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null());
        let mut child = ChildGuard::spawn(&mut cmd, "smpflash sim").context("cannot start smpflash sim")?;
        let out = child.child_mut().stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(|l| l.ok()) {
                let _ = tx.send(line);
            }
        });
        let (mut udp, mut pty) = (None, None);
        let end = Instant::now() + Duration::from_secs(20);
        while udp.is_none() || (serial && pty.is_none()) {
            let left = end.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).map_err(|_| anyhow!("smpflash sim printed no address"))?;
            if let Some(rest) = line.strip_prefix("SMP over UDP: ") {
                udp = rest.split_whitespace().next().and_then(|a| a.parse().ok());
            }
            if let Some(rest) = line.strip_prefix("SMP over serial: ") {
                pty = rest.split_whitespace().next().map(PathBuf::from);
            }
        }
        Ok(Sim { _child: child, udp: udp.expect("seen"), pty, framing })
    }

    fn link(&self) -> Result<RawLink> {
        Ok(match &self.pty {
            Some(p) => RawLink::pty(p, self.framing)?,
            None => RawLink::udp(self.udp)?,
        })
    }
}

/// The `--set` overrides that make the virtual device like `entry`.
pub fn sim_overrides(entry: &Entry) -> Vec<String> {
    let mut o = vec![format!("buf_size={}", entry.buf_size), format!("buf_count={}", entry.buf_count)];
    // None of the fixtures answers bootloader info (their README); the zephyr-default profile
    // does, for smpflash's DFU, and compiles it out on request.
    o.push("bootloader_info=false".into());
    if entry.config == "serial_noparams" {
        o.push("params=false".into());
    }
    if entry.target == "mps2_an385" {
        // Both slots of the mps2 fixtures are 512 KiB (the fixtures' README).
        o.push("slot_size=0x80000".into());
    }
    o
}

/// How long a target may take to answer a case.
fn timeout(case: &Case, qemu: bool) -> Duration {
    match (qemu, case.slow) {
        (true, true) => Duration::from_secs(20),
        (true, false) => Duration::from_secs(4),
        (false, _) => Duration::from_millis(1500),
    }
}

/// Sends every case on `link`, one at a time (sequence number = index + 1), and returns each
/// one's answers.
fn run_target(link: &mut RawLink, cases: &[Case], ctx: &Ctx, qemu: bool) -> Vec<Answers> {
    let mut all: Vec<Answers> = Vec::with_capacity(cases.len());
    for (i, case) in cases.iter().enumerate() {
        // Frames that came after the previous case's answer belong to it.
        while let Ok(late) = link.recv(Duration::from_millis(2)) {
            if let Some(prev) = all.last_mut() {
                prev.push(late);
            }
        }
        let seq = (i % 255) as u8 + 1;
        let mut answers = Vec::new();
        if link.send(&case.frame(seq, ctx)).is_ok() {
            let end = Instant::now() + timeout(case, qemu);
            while let Ok(frame) = link.recv(end.saturating_duration_since(Instant::now())) {
                let ours = frame.get(6) == Some(&seq);
                if ours {
                    answers.push(frame);
                    break;
                }
                if let Some(prev) = all.last_mut() {
                    prev.push(frame);
                }
            }
        }
        all.push(answers);
    }
    all
}

/// The hash of slot 0 as the target's own state read reports it.
fn running_hash(link: &mut RawLink, qemu: bool) -> Option<Vec<u8>> {
    let read = Case {
        name: String::new(),
        group: 1,
        id: 0,
        op: cases::READ,
        version: 1,
        kind: Kind::Command,
        body: cases::Body::Map(vec![]),
        len_delta: 0,
        truncate: None,
        slow: false,
    };
    let answer = run_target(link, std::slice::from_ref(&read), &Ctx::default(), qemu).pop()?.pop()?;
    let (_, body) = shape::split(&answer)?;
    let v: Value = ciborium::from_reader(body).ok()?;
    let get = |m: &Value, k: &str| -> Option<Value> {
        m.as_map()?.iter().find(|(key, _)| key.as_text() == Some(k)).map(|(_, v)| v.clone())
    };
    let images = get(&v, "images")?;
    let first = images.as_array()?.first()?.clone();
    get(&first, "hash")?.as_bytes().cloned()
}

/// Compares two lists of answers by the rule.
pub fn compare(real: &Answers, sim: &Answers) -> Vec<String> {
    let mut d = Vec::new();
    if real.len() != sim.len() {
        let n = |a: &Answers| match a.len() {
            0 => "no answer".to_string(),
            1 => "an answer".to_string(),
            k => format!("{k} answers"),
        };
        d.push(format!("answers: {} vs {}", n(real), n(sim)));
    }
    for (a, b) in real.iter().zip(sim) {
        d.extend(shape::differences(&shape::of_frame(a), &shape::of_frame(b)));
    }
    d
}

/// Runs the differential test on one server with the virtual device `sim_bin`.
pub fn server(fixtures: &Fixtures, entry: &Entry, sim_bin: &Path, scratch: &Path) -> ServerDiff {
    let began = Instant::now();
    let mut result = ServerDiff {
        config: entry.config.clone(),
        transport: entry.transport.name().into(),
        outcomes: Vec::new(),
        error: None,
        seconds: 0.0,
    };
    match run_server(fixtures, entry, sim_bin, scratch) {
        Ok(outcomes) => result.outcomes = outcomes,
        Err(e) => result.error = Some(format!("{e:#}")),
    }
    result.seconds = began.elapsed().as_secs_f64();
    result
}

fn run_server(fixtures: &Fixtures, entry: &Entry, sim_bin: &Path, scratch: &Path) -> Result<Vec<Outcome>> {
    let image = match entry.signed_image() {
        Some(name) if entry.has_group("img") => {
            let p = fixtures.dir.join(name);
            Some(std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?)
        }
        _ => None,
    };
    let cases = cases::generate(entry, image.as_deref());
    let server = Server::start(fixtures, entry, &scratch.join("diff"))?;
    let sim = Sim::start(sim_bin, entry)?;
    let qemu = entry.is_qemu();
    let mut real_link = server.link().context("no link to the server")?;
    let mut sim_link = sim.link()?;
    let has_img = entry.has_group("img");
    let (real, simulated) = thread::scope(|s| {
        let cases = &cases;
        let r = s.spawn(move || {
            let ctx = Ctx { running_hash: if has_img { running_hash(&mut real_link, qemu) } else { None } };
            run_target(&mut real_link, cases, &ctx, qemu)
        });
        let v = s.spawn(move || {
            let ctx = Ctx { running_hash: if has_img { running_hash(&mut sim_link, false) } else { None } };
            run_target(&mut sim_link, cases, &ctx, false)
        });
        (r.join().expect("real target"), v.join().expect("virtual target"))
    });
    drop(server);
    Ok(cases
        .into_iter()
        .zip(real.into_iter().zip(simulated))
        .map(|(case, (real, sim))| {
            let differences = compare(&real, &sim);
            let intended = if differences.is_empty() { None } else { intended::covering(&case, entry) };
            Outcome { case, real, sim, differences, intended }
        })
        .collect())
}

/// Runs every server of `configs` (in parallel) and returns their results in that order.
pub fn run_all(
    fixtures: &Fixtures,
    configs: &[String],
    sim_bin: &Path,
    scratch: &Path,
) -> Result<Vec<ServerDiff>> {
    let mut entries = Vec::new();
    for c in configs {
        let e = fixtures
            .entries
            .iter()
            .find(|e| &e.config == c)
            .ok_or_else(|| anyhow!("no server {c:?} in the manifest"))?;
        entries.push(e.clone());
    }
    Ok(thread::scope(|s| {
        let handles: Vec<_> = entries
            .iter()
            .map(|e| {
                s.spawn(move || {
                    let r = server(fixtures, e, sim_bin, &scratch.join(format!("diff-{}", e.config)));
                    eprintln!(
                        "[diff {}] {} cases, {} unexpected, {:.1} s{}",
                        r.config,
                        r.outcomes.len(),
                        r.outcomes.iter().filter(|o| o.unexpected()).count(),
                        r.seconds,
                        r.error.as_ref().map(|e| format!(" — ERROR: {e}")).unwrap_or_default()
                    );
                    r
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("diff thread")).collect()
    }))
}

fn answers_text(a: &Answers) -> String {
    if a.is_empty() {
        return "(no answer)".into();
    }
    a.iter().map(|f| shape::diagnostic(f)).collect::<Vec<_>>().join(" + ")
}

/// Counts by intended entry.
fn by_reason(d: &ServerDiff) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    for o in &d.outcomes {
        if let (false, Some(i)) = (o.differences.is_empty(), o.intended) {
            *m.entry(i.id).or_default() += 1;
        }
    }
    m
}

/// The per-server summary (Markdown), with every unexpected difference and both answers.
pub fn summary(results: &[ServerDiff]) -> String {
    let mut s = String::from(
        "| server | transport | cases | identical | intended differences | unexpected |\n|---|---|---|---|---|---|\n",
    );
    for d in results {
        let identical = d.outcomes.iter().filter(|o| o.differences.is_empty()).count();
        let intended: Vec<String> = by_reason(d).iter().map(|(k, n)| format!("{n} {k}")).collect();
        let unexpected = d.outcomes.iter().filter(|o| o.unexpected()).count();
        s.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} |\n",
            d.config,
            d.transport,
            d.outcomes.len(),
            identical,
            if intended.is_empty() { "0".into() } else { intended.join(", ") },
            match &d.error {
                Some(e) => format!("ERROR: {e}"),
                None => unexpected.to_string(),
            }
        ));
    }
    let mut kinds = String::new();
    for d in results {
        let mut by_kind: BTreeMap<Kind, usize> = BTreeMap::new();
        for o in d.outcomes.iter().filter(|o| o.unexpected()) {
            *by_kind.entry(o.case.kind).or_default() += 1;
        }
        if !by_kind.is_empty() {
            let list: Vec<String> = by_kind.iter().map(|(k, n)| format!("{n} {k:?}")).collect();
            kinds.push_str(&format!("- `{}`: {}\n", d.config, list.join(", ")));
        }
    }
    if !kinds.is_empty() {
        s.push_str("\nUnexpected differences by request kind:\n\n");
        s.push_str(&kinds);
    }
    let mut details = String::new();
    for d in results {
        for o in d.outcomes.iter().filter(|o| o.unexpected()) {
            details.push_str(&format!(
                "- `{}` / {}: {}\n  - real: {}\n  - sim: {}\n",
                d.config,
                o.case.name,
                o.differences.join("; "),
                answers_text(&o.real),
                answers_text(&o.sim)
            ));
        }
    }
    if !details.is_empty() {
        s.push_str("\nUnexpected differences:\n\n");
        s.push_str(&details);
    }
    s
}

/// Every intended difference of the run, each with its answers (for `--verbose` reading).
pub fn intended_details(results: &[ServerDiff]) -> String {
    let mut s = String::new();
    for d in results {
        for o in d.outcomes.iter().filter(|o| !o.differences.is_empty() && o.intended.is_some()) {
            s.push_str(&format!(
                "- `{}` / {} [{}]: {}\n  - real: {}\n  - sim: {}\n",
                d.config,
                o.case.name,
                o.intended.map(|i| i.id).unwrap_or_default(),
                o.differences.join("; "),
                answers_text(&o.real),
                answers_text(&o.sim)
            ));
        }
    }
    s
}

/// The intended-differences list as Markdown.
pub fn intended_list() -> String {
    intended::LIST.iter().map(|i| format!("- **{}** ({}): {}\n", i.id, i.rule, i.reason)).collect()
}
