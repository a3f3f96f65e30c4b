//! One run: a cell, a seed, a whole DFU, and the checks on how it ended.

use std::fmt;
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use smpflash_core::dfu::{self, DfuOptions, DfuReport};
use smpflash_core::mcuboot::Package;
use smpflash_core::progress::Event;
use smpflash_core::session::Session;
use smpflash_core::upload::UploadOptions;
use smpflash_sim::device::DeviceEvent;
use smpflash_sim::image::slot;

use super::cell::Cell;
use super::rig::{self, Plan};
use super::verdict::{self, Standing};
use super::watch::{Watch, WatchedConnector};

/// How runs are made.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Image lengths to draw from (the issue asks for 64–256 KiB).
    pub image_len: RangeInclusive<usize>,
    /// Longest a DFU may take before it counts as hung.
    pub limit: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions { image_len: 64 * 1024..=256 * 1024, limit: Duration::from_secs(180) }
    }
}

/// How one run went.
#[derive(Debug, Clone)]
pub struct Run {
    /// The cell.
    pub cell: Cell,
    /// The seed that repeats it.
    pub seed: u64,
    /// Device profile.
    pub profile: &'static str,
    /// Bytes in the new image.
    pub image_len: usize,
    /// The device-level fault point, if the cell has one.
    pub fault_point: Option<String>,
    /// The DFU's result: `Ok` or the error as the user reads it.
    pub result: Result<(), String>,
    /// Where image 0 stands afterwards.
    pub standing: Standing,
    /// After a failed DFU, where a second DFU over a good link left the device.
    pub rerun: Option<Standing>,
    /// Chunks sent more than once.
    pub retransmits: u64,
    /// Upload bytes sent more than once, measured on the wire.
    pub resent_bytes: u64,
    /// Reconnections.
    pub reconnects: u32,
    /// Wall time of the DFU.
    pub seconds: f64,
    /// Broken promises: any entry fails the soak.
    pub problems: Vec<String>,
}

impl Run {
    /// Whether every check held (an error result may still pass: it must be clear and leave
    /// the device in a sound state).
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<30} seed={:#018x} {:<14} image={:>6} retransmits={:<4} resent_bytes={:<7} reconnects={:<2} seconds={:>5.1} state={} ",
            self.cell.label(),
            self.seed,
            self.profile,
            self.image_len,
            self.retransmits,
            self.resent_bytes,
            self.reconnects,
            self.seconds,
            self.standing,
        )?;
        if let Some(point) = &self.fault_point {
            write!(f, "fault=\"{point}\" ")?;
        }
        if let Some(rerun) = &self.rerun {
            write!(f, "rerun={rerun} ")?;
        }
        match (&self.result, self.problems.is_empty()) {
            (Ok(()), true) => write!(f, "result=ok"),
            (Err(e), true) => write!(f, "result=error: {e}"),
            (r, false) => {
                let dfu = match r {
                    Ok(()) => "ok".to_string(),
                    Err(e) => format!("error: {e}"),
                };
                write!(f, "result=FAILED: {} (dfu {dfu})", self.problems.join("; "))
            }
        }
    }
}

/// Counters gathered from the DFU's progress events.
#[derive(Default)]
struct Seen {
    retransmits: u64,
}

