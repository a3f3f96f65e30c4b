//! The end state of a run, read from the device's flash and through a fresh, fault-free
//! connection, and whether it is one a DFU may leave behind.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use smpflash_core::client::Client;
use smpflash_core::command::image::ImageStateRead;
use smpflash_sim::boot::bootloader::{swap_type, SwapType};
use smpflash_sim::image::slot;
use smpflash_sim::state::State;
use smpflash_sim::{Device, Profile};
use smpflash_udp::UdpTransport;

/// Where image 0 stands after a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// The new image runs and is confirmed: the update is done.
    NewConfirmed,
    /// The new image runs under test: the next reset reverts it.
    NewUnconfirmed,
    /// The old image runs, nothing is scheduled.
    OldIntact,
    /// The old image runs and the new one (verified) is scheduled for the next boot.
    OldWithNewPending,
    /// Anything else: a state no DFU may leave.
    Broken(String),
}

impl fmt::Display for Standing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Standing::NewConfirmed => f.write_str("new-confirmed"),
            Standing::NewUnconfirmed => f.write_str("new-unconfirmed"),
            Standing::OldIntact => f.write_str("old-intact"),
            Standing::OldWithNewPending => f.write_str("old-with-new-pending"),
            Standing::Broken(why) => write!(f, "broken ({why})"),
        }
    }
}

/// Reads image 0's standing from the flash: what runs, whether it verifies, and what is
/// scheduled.
pub fn standing(state: &State, profile: &Profile, old: &[u8], new: &[u8]) -> Standing {
    if let Some(p) = state.boot.progress {
        return Standing::Broken(format!("a swap is left half done: {p:?}"));
    }
    let max = profile.max_image_size(0);
    let running = match slot::validate(state.flash.slot(0), max) {
        Ok(info) => info.hash,
        Err(why) => return Standing::Broken(format!("the primary slot does not boot: {why}")),
    };
    let kind = swap_type(&state.flash, 0);
    if running[..] == new[..] {
        return match kind {
            SwapType::None => Standing::NewConfirmed,
            SwapType::Revert => Standing::NewUnconfirmed,
            other => Standing::Broken(format!("the new image runs and yet a {other:?} swap is scheduled")),
        };
    }
    if running[..] != old[..] {
        return Standing::Broken("the primary slot holds neither the old nor the new image".into());
    }
    match kind {
        SwapType::None => Standing::OldIntact,
        SwapType::Test | SwapType::Perm => match slot::validate(state.flash.slot(1), max) {
            Ok(info) if info.hash[..] == new[..] => Standing::OldWithNewPending,
            Ok(_) => Standing::Broken("an image other than the new one is scheduled".into()),
            Err(why) => Standing::Broken(format!("the scheduled image does not verify: {why}")),
        },
        SwapType::Revert => Standing::Broken("the old image runs but a revert is scheduled".into()),
    }
}

/// Compares what the device reports through a fresh connection with the flash: the running
/// hash and its confirmed flag must agree with `standing`.
pub async fn cross_check(
    addr: SocketAddr,
    device: &Arc<Device>,
    standing: &Standing,
    new: &[u8],
) -> Option<String> {
    let transport = match UdpTransport::connect_addr(addr).await {
        Ok(t) => t,
        Err(e) => return Some(format!("cannot open the checking connection: {e}")),
    };
    let client = Client::new(Arc::new(transport)).with_timeout(Duration::from_secs(5));
    let images = match client.request(&ImageStateRead {}).await {
        Ok(r) => r.images,
        Err(e) => return Some(format!("the device did not answer a fresh connection: {e}")),
    };
    let Some(active) = images.iter().find(|s| s.image == 0 && s.active) else {
        return Some(format!("the device reports no running image 0: {images:?}"));
    };
    let runs_new = active.hash.as_deref().is_some_and(|h| h[..] == new[..]);
    let agrees = match standing {
        Standing::NewConfirmed => runs_new && active.confirmed,
        Standing::NewUnconfirmed => runs_new && !active.confirmed,
        Standing::OldIntact | Standing::OldWithNewPending => !runs_new,
        Standing::Broken(_) => true,
    };
    let pending = images.iter().any(|s| s.image == 0 && s.pending);
    let pending_agrees = pending == (*standing == Standing::OldWithNewPending);
    if !(agrees && pending_agrees) {
        return Some(format!(
            "the device reports {images:?} through a fresh connection, but its flash says {standing} ({})",
            device.profile().name
        ));
    }
    None
}
