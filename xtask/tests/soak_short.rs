//! The soak matrix in short: one run per cell, small images, two cells at a time. Every run
//! must end with the new image confirmed or a clear error and a sound device, mark only
//! verified images, and count its re-sent bytes exactly (see `xtask::soak`).
//!
//! The seed is fixed so CI repeats itself; `SMPFLASH_SOAK_SEED=<seed>` explores another, and
//! `cargo xtask soak` runs the full matrix for longer.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use xtask::soak::{self, RunOptions, SoakOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cell_once() {
    let seed = std::env::var("SMPFLASH_SOAK_SEED")
        .ok()
        .map(|s| {
            s.strip_prefix("0x").map_or_else(|| s.parse(), |h| u64::from_str_radix(h, 16)).expect("a seed")
        })
        .unwrap_or(0x5EED);
    let opts = SoakOptions {
        seconds_per_cell: 0.0,
        seed,
        cells: None,
        run: RunOptions { image_len: 64 * 1024..=96 * 1024, limit: Duration::from_secs(60) },
        jobs: 2,
    };
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let started = Instant::now();
    let summaries = soak::soak(
        &opts,
        Arc::new(move |l: String| {
            println!("{l}");
            sink.lock().unwrap().push(l);
        }),
    )
    .await;
    assert_eq!(summaries.len(), soak::matrix().len());
    let failed: Vec<String> =
        summaries.iter().flat_map(|s| &s.runs).filter(|r| !r.passed()).map(|r| r.to_string()).collect();
    assert!(failed.is_empty(), "seed {seed:#x}:\n{}", failed.join("\n"));
    // The faults must have bitten: otherwise the matrix tests nothing.
    let runs: Vec<_> = summaries.iter().flat_map(|s| &s.runs).collect();
    assert!(runs.iter().any(|r| r.resent_bytes > 0), "no run re-sent anything");
    assert!(runs.iter().any(|r| r.reconnects > 0), "no run reconnected");
    println!("{} cells in {:.1} s", summaries.len(), started.elapsed().as_secs_f64());
}
