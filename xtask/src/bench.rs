//! `cargo xtask bench`: the same signed images uploaded to the virtual device over every link,
//! by smpflash and by peer tools, measured against the link's and the flash's analytic limits.
//! What the numbers mean, and the latest table, are in docs/performance.md.

mod capacity;
mod child;
mod device;
mod fs;
mod images;
mod matrix;
mod python_dfu;
mod report;
mod tools;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;
use smpflash_sim::Profile;

use self::device::SimProcess;
use self::images::Image;
use self::matrix::{Flash, Link, Tool, FLASHES, KIB, LINKS, TOOLS};
use self::report::Record;
use self::tools::{Programs, Target};

/// Options of `cargo xtask bench`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The 256 KiB image on every link (32 KiB over legacy BLE): the default.
    #[arg(long, conflicts_with = "full")]
    quick: bool,
    /// 256 KiB and 1 MiB on every link; legacy BLE takes 11 minutes per 1 MiB upload.
    #[arg(long)]
    full: bool,
    /// Links, comma-separated: ble-phone-fast, ble-phone-slow, ble-legacy, serial-115200,
    /// serial-1000000, udp-0ms, udp-15ms, udp-50ms; a family (ble, serial, udp) selects all of it.
    #[arg(long, value_name = "LIST")]
    links: Option<String>,
    /// Tools, comma-separated: smpflash, smpflash-w1, smpclient, mcumgr-toolkit.
    #[arg(long, value_name = "LIST")]
    tools: Option<String>,
    /// Flash models, comma-separated: nrf5340 (real time), fast (no flash time).
    #[arg(long, value_name = "LIST")]
    flash: Option<String>,
    /// Image payload sizes instead of the matrix's, e.g. 32k,1m.
    #[arg(long, value_name = "LIST")]
    sizes: Option<String>,
    /// Uploads per cell.
    #[arg(long, default_value_t = 3)]
    repeat: u32,
    /// Write every run as a JSON record to this file (rewritten after each run).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Also write the tables (Markdown) to this file.
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
    /// Run nothing: print the tables of these `--json` files (a cell in several files is
    /// taken from the last).
    #[arg(long, value_name = "FILE", num_args = 1..)]
    report: Vec<PathBuf>,
    /// Path MTU of the UDP links, told to every tool that takes one (smpflash and smpclient):
    /// 1500, Ethernet's and both tools' default, keeps datagrams unfragmented; the device's
    /// buffer + 28 (2503) lets one datagram fill a buffer where fragmentation is fine.
    #[arg(long, value_name = "BYTES", default_value_t = 1500, value_parser = clap::value_parser!(u16).range(576..))]
    udp_mtu: u16,
    /// Instead of the upload matrix: whole DFUs by the CLI and by the Python package
    /// (`pip install ./python` into $PYTHON first), taking turns on the same link, and their
    /// ratio. Links: UDP and serial ones of --links (default udp-15ms); flash: --flash (default
    /// fast); image: the first of --sizes (default 256 KiB).
    #[arg(long)]
    python_dfu: bool,
    /// Use this smpflash binary instead of building target/release/smpflash.
    #[arg(long, value_name = "PATH")]
    smpflash: Option<PathBuf>,
    /// File transfers (fs group) instead of image uploads: 64 KiB and 1 MiB up and down by
    /// smpflash and smpclient over udp-15ms and serial-1000000, fast flash.
    #[arg(long)]
    fs: bool,
}

/// Payload of the image that primes each device's upload slot (never measured).
const PRIME_PAYLOAD: u64 = 8 * KIB;

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

fn smpflash_binary(root: &Path, given: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(path) = given {
        return Ok(path);
    }
    // Release: the bench measures the tool as users run it.
    super::run(
        super::cargo().args(["build", "--quiet", "--release", "-p", "smpflash-cli"]).current_dir(root),
    )?;
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    Ok(target.join("release").join("smpflash"))
}

/// Installs the pinned peers and imgtool; returns why the peers cannot run, if they cannot.
fn install_peers(root: &Path) -> Option<String> {
    let requirements = root.join("xtask/drivers/requirements.txt");
    let pip = Command::new(python())
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(&requirements)
        .status();
    let check = Command::new(python())
        .args(["-c", "import smpclient, smpclient.transport.serial, mcumgr_toolkit"])
        .output()
        .map(|o| o.status.success());
    match (pip, check) {
        (_, Ok(true)) => None,
        (Ok(s), _) if !s.success() => Some(format!("peers not installed: pip failed ({s})")),
        _ => Some("peers not installed: python3 cannot import them".into()),
    }
}

fn version_of(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok().filter(|o| o.status.success())?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string()).filter(|s| !s.is_empty())
}

