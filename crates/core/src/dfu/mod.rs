//! The DFU flow: **inspect** the device ([`facts`]), **plan** the update as a pure function of
//! what the device is, what the package holds and the options ([`plan`]), **run** the plan's
//! steps while reporting typed events ([`run`]), and when the new image does not run, say why
//! ([`verdict`]).
//!
//! [`dfu`] does all four. A library user who wants to show the plan first, or refuse it, calls
//! [`facts::inspect`] and [`plan::plan`] and then [`run::run`].

pub mod facts;
pub mod plan;
pub mod run;
pub mod verdict;

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::command::image::SlotState;
use crate::command::os::Reset;
use crate::error::Result;
use crate::mcuboot::Package;
use crate::progress::{Event, Progress, Skip, Step};
use crate::session::Session;
use crate::upload::{UploadOptions, UploadReport};

pub use facts::DeviceFacts;
pub use plan::{Action, Candidate, Plan, Route};
pub use run::{reset_and_wait, reset_into};
pub use verdict::{DfuError, NotApplied, RecoveryNotBooted, Refusal};

/// How the new images are marked. Named in kebab case (`test-and-confirm`) by serde both ways,
/// so front ends take the names the CLI prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Mark for test, reset, check the new image runs, then confirm it (single image default).
    TestAndConfirm,
    /// Mark permanent before the reset (nRF5340 multi-image default: the network core cannot
    /// revert, so testing it means nothing).
    ConfirmOnly,
    /// Mark for test and reset; leave confirming to the application.
    TestOnly,
    /// Upload and verify; do not mark or reset.
    UploadOnly,
}

/// Options of a DFU.
#[derive(Debug, Clone)]
pub struct DfuOptions {
    /// Marking mode; `None` picks by the package (see [`plan::default_mode`]).
    pub mode: Option<Mode>,
    /// Upload settings (window, chunk, timeouts). Its `image` is ignored: each package image
    /// carries its own.
    pub upload: UploadOptions,
    /// Upload even when the device already runs or holds the image.
    pub force: bool,
    /// How long to wait for the device to come back after a reset (MCUboot may be swapping).
    pub boot_timeout: Duration,
    /// Update through MCUboot's serial recovery: unless the device already answers as the
    /// recovery bootloader, reset it with boot mode 1 first and wait for MCUboot to answer.
    pub enter_recovery: bool,
}

impl Default for DfuOptions {
    fn default() -> Self {
        DfuOptions {
            mode: None,
            upload: UploadOptions::default(),
            force: false,
            boot_timeout: Duration::from_secs(120),
            enter_recovery: false,
        }
    }
}

/// What a DFU did. Serializes as the `dfu` command's JSON document (hashes as hex).
#[derive(Debug, Clone, Serialize)]
pub struct DfuReport {
    /// The mode used.
    pub mode: Mode,
    /// Application or serial recovery.
    pub route: Route,
    /// Image state before.
    pub before: Vec<SlotState>,
    /// Image state at the end.
    pub after: Vec<SlotState>,
    /// One report per uploaded image.
    pub uploads: Vec<UploadReport>,
    /// Images skipped, and why.
    pub skipped: Vec<Skip>,
    /// Whether the device was reset.
    pub reset: bool,
    /// Total wall time, seconds.
    pub seconds: f64,
}

/// Runs a whole DFU of `package`: inspect, plan, run, verdict.
pub async fn dfu(
    session: &mut Session,
    package: &Package,
    opts: &DfuOptions,
    progress: &dyn Progress,
) -> Result<DfuReport> {
    let started = Instant::now();
    progress.event(&Event::Step { step: Step::Inspect });
    let mut facts = facts::inspect(session).await?;
    if opts.enter_recovery && !facts.recovery {
        progress.event(&Event::Step { step: Step::EnterRecovery });
        run::reset_into(session, Some(Reset::BOOT_MODE_BOOTLOADER), opts.boot_timeout, progress).await?;
        facts = facts::inspect(session).await?;
        if !facts.recovery {
            return Err(DfuError::from(NotApplied::DidNotEnterRecovery).into());
        }
    }
    let candidates: Vec<Candidate> = package.images.iter().map(Candidate::from).collect();
    let plan = plan::plan(&facts, &candidates, opts.mode, opts.force).map_err(DfuError::from)?;
    tracing::debug!(?plan, "DFU plan");
    let ran =
        run::run(session, &plan, &package.images, &facts.limits, &opts.upload, opts.boot_timeout, progress)
            .await?;
    Ok(DfuReport {
        mode: plan.mode,
        route: plan.route,
        after: ran.after.unwrap_or_else(|| facts.state.clone()),
        before: facts.state,
        uploads: ran.uploads,
        skipped: plan.skipped,
        reset: ran.reset,
        seconds: started.elapsed().as_secs_f64(),
    })
}
