//! The device: profile, state, SMP buffers, resets and boots, with flash time applied as real
//! delays. Front ends (UDP, pty, BLE) feed it request frames.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, Mutex, Semaphore};

use crate::boot::bootloader::{self, BootEvent};
use crate::faults::DeviceFaults;
use crate::profile::{BootMode, Profile};
use crate::referee::{self, Client, Mistake, Observation, Referee};
use crate::smp::server;
use crate::state::State;

/// How a device runs.
#[derive(Debug, Clone)]
pub struct DeviceOptions {
    /// Multiplies every flash and boot delay: 1.0 is real time, 0.0 no delays.
    pub time_scale: f64,
    /// Where flash contents persist across runs ("power cycles"); none keeps them in memory.
    pub state_file: Option<PathBuf>,
    /// One-shot faults.
    pub faults: DeviceFaults,
}

impl Default for DeviceOptions {
    fn default() -> Self {
        DeviceOptions { time_scale: 1.0, state_file: None, faults: DeviceFaults::default() }
    }
}

/// What happened to the device, for front ends (a BLE link drops on reset) and users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceEvent {
    /// The device is going down (reset command or injected fault); links drop.
    Resetting,
    /// Power failed during the boot.
    PowerLost,
    /// The device booted and its SMP server is up again.
    Booted(Vec<BootEvent>),
    /// A client made a mistake of a kind it had not made before (later ones are only
    /// counted, in [`Device::summary`]).
    Mistake {
        /// Who.
        client: Client,
        /// What, with the fix.
        mistake: Mistake,
    },
}

/// What the device tells when it stops: each client's account, and what the next boot does
/// with each image.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Each client's account.
    pub clients: Vec<(Client, referee::ClientLog)>,
    /// One sentence per image on what the next reset does.
    pub next_boot: Vec<String>,
    /// What the device's state shows was left undone (an image under test never confirmed).
    pub left_undone: Vec<Mistake>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.clients.is_empty() {
            writeln!(f, "no client sent anything")?;
        }
        for (client, log) in &self.clients {
            let errors: Vec<String> = log.errors.iter().map(|(name, n)| format!("{n} × {name}")).collect();
            writeln!(
                f,
                "client {client}: {} request(s): {} answered ok, {} with an error{}{}",
                log.requests,
                log.ok,
                log.errors.values().sum::<u64>(),
                if errors.is_empty() { String::new() } else { format!(" ({})", errors.join(", ")) },
                if log.unanswered > 0 { format!(", {} unanswered", log.unanswered) } else { String::new() },
            )?;
            let upload = match (log.image_bytes, log.uploads_completed) {
                (0, _) => "no image bytes written".to_string(),
                (n, 0) => format!("{n} image bytes written, no upload completed"),
                (n, c) => format!("{n} image bytes written, {c} upload(s) completed"),
            };
            let marks = if log.marks.is_empty() { "no image marked".into() } else { log.marks.join(", ") };
            writeln!(f, "  {upload}; {marks}; {} reset(s)", log.resets)?;
            for (kind, seen) in &log.mistakes {
                writeln!(f, "  mistake [{kind}] × {}: {}", seen.count, seen.first)?;
            }
        }
        for m in &self.left_undone {
            writeln!(f, "mistake [{}]: {m}", m.kind())?;
        }
        for (i, line) in self.next_boot.iter().enumerate() {
            writeln!(f, "next boot, image {i}: {line}")?;
        }
        Ok(())
    }
}

/// The result of one request.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The answers to send, in order: one per request the packet held (Zephyr handles every
    /// request in a packet), none when Zephyr would send nothing.
    pub responses: Vec<Vec<u8>>,
    /// The device resets after the answer went out: call [`Device::reset`].
    pub reset: bool,
}

/// A virtual MCUboot/Zephyr device.
pub struct Device {
    profile: Profile,
    options: DeviceOptions,
    state: Mutex<State>,
    faults: std::sync::Mutex<DeviceFaults>,
    uploaded: std::sync::atomic::AtomicU64,
    buffers: Arc<Semaphore>,
    peak_buffers: std::sync::atomic::AtomicUsize,
    up: AtomicBool,
    events: broadcast::Sender<DeviceEvent>,
    referee: std::sync::Mutex<Referee>,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device").field("profile", &self.profile.name).finish_non_exhaustive()
    }
}

