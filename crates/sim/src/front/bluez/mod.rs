//! The virtual device as a BlueZ peripheral on D-Bus: serves `org.bluez` with one adapter and
//! the device behind it, so BlueZ clients (btleplug, Bleak) scan, connect, discover the SMP
//! service, subscribe and write through their real code paths, with no Bluetooth hardware.
//!
//! The D-Bus side is the central's end of the simulated radio link ([`crate::front::ble_link`]):
//! `WriteValue` feeds the link, the link's notifications come back as `PropertiesChanged` of
//! the characteristic's `Value`, and the link's timing and MTU are the chosen profile's. A
//! device reset drops the connection and takes the device off the bus until it boots and
//! advertises again, so a client's rescan-and-reconnect path runs for real.
//!
//! What is emulated, and what is not, is in `docs/bluez-sim.md`.

// Layered bottom to top; each imports only from the lines above it:
// names, options, error, filter (and bus, which stands alone);
// radio: the adapter's state and every change of it, exporting objects only through its
// `ObjectTree` seam;
// link: the connection over the simulated radio link (more of `Radio`);
// acquire: AcquireWrite/AcquireNotify sockets on that connection (more of `Radio`);
// adapter, remote, gatt: the D-Bus objects, which call into the radio;
// tree: the `ObjectTree` that puts those objects on the bus;
// this module: serving it all.
mod acquire;
mod adapter;
pub mod bus;
mod error;
mod filter;
mod gatt;
mod link;
mod names;
mod options;
mod radio;
mod remote;
mod tree;

use std::sync::Arc;

use futures::StreamExt;
use tokio::task::JoinHandle;
use zbus::fdo::{RequestNameFlags, RequestNameReply};
use zbus::message::Type as MessageType;
use zbus::Connection;

pub use bus::PrivateBus;
pub use error::BluezError;
pub use names::{ADAPTER_PATH, BLUEZ_NAME};
pub use options::BluezOptions;

use crate::device::Device;
use adapter::{Adapter, AgentManager};
use radio::Radio;

/// A running BlueZ emulation; leaves the bus when dropped.
pub struct BluezServer {
    radio: Arc<Radio>,
    conn: Connection,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for BluezServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BluezServer").field("device", &self.radio.device_path).finish_non_exhaustive()
    }
}

impl BluezServer {
    /// The device's object path, e.g. `/org/bluez/hci0/dev_C0_53_4D_50_00_01`.
    pub fn device_path(&self) -> &str {
        &self.radio.device_path
    }

    /// The device's address.
    pub fn device_address(&self) -> &str {
        &self.radio.opts.device_address
    }

    /// The device's advertised name.
    pub fn device_name(&self) -> &str {
        &self.radio.opts.device_name
    }

    /// Every method clients called so far, as `Interface.Member` with a count, in the order
    /// first seen (interface names without the `org.bluez.` and `org.freedesktop.DBus.`
    /// prefixes).
    pub fn calls(&self) -> Vec<(String, usize)> {
        self.radio.calls()
    }

    /// Whether a client is connected to the device.
    pub fn is_connected(&self) -> bool {
        self.radio.st().connected()
    }

    /// The D-Bus connection that owns `org.bluez`.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

impl Drop for BluezServer {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}

/// Serves `device` as `org.bluez` on the bus at `address` (a D-Bus address such as
/// `unix:path=/run/dbus/system_bus_socket`, or [`PrivateBus::address`]).
pub async fn serve(device: Arc<Device>, options: BluezOptions, address: &str) -> zbus::Result<BluezServer> {
    options.link.validate().map_err(|e| zbus::Error::Failure(format!("link profile: {e}")))?;
    let radio = Radio::new(device, options, Box::new(tree::DbusObjects));
    // Objects are served before the name is taken, so a client that sees the name appear
    // finds the adapter at once.
    let conn = zbus::connection::Builder::address(address)?
        .serve_at("/", zbus::fdo::ObjectManager)?
        .serve_at("/org/bluez", AgentManager)?
        .serve_at(ADAPTER_PATH, Adapter::new(radio.clone()))?
        .build()
        .await?;
    // Not queued behind another owner: a second emulation (or bluetoothd) must be an error,
    // not a server that silently waits for the name.
    let reply = conn.request_name_with_flags(BLUEZ_NAME, RequestNameFlags::DoNotQueue.into()).await?;
    if reply != RequestNameReply::PrimaryOwner {
        return Err(zbus::Error::Failure(format!(
            "{BLUEZ_NAME} is already owned on this bus (bluetoothd, or another emulation)"
        )));
    }
    radio.set_connection(conn.clone());
    let tasks = vec![
        tokio::spawn(radio::advertise_forever(radio.clone())),
        tokio::spawn(radio::follow_device(radio.clone())),
        tokio::spawn(follow_clients(radio.clone(), conn.clone())),
        tokio::spawn(record_calls(radio.clone(), conn.clone())),
    ];
    Ok(BluezServer { radio, conn, tasks })
}

/// Ends the sessions of clients that leave the bus, as bluetoothd does.
async fn follow_clients(radio: Arc<Radio>, conn: Connection) {
    let Ok(dbus) = zbus::fdo::DBusProxy::new(&conn).await else {
        return;
    };
    let Ok(mut changes) = dbus.receive_name_owner_changed().await else {
        return;
    };
    while let Some(change) = changes.next().await {
        let Ok(args) = change.args() else {
            continue;
        };
        if args.new_owner().is_none() && args.name().starts_with(':') {
            radio.client_gone(args.name()).await;
        }
    }
}

/// Counts and logs every method call, so what a client really used can be shown.
async fn record_calls(radio: Arc<Radio>, conn: Connection) {
    let mut messages = zbus::MessageStream::from(conn);
    while let Some(msg) = messages.next().await {
        let Ok(msg) = msg else {
            continue;
        };
        let header = msg.header();
        if header.message_type() != MessageType::MethodCall {
            continue;
        }
        let interface = header.interface().map(|i| i.to_string()).unwrap_or_default();
        let short = short_name(&interface);
        let member = header.member().map(|m| m.to_string()).unwrap_or_default();
        let path = header.path().map(|p| p.to_string()).unwrap_or_default();
        tracing::debug!(
            "bluez sim: {} called {short}.{member} on {path}",
            header.sender().map(|s| s.to_string()).unwrap_or_default()
        );
        // Which property a client reads says more than that it read one.
        let detail = match member.as_str() {
            "Get" => msg
                .body()
                .deserialize::<(String, String)>()
                .ok()
                .map(|(i, p)| format!("{}.{p}", short_name(&i))),
            "Set" => msg
                .body()
                .deserialize::<(String, String, zbus::zvariant::OwnedValue)>()
                .ok()
                .map(|(i, p, v)| format!("{}.{p}={}", short_name(&i), &*v)),
            "GetAll" => msg.body().deserialize::<(String,)>().ok().map(|(i,)| short_name(&i).to_string()),
            _ => None,
        };
        match detail {
            Some(d) => radio.record_call(format!("{short}.{member}({d})")),
            None => radio.record_call(format!("{short}.{member}")),
        }
    }
}

fn short_name(interface: &str) -> &str {
    interface
        .strip_prefix("org.bluez.")
        .or_else(|| interface.strip_prefix("org.freedesktop.DBus."))
        .unwrap_or(interface)
}
