//! Developer tasks for smpflash: `cargo xtask <task>`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

mod bench;

#[derive(Parser)]
#[command(about = "smpflash developer tasks")]
struct Args {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Build the cargo-fuzz targets and run each for a while (installs cargo-fuzz if missing).
    Fuzz {
        /// Seconds to run each target; 0 only builds them.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Run only this target.
        #[arg(long)]
        target: Option<String>,
    },
    /// Regenerate the imgtool-made test images in tests/fixtures/images.
    Fixtures,
    /// Regenerate the sample images in examples/ (imgtool).
    Examples,
    /// Install the Python peer tools the tests use, then run the workspace tests.
    Test,
    /// Whole DFUs against the virtual device over every transport with injected faults; a line
    /// per run and per cell; fails when a run ends in a state a DFU must never leave.
    Soak {
        /// Keep starting runs of each cell (with new seeds) until this many seconds passed.
        #[arg(long, default_value_t = 20.0)]
        seconds_per_cell: f64,
        /// Seed of each cell's first run (random if absent); printed so a failure repeats.
        #[arg(long, value_parser = parse_seed)]
        seed: Option<u64>,
        /// Only cells whose label (e.g. udp/loss-20%) contains one of these comma-separated parts.
        #[arg(long)]
        cells: Option<String>,
        /// Cells run at the same time.
        #[arg(long, default_value_t = 1)]
        jobs: usize,
    },
    /// Upload the same images over every link with smpflash and peer tools; compare with the
    /// links' capacity (docs/performance.md).
    Bench(bench::Args),
    /// The real smpflash against the real Zephyr SMP servers of ../shared/zephyr-fixtures (or
    /// $SMPFLASH_FIXTURES): a table of server x command (docs/conformance.md); fails on any
    /// unexpected result or a server that is missing or does not start.
    Conformance(xtask::conformance::Args),
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in the workspace").to_path_buf()
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("+ {cmd:?}");
    let status = cmd.status().with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// cargo-fuzz needs nightly-only sanitizer flags; the one stable toolchain here accepts them
/// with RUSTC_BOOTSTRAP, which keeps the fuzzers runnable without fetching another toolchain.
fn cargo_fuzz() -> Command {
    let mut c = cargo();
    c.arg("fuzz").env("RUSTC_BOOTSTRAP", "1").current_dir(root());
    c
}

fn fuzz(seconds: u64, only: Option<String>) -> Result<()> {
    let have = cargo().args(["fuzz", "--version"]).output().map(|o| o.status.success());
    if !matches!(have, Ok(true)) {
        run(cargo().args(["install", "cargo-fuzz", "--locked"]))?;
    }
    let targets: Vec<String> = match only {
        Some(t) => vec![t],
        None => {
            let out = cargo_fuzz().arg("list").output()?;
            String::from_utf8(out.stdout)?.lines().map(str::to_string).collect()
        }
    };
    if targets.is_empty() {
        bail!("cargo fuzz list found no targets");
    }
    for t in &targets {
        run(cargo_fuzz().args(["build", t]))?;
    }
    if seconds == 0 {
        return Ok(());
    }
    let root = root();
    for t in &targets {
        let corpus = root.join("fuzz/corpus").join(t);
        std::fs::create_dir_all(&corpus)?;
        // Real exchanges to start from: the targets that need structure get theirs from code.
        xtask::fuzz_seeds::write(t, &corpus)?;
        let mut cmd = cargo_fuzz();
        cmd.args(["run", t]).arg(&corpus);
        // Real images make a far better starting point for the image reader than empty input.
        if t == "image_reader" {
            cmd.arg(root.join("tests/fixtures/images"));
        }
        cmd.args(["--", &format!("-max_total_time={seconds}"), "-rss_limit_mb=4096"]);
        run(&mut cmd)?;
        eprintln!("fuzz target {t}: ran {seconds} s without a crash");
    }
    Ok(())
}

/// The interop tests drive the virtual device with intercreate's smpclient, Finomnis'
/// mcumgr-toolkit and Bleak, and the fixture scripts need imgtool: all from PyPI, pinned in
/// tests/requirements.txt.
fn test() -> Result<()> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let have = Command::new(&python)
        .args(["-c", "import smpclient, smpclient.transport.serial, mcumgr_toolkit, imgtool, bleak"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !have {
        run(Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(root().join("tests/requirements.txt")))?;
    }
    // The BlueZ emulation tests run a private D-Bus bus: Debian's dbus-daemon.
    let have_dbus = Command::new("dbus-daemon").arg("--version").output().map(|o| o.status.success());
    if !matches!(have_dbus, Ok(true)) {
        run(Command::new("apt-get").args(["update", "-qq"]))
            .and_then(|()| run(Command::new("apt-get").args(["install", "-y", "-qq", "dbus"])))
            .context(
                "the BlueZ tests need dbus-daemon: install Debian's `dbus` package (apt-get install dbus)",
            )?;
    }
    run(cargo().args(["test", "--workspace"]).current_dir(root()))
}

/// Seeds as printed by the soak (`0x…`) or in decimal.
fn parse_seed(text: &str) -> std::result::Result<u64, String> {
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    }
    .map_err(|e| format!("{text:?} is not a seed: {e}"))
}

fn main() -> Result<()> {
    match Args::parse().task {
        Task::Fuzz { seconds, target } => fuzz(seconds, target),
        Task::Fixtures => run(Command::new("bash").arg(root().join("tests/fixtures/make_fixtures.sh"))),
        Task::Examples => run(Command::new("bash").arg(root().join("examples/make_examples.sh"))),
        Task::Test => test(),
        Task::Bench(args) => bench::run(args, &root()),
        Task::Conformance(args) => xtask::conformance::main(args, &root()),
        Task::Soak { seconds_per_cell, seed, cells, jobs } => xtask::soak::main(xtask::soak::SoakOptions {
            seconds_per_cell,
            seed: seed.unwrap_or_else(xtask::soak::random_seed),
            cells,
            jobs,
            ..Default::default()
        }),
    }
}
