//! The soak matrix: whole DFUs against the virtual device over every transport, each with one
//! fault, checked for how they end.
//!
//! Every run must end with the new image running and confirmed, or with an error the user can
//! read and a device left in a sound state (old image running, or the verified new image
//! scheduled or under test). On top, for every run:
//!
//! - no image that fails its hash check is ever marked or confirmed: every state write the
//!   client sends is checked against the flash at the moment it leaves, and a boot that
//!   rejects a marked image fails the run;
//! - re-sent bytes are counted: the engine's count must equal the upload bytes on the wire
//!   minus the image;
//! - nothing hangs or panics.
//!
//! A seed decides the image, the profile, the fault point and the fault generator's seed;
//! thread timing can still vary, so a rerun with the same seed meets the same faults at the
//! same rates but not always in the same datagrams.

pub mod cell;
pub mod rig;
pub mod run;
pub mod verdict;
pub mod watch;

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use smpflash_sim::faults::Rng;

pub use cell::{matrix, Cell, Fault, Link};
pub use run::{Run, RunOptions};

/// How a soak runs.
#[derive(Debug, Clone)]
pub struct SoakOptions {
    /// Keep starting runs of a cell until this much time has passed (at least one run).
    pub seconds_per_cell: f64,
    /// Seed of each cell's first run; later runs draw theirs from it.
    pub seed: u64,
    /// Only cells whose label contains one of these comma-separated parts.
    pub cells: Option<String>,
    /// How each run is made.
    pub run: RunOptions,
    /// Cells run at the same time.
    pub jobs: usize,
}

impl Default for SoakOptions {
    fn default() -> Self {
        SoakOptions {
            seconds_per_cell: 20.0,
            seed: random_seed(),
            cells: None,
            run: RunOptions::default(),
            jobs: 1,
        }
    }
}

/// A seed from the clock, for soaks that should explore.
pub fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Rng::new(nanos.as_nanos() as u64).next_u64()
}

/// The cells `filter` selects (all without one).
pub fn select(filter: Option<&str>) -> Vec<Cell> {
    let parts: Vec<&str> =
        filter.map(|f| f.split(',').map(str::trim).filter(|p| !p.is_empty()).collect()).unwrap_or_default();
    matrix().into_iter().filter(|c| parts.is_empty() || parts.iter().any(|p| c.label().contains(p))).collect()
}

/// The runs of one cell, summed up.
#[derive(Debug, Clone)]
pub struct CellSummary {
    /// The cell.
    pub cell: Cell,
    /// Its runs.
    pub runs: Vec<Run>,
}

impl CellSummary {
    /// Runs that broke a promise.
    pub fn failed(&self) -> usize {
        self.runs.iter().filter(|r| !r.passed()).count()
    }
}

impl fmt::Display for CellSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ok = self.runs.iter().filter(|r| r.passed() && r.result.is_ok()).count();
        let errors: Vec<&str> = self
            .runs
            .iter()
            .filter(|r| r.passed())
            .filter_map(|r| r.result.as_ref().err())
            .map(String::as_str)
            .collect();
        let sum = |f: fn(&Run) -> u64| self.runs.iter().map(f).sum::<u64>();
        write!(
            f,
            "{:<30} runs={:<3} ok={:<3} clear_errors={:<3} failed={:<3} retransmits={:<5} resent_bytes={:<8} reconnects={:<4} seconds={:.1}",
            self.cell.label(),
            self.runs.len(),
            ok,
            errors.len(),
            self.failed(),
            sum(|r| r.retransmits),
            sum(|r| r.resent_bytes),
            sum(|r| u64::from(r.reconnects)),
            self.runs.iter().map(|r| r.seconds).sum::<f64>(),
        )?;
        if let Some(first) = errors.first() {
            write!(f, " first_error=\"{first}\"")?;
        }
        Ok(())
    }
}

/// Runs one cell: a run from `opts.seed`, then runs with seeds drawn from it while
/// `opts.seconds_per_cell` lasts. `line` gets each run's line as it finishes.
pub async fn soak_cell(cell: Cell, opts: &SoakOptions, line: &(dyn Fn(String) + Send + Sync)) -> CellSummary {
    let started = Instant::now();
    let budget = Duration::from_secs_f64(opts.seconds_per_cell.max(0.0));
    let mut seeds = Rng::new(opts.seed);
    let mut seed = opts.seed;
    let mut runs = Vec::new();
    loop {
        let r = run::run(cell, seed, &opts.run).await;
        line(r.to_string());
        runs.push(r);
        if started.elapsed() >= budget {
            break;
        }
        seed = seeds.next_u64();
    }
    CellSummary { cell, runs }
}

/// Runs every selected cell, `opts.jobs` at a time in matrix order; `line` gets each run's
/// line as it finishes. Summaries come back in matrix order.
pub async fn soak(opts: &SoakOptions, line: Arc<dyn Fn(String) + Send + Sync>) -> Vec<CellSummary> {
    let cells = Arc::new(select(opts.cells.as_deref()));
    let taken = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..opts.jobs.clamp(1, cells.len().max(1)) {
        let (opts, line, cells, taken) = (opts.clone(), line.clone(), cells.clone(), taken.clone());
        workers.push(tokio::spawn(async move {
            let mut done = Vec::new();
            loop {
                let i = taken.fetch_add(1, Ordering::SeqCst);
                let Some(&cell) = cells.get(i) else {
                    return done;
                };
                done.push((i, soak_cell(cell, &opts, &*line).await));
            }
        }));
    }
    let mut out = Vec::new();
    for w in workers {
        out.extend(w.await.expect("a soak cell panicked outside its DFU"));
    }
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, s)| s).collect()
}

/// `cargo xtask soak`: runs the matrix, prints a line per run and a line per cell, and fails
/// when any run broke a promise.
pub fn main(opts: SoakOptions) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    eprintln!(
        "soak: seed {:#x}, {} s per cell, images {}..={} bytes",
        opts.seed,
        opts.seconds_per_cell,
        opts.run.image_len.start(),
        opts.run.image_len.end()
    );
    let summaries = runtime.block_on(soak(&opts, Arc::new(|l: String| println!("{l}"))));
    if summaries.is_empty() {
        anyhow::bail!("no cell matches {:?}", opts.cells);
    }
    println!("\nper cell:");
    for s in &summaries {
        println!("{s}");
    }
    let failed: usize = summaries.iter().map(CellSummary::failed).sum();
    if failed > 0 {
        anyhow::bail!("{failed} run(s) broke a promise; rerun one with its seed and --cells");
    }
    Ok(())
}