fn versions(root: &Path, smpflash: &Path) -> serde_json::Map<String, serde_json::Value> {
    let mut v = serde_json::Map::new();
    let own = version_of(Command::new(smpflash).arg("--version")).unwrap_or_else(|| "unknown".into());
    let commit = version_of(Command::new("git").args(["describe", "--always", "--dirty"]).current_dir(root));
    let own = match commit {
        Some(c) => format!("{} (git {c})", own.trim_start_matches("smpflash ")),
        None => own.trim_start_matches("smpflash ").to_string(),
    };
    v.insert(Tool::Smpflash.to_string(), own.clone().into());
    v.insert(Tool::SmpflashW1.to_string(), own.into());
    for (tool, package) in [(Tool::Smpclient, "smpclient"), (Tool::McumgrToolkit, "mcumgr-toolkit")] {
        let script = format!("from importlib.metadata import version; print(version({package:?}))");
        let found = version_of(Command::new(python()).args(["-c", &script]));
        v.insert(tool.to_string(), found.unwrap_or_else(|| "not installed".into()).into());
    }
    v
}

/// Everything one run needs besides its cell.
struct Bench {
    programs: Programs,
    device: capacity::Device,
    versions: serde_json::Map<String, serde_json::Value>,
    peers_missing: Option<String>,
    work: PathBuf,
    prime: Image,
    records: Vec<Record>,
    json: Option<PathBuf>,
    meta: serde_json::Value,
    done: usize,
    total: usize,
}

/// A device the clients of one (link, flash) pair share.
enum Rig {
    /// smpflash's in-process device behind a BLE link; with a primed state file to copy.
    Ble {
        profile: &'static str,
        state: Option<PathBuf>,
    },
    Process(SimProcess),
}