/// Runs one DFU of `cell` drawn from `seed`, and checks how it ended.
pub async fn run(cell: Cell, seed: u64, opts: &RunOptions) -> Run {
    let plan = Plan::new(cell, seed, &opts.image_len);
    let mut out = Run {
        cell,
        seed,
        profile: plan.profile,
        image_len: plan.image.len(),
        fault_point: plan.fault_point(),
        result: Ok(()),
        standing: Standing::Broken("not run".into()),
        rerun: None,
        retransmits: 0,
        resent_bytes: 0,
        reconnects: 0,
        seconds: 0.0,
        problems: Vec::new(),
    };
    let mut rig = match rig::build(cell, &plan).await {
        Ok(r) => r,
        Err(e) => {
            out.problems.push(format!("cannot set up the virtual device: {e}"));
            return out;
        }
    };
    let device = rig.device.clone();
    let package =
        Package::from_bytes(plan.image.clone(), "soak.bin").expect("slot::build makes valid images");
    let new = package.images[0].image.hash().to_vec();
    let old = slot::read_info(device.snapshot().await.flash.slot(0)).expect("a factory image").hash.to_vec();
    let watch = Watch::new(device.clone(), new.clone());
    let mut events = device.subscribe();

    let connector = WatchedConnector {
        inner: rig.connector.take().expect("one connector per rig"),
        watch: watch.clone(),
    };
    let seen = Arc::new(Mutex::new(Seen::default()));
    let sink = seen.clone();
    let progress = move |e: &Event| {
        if let Event::Progress { retransmits, .. } | Event::UploadFinished { retransmits, .. } = e {
            let mut s = sink.lock().unwrap_or_else(|e| e.into_inner());
            s.retransmits = s.retransmits.max(*retransmits);
        }
    };
    let started = Instant::now();
    let first = package.clone();
    let task = tokio::spawn(async move {
        let mut session = Session::open(Box::new(connector), Duration::from_millis(500)).await?;
        let options = DfuOptions {
            upload: UploadOptions {
                timeout: Duration::from_millis(300),
                first_timeout: Duration::from_secs(3),
                max_attempts: 10,
                ..Default::default()
            },
            boot_timeout: Duration::from_secs(15),
            ..Default::default()
        };
        let result = dfu::dfu(&mut session, &first, &options, &progress).await;
        Ok::<_, smpflash_core::Error>((result, session.reconnects()))
    });
    let abort = task.abort_handle();
    let report: Option<DfuReport> = match tokio::time::timeout(opts.limit, task).await {
        Err(_) => {
            abort.abort();
            out.problems
                .push(format!("the DFU neither finished nor failed within {} s", opts.limit.as_secs()));
            out.result = Err("hung".into());
            None
        }
        Ok(Err(join)) => {
            out.problems.push(format!("the DFU panicked: {join}"));
            out.result = Err("panicked".into());
            None
        }
        Ok(Ok(Err(open))) => {
            out.result = Err(format!("{open}"));
            None
        }
        Ok(Ok(Ok((result, reconnects)))) => {
            out.reconnects = reconnects;
            match result {
                Ok(report) => Some(report),
                Err(e) => {
                    out.result = Err(e.to_string());
                    None
                }
            }
        }
    };
    out.seconds = started.elapsed().as_secs_f64();
    out.retransmits = seen.lock().unwrap_or_else(|e| e.into_inner()).retransmits;
    // Every data byte handed to a link beyond the image's own was a byte sent again.
    let wire = watch.upload_data();
    out.resent_bytes = wire.saturating_sub(plan.image.len() as u64);

    if let Err(e) = &out.result {
        if e.trim().is_empty() {
            out.problems.push("the DFU failed with an empty error message".into());
        }
    }
    if let Some(report) = &report {
        match report.uploads.as_slice() {
            [up] => {
                if up.resent_bytes != out.resent_bytes || wire < plan.image.len() as u64 {
                    out.problems.push(format!(
                        "the engine counts {} re-sent bytes, the wire carried {wire} data bytes for a {}-byte image",
                        up.resent_bytes,
                        plan.image.len()
                    ));
                }
                if up.retransmits != out.retransmits {
                    out.problems.push(format!(
                        "the report says {} retransmits, the progress events {}",
                        up.retransmits, out.retransmits
                    ));
                }
            }
            other => out.problems.push(format!("expected one upload, the report has {}", other.len())),
        }
    }

    // MCUboot erases a marked image that does not verify and says so: had the client marked
    // one, a boot would have logged it.
    while let Ok(event) = events.try_recv() {
        if let DeviceEvent::Booted(log) = event {
            for e in log.iter().filter(|e| e.what.contains("rejected")) {
                out.problems
                    .push(format!("MCUboot rejected a marked image at boot: image {}: {}", e.image, e.what));
            }
        }
    }
    out.problems.extend(watch.problems());

    let state = device.snapshot().await;
    out.standing = verdict::standing(&state, device.profile(), &old, &new);
    match (&out.result, &out.standing) {
        (_, Standing::Broken(why)) => out.problems.push(format!("the device was left broken: {why}")),
        (Ok(()), s) if *s != Standing::NewConfirmed => {
            out.problems.push(format!("the DFU reported success but the device is {s}"))
        }
        _ => {}
    }
    if let Some(why) = verdict::cross_check(rig.check_addr, &device, &out.standing, &new).await {
        out.problems.push(why);
    }
    if out.result.is_ok() && watch.marks() == 0 {
        out.problems.push("the DFU succeeded without marking anything".into());
    }
    if out.result.is_err() && out.problems.is_empty() {
        // Whoever sees a DFU fail runs it again: over a good link it must finish the job from
        // whatever state the failure left behind.
        let watch = Watch::new(device.clone(), new.clone());
        let connector = WatchedConnector {
            inner: Box::new(smpflash_udp::UdpConnector::new(rig.check_addr.to_string())),
            watch: watch.clone(),
        };
        let again = tokio::time::timeout(opts.limit, async {
            let mut session = Session::open(Box::new(connector), Duration::from_secs(2)).await?;
            dfu::dfu(&mut session, &package, &DfuOptions::default(), &()).await
        })
        .await;
        let standing = verdict::standing(&device.snapshot().await, device.profile(), &old, &new);
        match again {
            Err(_) => out.problems.push("the DFU run again hung".into()),
            Ok(Err(e)) => out.problems.push(format!("the DFU run again over a good link failed: {e}")),
            Ok(Ok(_)) if standing != Standing::NewConfirmed => out
                .problems
                .push(format!("the DFU run again over a good link succeeded, but the device is {standing}")),
            Ok(Ok(_)) => {}
        }
        out.problems.extend(watch.problems());
        out.rerun = Some(standing);
    }
    out
}