impl Device {
    /// Creates a device: from its state file when there is one, otherwise fresh from the
    /// factory, then boots it (without delays).
    pub fn new(profile: Profile, options: DeviceOptions) -> std::io::Result<Arc<Device>> {
        profile.validate().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let mut state = match &options.state_file {
            Some(path) => State::load(path, &profile)?.unwrap_or_else(|| State::factory(&profile)),
            None => State::factory(&profile),
        };
        let (_, log, _) = bootloader::boot(&mut state.flash, &mut state.boot, &profile, None);
        state.boot_log = log;
        let (events, _) = broadcast::channel(64);
        let device = Device {
            buffers: Arc::new(Semaphore::new(profile.buf_count)),
            faults: std::sync::Mutex::new(options.faults.clone()),
            profile,
            options,
            state: Mutex::new(state),
            uploaded: Default::default(),
            peak_buffers: Default::default(),
            up: AtomicBool::new(true),
            events,
            referee: Default::default(),
        };
        Ok(Arc::new(device))
    }

    /// The device's profile.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// Whether the SMP server is running (false while resetting and booting).
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::SeqCst)
    }

    /// The SMP buffers: a front end holds one permit per request from arrival until its answer
    /// is sent, and refuses (UDP: drops, BLE: stops accepting) frames when none is free.
    pub fn buffers(&self) -> Arc<Semaphore> {
        self.buffers.clone()
    }

    /// Most SMP buffers held at once so far: the requests a client really had in flight, plus
    /// (over UDP, as in Zephyr) the buffer of the answer being built.
    pub fn peak_buffers_in_use(&self) -> usize {
        self.peak_buffers.load(Ordering::SeqCst)
    }

    /// Device events: resets, power loss, boots.
    pub fn subscribe(&self) -> broadcast::Receiver<DeviceEvent> {
        self.events.subscribe()
    }

    /// A copy of the current state, for inspection in tests and by the CLI.
    pub async fn snapshot(&self) -> State {
        self.state.lock().await.clone()
    }

    async fn delay(&self, cost: Duration) {
        if self.options.time_scale > 0.0 && !cost.is_zero() {
            crate::clock::sleep(cost.mul_f64(self.options.time_scale)).await;
        }
    }

    fn save(&self, state: &State) {
        if let Some(path) = &self.options.state_file {
            if let Err(e) = state.save(path) {
                tracing::warn!("sim: cannot save state to {}: {e}", path.display());
            }
        }
    }

    fn referee(&self) -> std::sync::MutexGuard<'_, Referee> {
        self.referee.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn warn(&self, client: &Client, found: impl IntoIterator<Item = Mistake>) {
        for mistake in found {
            tracing::debug!("sim: {client} made a mistake: {mistake}");
            let _ = self.events.send(DeviceEvent::Mistake { client: client.clone(), mistake });
        }
    }

    /// A front end reports what it saw on a client's link that never reached the SMP server.
    pub fn observe(&self, client: &Client, seen: Observation) {
        let first = self.referee().observe(client, seen);
        self.warn(client, first);
    }

    /// Each client's account so far, and what the next boot does with each image.
    pub async fn summary(&self) -> Summary {
        let state = self.state.lock().await;
        let slots = referee::slots::read(&state, &self.profile);
        drop(state);
        let images = referee::slots::situations(&slots);
        let next_boot = images.iter().map(|(_, s)| s.next_boot()).collect();
        let left_undone = images.iter().filter_map(|(_, s)| referee::never_confirmed(s)).collect();
        let clients = self.referee().clients().iter().map(|(c, l)| (c.clone(), l.clone())).collect();
        Summary { clients, next_boot, left_undone }
    }

    /// Handles one SMP packet (a datagram, a serial packet, a reassembled BLE write) from
    /// `client`. The device is busy (holding its state) for the flash time the requests
    /// take, as a real one is.
    pub async fn handle(&self, client: &Client, frame: &[u8]) -> Outcome {
        if !self.is_up() {
            return Outcome::default();
        }
        let in_use = self.profile.buf_count - self.buffers.available_permits();
        self.peak_buffers.fetch_max(in_use, Ordering::SeqCst);
        let mut state = self.state.lock().await;
        let in_recovery = state.boot.in_recovery;
        let slots_before = referee::needs_slots(frame).then(|| referee::slots::read(&state, &self.profile));
        tracing::debug!("sim: {client} -> {}", smpflash_core::frame::describe(frame));
        let reply = server::handle(&mut state, &self.profile, frame);
        for answer in &reply.frames {
            tracing::debug!("sim: {client} <- {}", smpflash_core::frame::describe(answer));
        }
        let ctx = referee::Context {
            profile: &self.profile,
            entered: in_recovery,
            slots_before: slots_before.as_deref(),
        };
        let found = self.referee().packet(client, &ctx, frame, &reply.frames);
        self.warn(client, found);
        if reply.reset && reply.boot_mode_bootloader && !in_recovery {
            // Retained RAM: MCUboot reads it at the next boot (boot_serial ignores the field).
            state.boot.recovery_requested = true;
        }
        if reply.flash_changed {
            self.save(&state);
        }
        let crash = {
            let mut faults = self.faults.lock().unwrap_or_else(|e| e.into_inner());
            let written = state.upload.as_ref().map(|u| u.off as u64).unwrap_or(0);
            let total = self.uploaded.fetch_max(written, Ordering::SeqCst).max(written);
            match faults.reset_after_upload_bytes {
                Some(limit) if total >= limit => {
                    faults.reset_after_upload_bytes = None;
                    true
                }
                _ => false,
            }
        };
        self.delay(reply.cost).await;
        drop(state);
        if crash {
            tracing::info!("sim: injected reset during upload");
            return Outcome { responses: Vec::new(), reset: true };
        }
        Outcome { responses: reply.frames, reset: reply.reset }
    }

    /// Resets the device: RAM state (the upload in progress) is lost, MCUboot runs its boot
    /// decisions with their flash time, and the SMP server comes back.
    pub async fn reset(&self) {
        self.up.store(false, Ordering::SeqCst);
        let _ = self.events.send(DeviceEvent::Resetting);
        let mut state = self.state.lock().await;
        state.upload = None;
        state.groups.reset();
        self.uploaded.store(0, Ordering::SeqCst);
        let power_loss = {
            let mut f = self.faults.lock().unwrap_or_else(|e| e.into_inner());
            let at = f.power_loss_after_swap_sectors;
            // The fault fires only on a boot that has swap work to do.
            if at.is_some() && self.has_swap_work(&state) {
                f.power_loss_after_swap_sectors = None;
                at
            } else {
                None
            }
        };
        self.delay(self.profile.boot_time).await;
        let s = &mut *state;
        let (cost, mut log, result) = bootloader::boot(&mut s.flash, &mut s.boot, &self.profile, power_loss);
        self.delay(cost).await;
        if result.is_err() {
            self.save(&state);
            tracing::info!("sim: injected power loss during swap");
            let _ = self.events.send(DeviceEvent::PowerLost);
            // Power comes back: MCUboot resumes the interrupted swap.
            let s = &mut *state;
            let (cost, more, _) = bootloader::boot(&mut s.flash, &mut s.boot, &self.profile, None);
            self.delay(self.profile.boot_time + cost).await;
            log.extend(more);
        }
        let crashes = self.faults.lock().unwrap_or_else(|e| e.into_inner()).test_image_crashes;
        if crashes && bootloader::swap_type(&state.flash, 0) == bootloader::SwapType::Revert {
            log.push(BootEvent {
                image: 0,
                what: "the test image crashed before confirming itself; watchdog reset".into(),
            });
            let s = &mut *state;
            let (cost, more, _) = bootloader::boot(&mut s.flash, &mut s.boot, &self.profile, None);
            self.delay(self.profile.boot_time + cost).await;
            log.extend(more);
        }
        if let Err(why) = bootloader::bootable(&state.flash, &state.boot, &self.profile) {
            log.push(BootEvent { image: 0, what: why });
        }
        for e in &log {
            tracing::info!("sim boot: image {}: {}", e.image, e.what);
        }
        state.boot_log = log.clone();
        self.save(&state);
        drop(state);
        self.up.store(true, Ordering::SeqCst);
        let _ = self.events.send(DeviceEvent::Booted(log));
    }

    fn has_swap_work(&self, state: &State) -> bool {
        state.boot.progress.is_some()
            || (matches!(self.profile.mode, BootMode::SwapUsingMove | BootMode::OverwriteOnly)
                && (0..self.profile.images.len())
                    .any(|i| bootloader::swap_type(&state.flash, 2 * i) != bootloader::SwapType::None))
    }
}
