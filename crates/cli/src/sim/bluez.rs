//! `smpflash sim --bluez`: the virtual device as a BlueZ peripheral on D-Bus.

use std::sync::{Arc, Mutex};

use clap::Args;
use smpflash_sim::front::ble_link::{BleLinkProfile, LinkParams};
use smpflash_sim::front::bluez::{self, BluezOptions, BluezServer, PrivateBus, ADAPTER_PATH};
use smpflash_sim::Device;

use crate::exit::{Code, Failure};

/// Options of `smpflash sim` for the BlueZ emulation.
#[derive(Args, Debug)]
pub struct BluezFlags {
    /// Serve the device as a BlueZ peripheral (`org.bluez`) on D-Bus, for btleplug and Bleak:
    /// on the bus at ADDRESS, or without one on a private bus started here.
    #[arg(long, value_name = "ADDRESS", num_args = 0..=1, default_missing_value = PRIVATE)]
    pub bluez: Option<String>,
    /// BlueZ: the radio link of each connection, one of the BLE links `--sim-link` takes.
    #[arg(long, value_name = "LINK", default_value = "ble-phone-fast")]
    pub bluez_link: String,
    /// BlueZ: the name the device advertises.
    #[arg(long, value_name = "NAME", default_value = "smpflash-sim")]
    pub bluez_name: String,
    /// BlueZ: refuse notifications and writes (insufficient authentication) until the client
    /// pairs.
    #[arg(long)]
    pub bluez_require_pairing: bool,
}

/// `--bluez` without an address.
const PRIVATE: &str = "private";

/// The running emulation; the bus (when private) stops after the server left it.
pub struct Running {
    server: BluezServer,
    bus: Arc<Mutex<Option<PrivateBus>>>,
}

impl Running {
    /// Lists the BlueZ methods clients called: what a tool under test really uses.
    pub fn print_calls(&self) {
        let calls = self.server.calls();
        if calls.is_empty() {
            return;
        }
        println!("D-Bus calls clients made to org.bluez (count, interface.method):");
        for (call, n) in calls {
            println!("{n:8}  {call}");
        }
    }

    /// Stops the private bus, if it is ours.
    pub fn stop(self) {
        drop(self.bus.lock().unwrap_or_else(|e| e.into_inner()).take());
    }
}

/// A private bus is a child process: stop it when our terminal goes away too, or it outlives
/// us. (Ctrl-C and SIGTERM end `smpflash sim`'s loop, which prints the summary and then stops
/// the bus with [`Running::stop`].)
#[cfg(unix)]
fn stop_bus_on_terminate(bus: Arc<Mutex<Option<PrivateBus>>>) {
    use tokio::signal::unix::{signal, SignalKind};
    for kind in [SignalKind::hangup()] {
        let Ok(mut stream) = signal(kind) else {
            continue;
        };
        let bus = bus.clone();
        tokio::spawn(async move {
            stream.recv().await;
            drop(bus.lock().unwrap_or_else(|e| e.into_inner()).take());
            std::process::exit(128 + kind.as_raw_value());
        });
    }
}

#[cfg(not(unix))]
fn stop_bus_on_terminate(_bus: Arc<Mutex<Option<PrivateBus>>>) {}

/// Serves the device as `org.bluez` and prints how to point BlueZ clients at it.
pub async fn start(device: Arc<Device>, flags: &BluezFlags) -> Result<Running, Failure> {
    let profile = flags.bluez_link.strip_prefix("ble-").unwrap_or(&flags.bluez_link);
    let link = LinkParams::by_name(profile).ok_or_else(|| Failure {
        code: Code::Failure,
        message: format!(
            "unknown --bluez-link {:?}: {}",
            flags.bluez_link,
            BleLinkProfile::ALL.iter().map(|p| format!("ble-{p}")).collect::<Vec<_>>().join(", ")
        ),
    })?;
    let address = flags.bluez.as_deref().filter(|a| *a != PRIVATE);
    let bus = match address {
        Some(_) => None,
        None => Some(PrivateBus::start().map_err(|e| Failure {
            code: Code::Connection,
            message: format!("cannot start a private D-Bus bus: {e}"),
        })?),
    };
    let address = match (&bus, address) {
        (Some(bus), _) => bus.address().to_string(),
        (None, Some(a)) => a.to_string(),
        (None, None) => unreachable!("one of the two is set above"),
    };
    let options = BluezOptions {
        link: link.clone(),
        device_name: flags.bluez_name.clone(),
        require_pairing: flags.bluez_require_pairing,
        ..Default::default()
    };
    let server = bluez::serve(device, options, &address).await.map_err(|e| Failure {
        code: Code::Connection,
        message: format!(
            "cannot serve org.bluez on {address}: {e} (on the real system bus the name belongs to \
             bluetoothd: use a private bus, `--bluez` without an address)"
        ),
    })?;
    println!(
        "BlueZ on D-Bus: adapter {ADAPTER_PATH}, device {} {:?}{}, {} link (ATT MTU {}), bus {}{}",
        server.device_address(),
        server.device_name(),
        if flags.bluez_require_pairing { " (pairing required)" } else { "" },
        flags.bluez_link,
        link.att_mtu,
        address,
        if bus.is_some() { " (private)" } else { "" }
    );
    println!("point BlueZ clients (btleplug, Bleak) at it with:");
    println!("export DBUS_SYSTEM_BUS_ADDRESS={address}");
    println!("   (then e.g.: smpflash --ble {} image list)", server.device_name());
    let bus = Arc::new(Mutex::new(bus));
    stop_bus_on_terminate(bus.clone());
    Ok(Running { server, bus })
}