impl Bench {
    fn save(&self) -> Result<()> {
        if let Some(path) = &self.json {
            let doc = json!({ "meta": self.meta, "runs": self.records });
            std::fs::write(path, serde_json::to_string_pretty(&doc)? + "\n")
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    }

    fn rig(&self, link: Link, flash: Flash) -> Result<Rig> {
        let log = self.work.join(format!("sim-{link}-{flash}.log"));
        let smpflash = &self.programs.smpflash;
        let sim = match link {
            Link::Ble(profile) => {
                // Without flash time the erase costs nothing, and saving state would: no copy.
                let state = match flash {
                    Flash::Nrf5340 => Some(device::primed_state(smpflash, &self.work, &self.prime.path)?),
                    Flash::Fast => None,
                };
                return Ok(Rig::Ble { profile, state });
            }
            Link::Serial(baud) => SimProcess::start(smpflash, flash, 0, Some(baud), &log)?,
            Link::Udp(rtt) => SimProcess::start(smpflash, flash, rtt, None, &log)?,
        };
        sim.prime(smpflash, &self.prime.path)?;
        Ok(Rig::Process(sim))
    }

    fn base_record(&self, link: Link, flash: Flash, tool: Tool, image: &Image, run: u32) -> Record {
        let limits = self.device.limits(link, flash.time_scale(), image.bytes);
        Record {
            link: link.to_string(),
            flash: flash.to_string(),
            tool: tool.to_string(),
            tool_version: self.versions.get(&tool.to_string()).and_then(|v| v.as_str()).unwrap_or("").into(),
            run,
            payload_bytes: image.payload,
            image_bytes: image.bytes,
            window: None,
            chunk: None,
            seconds: None,
            goodput_bytes_per_s: None,
            capacity_bytes_per_s: limits.capacity,
            link_bytes_per_s: limits.link,
            flash_bytes_per_s: limits.flash,
            bound_bytes_per_s: limits.bound,
            ratio: None,
            bound_ratio: None,
            retransmits: None,
            client_cpu_s: None,
            error: None,
        }
    }

    /// Uploads `image` once with `tool` and records it.
    fn measure(
        &mut self,
        rig: &Rig,
        link: Link,
        flash: Flash,
        tool: Tool,
        image: &Image,
        run: u32,
    ) -> Result<()> {
        let mut record = self.base_record(link, flash, tool, image, run);
        let run_state = self.work.join("run.state");
        let target = match rig {
            Rig::Ble { profile, state } => {
                if let Some(primed) = state {
                    std::fs::copy(primed, &run_state)?;
                }
                Target::Ble { profile, flash, state: state.as_ref().map(|_| run_state.as_path()) }
            }
            Rig::Process(sim) => match link {
                Link::Serial(baud) => Target::Serial { path: sim.pty.as_deref().expect("serial rig"), baud },
                _ => Target::Udp { addr: &sim.udp, mtu: self.device.udp_mtu },
            },
        };
        let expected = record.bound_bytes_per_s.map_or(10.0, |b| image.bytes as f64 / b);
        let deadline = Duration::from_secs_f64(60.0 + 3.0 * expected);
        let done = child::run(&mut tools::command(&self.programs, tool, target, &image.path), deadline)?;
        let outcome = if done.success() {
            tools::parse(tool, &done.stdout)
        } else {
            Err(anyhow::anyhow!("{}", done.why()))
        };
        self.done += 1;
        let head = format!(
            "[{}/{}] {link} {flash} {} KiB {tool} run {run}",
            self.done,
            self.total,
            image.payload / KIB
        );
        match outcome {
            Ok(m) if m.bytes == image.bytes => {
                let goodput = m.bytes as f64 / m.seconds;
                record.seconds = Some(m.seconds);
                record.goodput_bytes_per_s = Some(goodput);
                record.ratio = record.capacity_bytes_per_s.map(|c| goodput / c);
                record.bound_ratio = record.bound_bytes_per_s.map(|b| goodput / b);
                record.window = m.window;
                record.chunk = m.chunk;
                record.retransmits = m.retransmits;
                record.client_cpu_s = Some(done.cpu_s);
                let ratio = record.ratio.map_or("no capacity".into(), |r| format!("{r:.3} of capacity"));
                eprintln!("{head}: {:.2} s, {:.1} kB/s, {ratio}", m.seconds, goodput / 1000.0);
            }
            Ok(m) => record.error = Some(format!("uploaded {} of {} bytes", m.bytes, image.bytes)),
            Err(e) => record.error = Some(format!("failed: {e:#}")),
        }
        if let Some(e) = &record.error {
            eprintln!("{head}: {e}");
            // A half-done upload would be resumed by the next client: finish a different one.
            if let Rig::Process(sim) = rig {
                sim.prime(&self.programs.smpflash, &self.prime.path)?;
            }
        }
        self.records.push(record);
        self.save()
    }
}

fn tables(records: &[Record], markdown: Option<&Path>) -> Result<()> {
    let tables = format!("{}\n{}", report::table(records), report::summary(records));
    println!("{tables}");
    if let Some(path) = markdown {
        std::fs::write(path, &tables).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Reads the runs of earlier `--json` files.
fn load(files: &[PathBuf]) -> Result<Vec<Record>> {
    let mut all = Vec::new();
    for path in files {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let doc: serde_json::Value = serde_json::from_str(&text)?;
        let runs = doc.get("runs").cloned().with_context(|| format!("{} has no runs", path.display()))?;
        all.push(
            serde_json::from_value(runs).with_context(|| format!("{}: unexpected runs", path.display()))?,
        );
    }
    Ok(report::merge(all))
}

/// `--python-dfu`: the CLI's and the Python package's DFU times side by side.
fn python_dfu_bench(args: &Args, root: &Path, smpflash: &Path, payload: Option<u64>) -> Result<()> {
    let links = match &args.links {
        Some(list) => matrix::select(&LINKS, Some(list), "link")?,
        None => vec![Link::Udp(15)],
    };
    let flashes = match &args.flash {
        Some(list) => matrix::select(&FLASHES, Some(list), "flash model")?,
        None => vec![Flash::Fast],
    };
    let work = std::env::temp_dir().join(format!("smpflash-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let rows = python_dfu::run(
        root,
        smpflash,
        &python(),
        &work,
        &links,
        &flashes,
        payload.unwrap_or(256 * KIB),
        args.repeat,
        args.udp_mtu.into(),
    )?;
    let table = format!("{}\n{}\n", python_dfu::HEADER, rows.join("\n"));
    println!("{table}");
    if let Some(path) = &args.markdown {
        std::fs::write(path, &table).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// Runs the bench.
pub fn run(args: Args, root: &Path) -> Result<()> {
    if !args.report.is_empty() {
        return tables(&load(&args.report)?, args.markdown.as_deref());
    }
    if args.repeat == 0 {
        bail!("--repeat must be at least 1");
    }
    if args.fs {
        let smpflash = smpflash_binary(root, args.smpflash.clone())?;
        if let Some(why) = install_peers(root) {
            bail!("the fs bench compares with smpclient: {why}");
        }
        let work = std::env::temp_dir().join(format!("smpflash-bench-fs-{}", std::process::id()));
        std::fs::create_dir_all(&work)?;
        let mut profile = Profile::by_name(device::PROFILE).context("the bench's profile exists")?;
        for o in device::profile_overrides() {
            profile.apply_override(&o).map_err(anyhow::Error::msg)?;
        }
        let device = capacity::Device { profile, udp_mtu: args.udp_mtu.into() };
        let result = fs::run(&args, root, &device, &smpflash, &work);
        let _ = std::fs::remove_dir_all(&work);
        return result;
    }
    let links = matrix::select(&LINKS, args.links.as_deref(), "link")?;
    let tools = matrix::select(&TOOLS, args.tools.as_deref(), "tool")?;
    let flashes = matrix::select(&FLASHES, args.flash.as_deref(), "flash model")?;
    let sizes = args.sizes.as_deref().map(matrix::parse_sizes).transpose()?;
    let full = args.full && !args.quick;
    let plan: Vec<(Link, Vec<u64>)> =
        links.iter().map(|&l| (l, sizes.clone().unwrap_or_else(|| matrix::payload_sizes(l, full)))).collect();

    let smpflash = smpflash_binary(root, args.smpflash.clone())?;
    if args.python_dfu {
        return python_dfu_bench(&args, root, &smpflash, sizes.as_ref().and_then(|s| s.first().copied()));
    }
    let peers_missing = if tools.iter().any(|t| t.is_peer()) { install_peers(root) } else { None };
    let work = std::env::temp_dir().join(format!("smpflash-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;

    let mut payloads: Vec<u64> = plan.iter().flat_map(|(_, s)| s.iter().copied()).collect();
    payloads.sort_unstable();
    payloads.dedup();
    let mut images = Vec::new();
    for &p in &payloads {
        images.push(images::make(root, &work, &python(), p, "1.2.3", device::SLOT_SIZE)?);
    }
    let prime = images::make(root, &work, &python(), PRIME_PAYLOAD, "0.0.1", device::SLOT_SIZE)?;

    let mut profile = Profile::by_name(device::PROFILE).context("the bench's profile exists")?;
    for o in device::profile_overrides() {
        profile.apply_override(&o).map_err(anyhow::Error::msg)?;
    }
    let device = capacity::Device { profile, udp_mtu: args.udp_mtu.into() };
    let versions = versions(root, &smpflash);
    let peers_ok = peers_missing.is_none();
    let runnable =
        move |link: Link, tool: Tool| tool.unreachable(link).is_none() && (peers_ok || !tool.is_peer());
    let mut total = 0;
    let mut estimate = 0.0;
    for (link, sizes) in &plan {
        for flash in &flashes {
            for image in images.iter().filter(|i| sizes.contains(&i.payload)) {
                let n = tools.iter().filter(|&&t| runnable(*link, t)).count() * args.repeat as usize;
                total += n;
                let bound = device.limits(*link, flash.time_scale(), image.bytes).bound;
                estimate += n as f64 * bound.map_or(1.0, |b| image.bytes as f64 / b);
            }
        }
    }
    eprintln!(
        "bench: {total} uploads, at least {:.1} minutes of uploading; tools: {}",
        estimate / 60.0,
        serde_json::Value::Object(versions.clone())
    );
    let meta = json!({
        "device": format!("{} with {}", device::PROFILE, device::profile_overrides().join(", ")),
        "buf_size": device.profile.buf_size,
        "buf_count": device.profile.buf_count,
        "udp_mtu": device.udp_mtu,
        "repeat": args.repeat,
        "matrix": if full { "full" } else { "quick" },
        "versions": versions,
    });
    let mut bench = Bench {
        programs: Programs { smpflash, python: python(), drivers: root.join("xtask/drivers") },
        device,
        versions,
        peers_missing,
        work: work.clone(),
        prime,
        records: Vec::new(),
        json: args.json.clone(),
        meta,
        done: 0,
        total,
    };
    let started = Instant::now();
    for (link, sizes) in &plan {
        for &flash in &flashes {
            let rig =
                bench.rig(*link, flash).with_context(|| format!("setting up {link} with {flash} flash"))?;
            for image in images.iter().filter(|i| sizes.contains(&i.payload)) {
                for &tool in &tools {
                    let why = tool
                        .unreachable(*link)
                        .map(str::to_string)
                        .or_else(|| bench.peers_missing.clone().filter(|_| tool.is_peer()));
                    if let Some(why) = why {
                        let mut r = bench.base_record(*link, flash, tool, image, 0);
                        r.error = Some(format!("n/a ({why})"));
                        bench.records.push(r);
                    }
                }
                // Tools take turns within each repetition, so drift hits them alike.
                for run in 1..=args.repeat {
                    for &tool in tools.iter().filter(|&&t| runnable(*link, t)) {
                        bench.measure(&rig, *link, flash, tool, image, run)?;
                    }
                }
            }
        }
    }
    bench.save()?;
    tables(&bench.records, args.markdown.as_deref())?;
    eprintln!("bench: {} uploads in {:.1} minutes", bench.done, started.elapsed().as_secs_f64() / 60.0);
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}
