//! `cargo xtask conformance`: the real `smpflash` binary against the real Zephyr 4.4 SMP servers
//! of `../shared/zephyr-fixtures` (or `$SMPFLASH_FIXTURES`), a table of server × command, each
//! cell judged against an expectation computed from the manifest and the fixtures' README
//! (docs/conformance.md).
//!
//! - [`fixtures`]: the manifest, the checksum check, the launcher ([`fixtures::Server`]) and raw
//!   frame exchange ([`fixtures::RawLink`]), reusable by a differential test;
//! - [`run`]: the rules and the smpflash runs of one server's row;
//! - [`table`]: the Markdown table and docs/conformance.md;
//! - [`child`]: every child process killed on every path, Ctrl-C included;
//! - [`diff`]: the differential test — the same raw requests ([`cases`]) to a real server and
//!   to the virtual device set up like it, compared by one rule ([`shape`]), the accepted
//!   differences listed with their reasons ([`intended`]).

pub mod cases;
pub mod child;
pub mod diff;
pub mod fixtures;
pub mod groups;
pub mod intended;
pub mod run;
pub mod shape;
pub mod table;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{bail, Result};

use fixtures::{Entry, Fixtures};
use run::{Row, Verdict};

/// The subcommand's options.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Args {
    /// Only these servers (the manifest's `config`, comma-separated).
    #[arg(long)]
    pub only: Option<String>,
    /// Replace the table in docs/conformance.md with this run's.
    #[arg(long)]
    pub write_doc: bool,
    /// Servers run at the same time (each UDP server in its own network namespace, each QEMU on
    /// its own port).
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
    /// Only the differential test (no table).
    #[arg(long, conflicts_with = "no_diff")]
    pub diff_only: bool,
    /// No differential test.
    #[arg(long)]
    pub no_diff: bool,
    /// The servers of the differential test (comma-separated configs).
    #[arg(long, default_value_t = diff::DEFAULT_SERVERS.join(","))]
    pub diff_servers: String,
    /// The `smpflash` binary whose `smpflash sim` the differential test runs (default: the one
    /// built for the table).
    #[arg(long, value_name = "PATH")]
    pub sim_bin: Option<std::path::PathBuf>,
    /// Print every intended difference with both answers too.
    #[arg(long)]
    pub verbose: bool,
}

/// Runs the suite from the workspace `root`; fails when a cell fails or a server is missing or
/// does not start.
pub fn main(args: Args, root: &Path) -> Result<()> {
    let began = Instant::now();
    child::kill_all_on_interrupt();
    let dir = Fixtures::locate(root);
    let fixtures = Fixtures::load(&dir)?;
    let entries = select(&fixtures.entries, args.only.as_deref())?;
    for tool in ["unshare", "nsenter", "ip", "qemu-system-arm"] {
        if !have(tool) {
            eprintln!("conformance: `{tool}` is not installed; the servers that need it will fail to start");
        }
    }
    eprintln!("conformance: {} servers from {}", entries.len(), fixtures.dir.display());
    let bin = run::build_smpflash(root)?;
    let scratch = std::env::temp_dir().join(format!("smpflash-conformance-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    child::register_scratch(scratch.clone());
    let rows = if args.diff_only {
        Vec::new()
    } else {
        run_all(&fixtures, &entries, &bin, &scratch, args.jobs.max(1))
    };
    let seconds = began.elapsed().as_secs_f64();
    let diffs = if args.no_diff {
        None
    } else {
        let diff_began = Instant::now();
        let configs: Vec<String> =
            args.diff_servers.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
        let sim_bin = args.sim_bin.clone().unwrap_or_else(|| bin.clone());
        eprintln!("conformance: differential test on {} with {}", configs.join(", "), sim_bin.display());
        let results = diff::run_all(&fixtures, &configs, &sim_bin, &scratch)?;
        Some((results, diff_began.elapsed().as_secs_f64()))
    };
    let _ = std::fs::remove_dir_all(&scratch);
    child::unregister_scratch(&scratch);
    if let Some((results, secs)) = &diffs {
        if args.verbose {
            println!("Intended differences, each:\n{}", diff::intended_details(results));
        }
        let footer = diff_footer(results, *secs, &args);
        println!("Differential test:\n\n{}\n{footer}\n", diff::summary(results));
        if args.write_doc {
            let doc = root.join("docs/conformance.md");
            let text = std::fs::read_to_string(&doc)?;
            let body = format!(
                "{}\n{footer}\n\nThe intended differences (`xtask/src/conformance/intended.rs`):\n\n{}",
                diff::summary(results),
                diff::intended_list()
            );
            let text = table::replace_between(
                &text,
                ("<!-- differential:start -->", "<!-- differential:end -->"),
                &body,
            )?;
            std::fs::write(&doc, text)?;
        }
        let failed: Vec<&str> = results.iter().filter(|d| d.failed()).map(|d| d.config.as_str()).collect();
        if !failed.is_empty() && args.diff_only {
            bail!("differential test failed: {}", failed.join(", "));
        }
        if !failed.is_empty() {
            eprintln!("conformance: differential test failed on {}", failed.join(", "));
        }
    }
    if args.diff_only {
        eprintln!("conformance: differential test passed");
        return Ok(());
    }

    let footer = format!(
        "{} servers, {} at a time, {:.0} s (`cargo xtask conformance{}`).",
        rows.len(),
        args.jobs.max(1),
        seconds,
        args.only.as_ref().map(|o| format!(" --only {o}")).unwrap_or_default()
    );
    println!("{}\n{footer}\n\nKnown gaps:\n{}", table::markdown(&rows), table::gaps(&rows));
    if args.write_doc {
        let doc = root.join("docs/conformance.md");
        table::write_doc(&doc, &rows, &footer)?;
        eprintln!("conformance: wrote the table into {}", doc.display());
    }
    let failed: Vec<String> = rows
        .iter()
        .filter(|r| r.failed())
        .map(|r| {
            let cols: Vec<&str> = run::COLUMNS
                .iter()
                .zip(&r.cells)
                .filter(|(_, c)| c.verdict == Verdict::Fail)
                .map(|(col, _)| col.title())
                .collect();
            format!("{} ({})", r.config, cols.join(", "))
        })
        .collect();
    let diff_failed = diffs.as_ref().is_some_and(|(r, _)| r.iter().any(diff::ServerDiff::failed));
    if !failed.is_empty() || diff_failed {
        bail!(
            "conformance failed: {}{}",
            failed.join("; "),
            if diff_failed { " (differential test: unexpected differences)" } else { "" }
        );
    }
    eprintln!("conformance: passed in {seconds:.0} s");
    Ok(())
}

fn diff_footer(results: &[diff::ServerDiff], seconds: f64, args: &Args) -> String {
    let cases: usize = results.iter().map(|d| d.outcomes.len()).sum();
    format!(
        "{} servers, {cases} cases, {seconds:.0} s (`cargo xtask conformance{}`).",
        results.len(),
        if args.diff_servers == diff::DEFAULT_SERVERS.join(",") {
            String::new()
        } else {
            format!(" --diff-servers {}", args.diff_servers)
        }
    )
}

fn select(all: &[Entry], only: Option<&str>) -> Result<Vec<Entry>> {
    let Some(only) = only else { return Ok(all.to_vec()) };
    let names: Vec<&str> = only.split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
    for n in &names {
        if !all.iter().any(|e| e.config == *n) {
            let known: Vec<&str> = all.iter().map(|e| e.config.as_str()).collect();
            bail!("no server {n:?} in the manifest; it has {}", known.join(", "));
        }
    }
    Ok(all.iter().filter(|e| names.contains(&e.config.as_str())).cloned().collect())
}

fn have(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
}

/// Runs every entry's row, `jobs` servers at a time, QEMU ones (the longest) first; rows come
/// back in manifest order.
pub fn run_all(fixtures: &Fixtures, entries: &[Entry], bin: &Path, scratch: &Path, jobs: usize) -> Vec<Row> {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&i| !entries[i].is_qemu());
    let next = AtomicUsize::new(0);
    let rows: Mutex<Vec<Option<Row>>> = Mutex::new(vec![None; entries.len()]);
    std::thread::scope(|s| {
        for _ in 0..jobs.min(entries.len()) {
            s.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::SeqCst);
                let Some(&i) = order.get(k) else { return };
                let e = &entries[i];
                let name = e.config.clone();
                let progress = |line: &str| eprintln!("[{name}] {line}");
                let row = run::row(fixtures, e, bin, scratch, &progress);
                eprintln!(
                    "[{name}] done in {:.1} s{}",
                    row.seconds,
                    if row.failed() { " — FAILED" } else { "" }
                );
                rows.lock().expect("rows")[i] = Some(row);
            });
        }
    });
    rows.into_inner().expect("rows").into_iter().map(|r| r.expect("every row ran")).collect()
}
