//! The SMP characteristic of a real device, reached through btleplug (BlueZ on Linux,
//! CoreBluetooth on macOS, WinRT on Windows).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use btleplug::api::{
    BDAddr, Central, CentralEvent, CharPropFlags, Characteristic, Manager as _, Peripheral as _,
    PeripheralProperties, ScanFilter, WriteType,
};
use btleplug::platform::{Adapter, Manager, Peripheral};
use futures::StreamExt;
use smpflash_core::gatt::{GattLink, DEFAULT_ATT_MTU, SMP_CHARACTERISTIC_UUID, SMP_SERVICE_UUID};
use smpflash_core::transport::{TransportError, TransportKind};
use smpflash_core::{Error, Result};
use tokio::sync::{mpsc, watch, Mutex};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// How long the Bluetooth stack gets to show an adapter before we give up.
///
/// On Linux, reaching BlueZ means connecting to the D-Bus system bus, which libdbus does with a
/// blocking call that can hang when the bus socket exists but nobody answers.
pub const ADAPTER_TIMEOUT: Duration = Duration::from_secs(3);

/// Prefix of every error that means "this machine has no usable Bluetooth adapter".
pub const NO_ADAPTER: &str = "no Bluetooth adapter found";

/// How to find and connect to a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    /// How long to scan for the device.
    pub scan_timeout: Duration,
    /// How long connecting and service discovery may take, each.
    pub connect_timeout: Duration,
    /// ATT MTU to use instead of the one the stack reports (`--mtu`).
    ///
    /// btleplug reports the negotiated MTU on CoreBluetooth and WinRT, and on BlueZ when it
    /// exposes the characteristic's `MTU` property; otherwise it says 23, which is always safe
    /// but slow. Setting this larger than what the link really negotiated makes writes fail.
    pub mtu: Option<usize>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            scan_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(20),
            mtu: None,
        }
    }
}

/// One device seen advertising the SMP service.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ScanResult {
    /// Advertised or cached name.
    pub name: Option<String>,
    /// Bluetooth address, or the OS's device identifier where addresses are hidden (macOS).
    pub address: String,
    /// Last received signal strength in dBm.
    pub rssi: Option<i16>,
}

fn smp_service() -> Uuid {
    Uuid::parse_str(SMP_SERVICE_UUID).expect("constant UUID parses")
}

fn smp_characteristic() -> Uuid {
    Uuid::parse_str(SMP_CHARACTERISTIC_UUID).expect("constant UUID parses")
}

// How the "no adapter" error names the stack and what it suggests checking.
#[cfg(target_os = "linux")]
const STACK: &str = "BlueZ on the D-Bus system bus";
#[cfg(target_os = "linux")]
const STACK_HINT: &str = "check that the system bus and bluetoothd run (`systemctl status \
                          bluetooth`) and that a controller is present and unblocked \
                          (`bluetoothctl list`, `rfkill list`)";
#[cfg(not(target_os = "linux"))]
const STACK: &str = "the system's Bluetooth stack";
#[cfg(not(target_os = "linux"))]
const STACK_HINT: &str = "check that Bluetooth is switched on and that this program may use it";

fn no_adapter(why: impl std::fmt::Display) -> Error {
    TransportError::new(TransportKind::NoAdapter, format!("{NO_ADAPTER}: {why}; {STACK_HINT}")).into()
}

/// Opens the btleplug manager without letting a hung system bus block the caller.
async fn open_manager() -> Result<Manager> {
    let handle = tokio::runtime::Handle::current();
    let (tx, rx) = tokio::sync::oneshot::channel();
    // A plain thread rather than spawn_blocking: if libdbus never returns, a blocking-pool task
    // would keep the runtime from shutting down, while a detached thread dies with the process.
    std::thread::Builder::new()
        .name("smpflash-ble-init".into())
        .spawn(move || {
            let _ = tx.send(handle.block_on(Manager::new()));
        })
        .map_err(|e| no_adapter(format_args!("cannot start the Bluetooth stack: {e}")))?;
    match tokio::time::timeout(ADAPTER_TIMEOUT, rx).await {
        Ok(Ok(Ok(manager))) => Ok(manager),
        Ok(Ok(Err(e))) => Err(no_adapter(format_args!("cannot reach {STACK} ({e})"))),
        Ok(Err(_)) => Err(no_adapter(format_args!("cannot reach {STACK}"))),
        Err(_) => {
            Err(no_adapter(format_args!("{STACK} did not answer within {} s", ADAPTER_TIMEOUT.as_secs())))
        }
    }
}

/// The first Bluetooth adapter of this machine, or an error starting with [`NO_ADAPTER`].
pub async fn first_adapter() -> Result<Adapter> {
    let manager = open_manager().await?;
    let adapters = match tokio::time::timeout(ADAPTER_TIMEOUT, manager.adapters()).await {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => return Err(no_adapter(format_args!("{STACK} did not list its adapters ({e})"))),
        Err(_) => {
            return Err(no_adapter(format_args!(
                "{STACK} did not list its adapters within {} s",
                ADAPTER_TIMEOUT.as_secs()
            )))
        }
    };
    let adapter =
        adapters.into_iter().next().ok_or_else(|| no_adapter(format_args!("{STACK} reports no adapter")))?;
    if let Ok(info) = adapter.adapter_info().await {
        tracing::debug!("using Bluetooth adapter {info}");
    }
    Ok(adapter)
}

fn display_address(p: &Peripheral, props: &PeripheralProperties) -> String {
    // CoreBluetooth hides addresses and reports all zeros; its identifier is what users can
    // pass back to us.
    if props.address == BDAddr::default() {
        p.id().to_string()
    } else {
        props.address.to_string()
    }
}

fn display_name(props: &PeripheralProperties) -> Option<String> {
    props.local_name.clone().or_else(|| props.advertisement_name.clone())
}

/// Scans for `timeout` and lists the devices advertising the SMP service, strongest first.
pub async fn scan(timeout: Duration) -> Result<Vec<ScanResult>> {
    let adapter = first_adapter().await?;
    adapter
        .start_scan(ScanFilter { services: vec![smp_service()] })
        .await
        .map_err(|e| stack_error("start scanning", e))?;
    tokio::time::sleep(timeout).await;
    let peripherals = adapter.peripherals().await;
    if let Err(e) = adapter.stop_scan().await {
        tracing::debug!("stopping the scan failed: {e}");
    }
    let mut found = Vec::new();
    for p in peripherals.map_err(|e| stack_error("list devices", e))? {
        let Ok(Some(props)) = p.properties().await else {
            continue;
        };
        // BlueZ lists every device it remembers, whatever the scan filter: keep only those
        // that advertise SMP.
        if !props.services.contains(&smp_service()) {
            continue;
        }
        found.push(ScanResult {
            name: display_name(&props),
            address: display_address(&p, &props),
            rssi: props.rssi,
        });
    }
    found.sort_by_key(|r| std::cmp::Reverse(r.rssi.unwrap_or(i16::MIN)));
    Ok(found)
}

fn stack_error(what: &str, e: btleplug::Error) -> Error {
    TransportError::new(TransportKind::Io, format!("Bluetooth: cannot {what}")).with_source(e).into()
}

/// Whether a stack error text says the device wants a paired (encrypted, authenticated) link.
///
/// Stacks report this differently: BlueZ as an ATT error 0x05/0x0f or `NotPermitted` /
/// `NotAuthorized`, WinRT as access denied, CoreBluetooth as "Authentication is insufficient".
fn needs_pairing(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    [
        "authenticat",
        "encrypt",
        "not authorized",
        "notauthorized",
        "not permitted",
        "notpermitted",
        "permission denied",
        "0x05",
        "0x0f",
        "0x08",
    ]
    .iter()
    .any(|needle| t.contains(needle))
}

/// Maps a btleplug failure during `what` on the connected device `label`.
fn link_error(label: &str, what: &str, e: btleplug::Error) -> Error {
    match e {
        btleplug::Error::NotConnected | btleplug::Error::DeviceNotFound => {
            TransportError::new(TransportKind::LinkLost, format!("{label}: {what} failed"))
                .with_source(e)
                .into()
        }
        // BlueZ reports a vanished connection as a generic D-Bus failure.
        e if e.to_string().to_ascii_lowercase().contains("not connected") => {
            TransportError::new(TransportKind::LinkLost, format!("{label}: {what} failed"))
                .with_source(e)
                .into()
        }
        e if needs_pairing(&e.to_string()) => TransportError::new(
            TransportKind::PairingRequired,
            format!(
                "device requires pairing: {what} on {label} was refused for insufficient \
                 authentication or encryption; pair (and on Linux trust) the device first, see \
                 docs/ble.md"
            ),
        )
        .with_source(e)
        .into(),
        e => TransportError::new(TransportKind::Io, format!("{label}: {what} failed")).with_source(e).into(),
    }
}

/// How the device to connect to is named.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Address(String),
    Name(String),
}

impl Target {
    fn parse(s: &str) -> Self {
        let looks_like_address = s.parse::<BDAddr>().is_ok() || Uuid::parse_str(s).is_ok();
        if looks_like_address {
            Target::Address(s.to_string())
        } else {
            Target::Name(s.to_string())
        }
    }

    fn matches(&self, p: &Peripheral, props: &PeripheralProperties) -> bool {
        match self {
            Target::Address(a) => {
                props.address.to_string().eq_ignore_ascii_case(a)
                    || p.id().to_string().eq_ignore_ascii_case(a)
            }
            Target::Name(n) => {
                props.local_name.as_deref() == Some(n.as_str())
                    || props.advertisement_name.as_deref() == Some(n.as_str())
            }
        }
    }
}

async fn find(adapter: &Adapter, target: &Target, timeout: Duration) -> Result<Peripheral> {
    adapter
        .start_scan(ScanFilter { services: vec![smp_service()] })
        .await
        .map_err(|e| stack_error("start scanning", e))?;
    let deadline = tokio::time::Instant::now() + timeout;
    let found = loop {
        let peripherals = adapter.peripherals().await.map_err(|e| stack_error("list devices", e))?;
        let mut hit = None;
        for p in peripherals {
            if let Ok(Some(props)) = p.properties().await {
                if target.matches(&p, &props) {
                    hit = Some(p);
                    break;
                }
            }
        }
        if hit.is_some() || tokio::time::Instant::now() >= deadline {
            break hit;
        }
        // Polling the device list is enough here: discovery results accumulate in the stack,
        // and a quarter second is well below the advertising interval of most devices.
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    if let Err(e) = adapter.stop_scan().await {
        tracing::debug!("stopping the scan failed: {e}");
    }
    found.ok_or_else(|| {
        let what = match target {
            Target::Address(a) => format!("with address {a}"),
            Target::Name(n) => format!("named {n:?}"),
        };
        TransportError::new(
            TransportKind::NotFound,
            format!(
                "no device {what} found within {} s (is it advertising the SMP service, in range, \
             and not connected to another central? `smpflash scan` lists what is visible)",
                timeout.as_secs()
            ),
        )
        .into()
    })
}

/// Reads and discards what the streams still deliver until they end (when the runtime shuts
/// down, at the latest), so they are never dropped while their match rules can fire.
async fn park(
    events: impl futures::Stream<Item = CentralEvent> + Unpin,
    notes: impl futures::Stream<Item = btleplug::api::ValueNotification> + Unpin,
) {
    let mut both = futures::stream::select(events.map(drop), notes.map(drop));
    while both.next().await.is_some() {}
}

/// Disconnects made on the way out of a dropped link or a cancelled connect, which the
/// runtime must still carry out: [`finish_disconnects`] waits for them.
static LATE_DISCONNECTS: std::sync::Mutex<Vec<JoinHandle<()>>> = std::sync::Mutex::new(Vec::new());

fn disconnect_later(peripheral: Peripheral) {
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        let task = handle.spawn(async move {
            let _ = peripheral.disconnect().await;
        });
        LATE_DISCONNECTS.lock().unwrap_or_else(|e| e.into_inner()).push(task);
    }
}

/// Waits up to `limit` for the disconnects that dropped links and cancelled connects left
/// behind (an interrupted `connect`, a link dropped without
/// [`disconnect`](BtleplugLink::disconnect)). Call it before the runtime ends: a device left
/// connected does not advertise, so the next tool would not find it.
pub async fn finish_disconnects(limit: Duration) {
    let tasks = std::mem::take(&mut *LATE_DISCONNECTS.lock().unwrap_or_else(|e| e.into_inner()));
    if tasks.is_empty() {
        return;
    }
    tracing::debug!("waiting for {} disconnect(s) to finish", tasks.len());
    let _ = tokio::time::timeout(limit, futures::future::join_all(tasks)).await;
}

/// Disconnects the peripheral when dropped while armed: a `connect` cancelled after the
/// connection was made (Ctrl-C during service discovery) must not leave it open.
struct ConnectGuard(Option<Peripheral>);

impl Drop for ConnectGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            disconnect_later(p);
        }
    }
}

/// Records the first reason the link went down; later ones add nothing.
fn mark_gone(gone: &watch::Sender<Option<String>>, why: String) {
    gone.send_if_modified(|g| {
        let first = g.is_none();
        if first {
            *g = Some(why);
        }
        first
    });
}

/// A connected link to the SMP characteristic of a real device.
///
/// Notifications are collected by a background task from the moment of subscription, so none
/// are lost between [`notification`](GattLink::notification) calls. The same task watches the
/// adapter for the device's disconnection, after which every call fails with
/// a [`TransportKind::LinkLost`] error.
pub struct BtleplugLink {
    peripheral: Peripheral,
    characteristic: Characteristic,
    mtu: usize,
    label: String,
    // Why the link went down, once it did; set by the watcher task or by disconnect().
    gone: Arc<watch::Sender<Option<String>>>,
    notifications: Mutex<mpsc::UnboundedReceiver<Vec<u8>>>,
}

impl BtleplugLink {
    /// Scans for the device by name or address (`AA:BB:CC:DD:EE:FF`, or the macOS device UUID),
    /// connects, finds the SMP characteristic and subscribes to its notifications.
    pub async fn connect(target: &str, options: &ConnectOptions) -> Result<Self> {
        let adapter = first_adapter().await?;
        // Subscribe to adapter events before connecting so a disconnect right after the
        // connection cannot slip by unseen.
        let events = adapter.events().await.map_err(|e| stack_error("watch adapter events", e))?;
        let target = Target::parse(target);
        let peripheral = find(&adapter, &target, options.scan_timeout).await?;
        let props = peripheral.properties().await.ok().flatten().unwrap_or_default();
        let label = format!(
            "ble {}{}",
            display_address(&peripheral, &props),
            display_name(&props).map(|n| format!(" ({n})")).unwrap_or_default()
        );
        tracing::debug!("connecting to {label}");
        // Armed before connecting: a connect cancelled while BlueZ completes it still ends.
        let mut guard = ConnectGuard(Some(peripheral.clone()));
        match tokio::time::timeout(options.connect_timeout, peripheral.connect()).await {
            Ok(r) => r.map_err(|e| link_error(&label, "connect", e))?,
            Err(_) => {
                return Err(TransportError::new(
                    TransportKind::Open,
                    format!("{label}: connecting took longer than {} s", options.connect_timeout.as_secs()),
                )
                .into())
            }
        }
        let result = match Self::setup(peripheral.clone(), events, label.clone(), options).await {
            Ok(link) => Ok(link),
            Err(e) => {
                // Leaving a half-set-up connection open would keep the device from advertising.
                let _ = peripheral.disconnect().await;
                Err(e)
            }
        };
        guard.0 = None;
        result
    }

    async fn setup(
        peripheral: Peripheral,
        events: std::pin::Pin<Box<dyn futures::Stream<Item = CentralEvent> + Send>>,
        label: String,
        options: &ConnectOptions,
    ) -> Result<Self> {
        match tokio::time::timeout(options.connect_timeout, peripheral.discover_services()).await {
            Ok(r) => r.map_err(|e| link_error(&label, "service discovery", e))?,
            Err(_) => {
                return Err(TransportError::new(
                    TransportKind::Open,
                    format!(
                        "{label}: service discovery took longer than {} s",
                        options.connect_timeout.as_secs()
                    ),
                )
                .into())
            }
        }
        let characteristic = peripheral
            .characteristics()
            .into_iter()
            .find(|c| c.uuid == smp_characteristic() && c.service_uuid == smp_service())
            .ok_or_else(|| {
                TransportError::new(
                    TransportKind::Unsupported,
                    format!(
                        "{label} has no SMP characteristic {SMP_CHARACTERISTIC_UUID}: is MCUmgr over \
                     Bluetooth (CONFIG_MCUMGR_TRANSPORT_BT) enabled in its firmware?"
                    ),
                )
            })?;
        let wanted = CharPropFlags::WRITE_WITHOUT_RESPONSE | CharPropFlags::NOTIFY;
        if !characteristic.properties.contains(wanted) {
            tracing::warn!(
                "SMP characteristic of {label} has properties {:?}; expected write without \
                 response and notify",
                characteristic.properties
            );
        }
        let reported = usize::from(peripheral.mtu());
        let mtu = options.mtu.unwrap_or(reported);
        if mtu < DEFAULT_ATT_MTU {
            return Err(TransportError::new(
                TransportKind::Unsupported,
                format!("ATT MTU {mtu} is below the BLE minimum of {DEFAULT_ATT_MTU}"),
            )
            .into());
        }
        tracing::debug!("{label}: ATT MTU {mtu} (stack reports {reported})");
        // Take the stream before subscribing: the device may notify as soon as the CCC is set.
        let mut notes = peripheral
            .notifications()
            .await
            .map_err(|e| link_error(&label, "opening the notification stream", e))?;
        peripheral
            .subscribe(&characteristic)
            .await
            .map_err(|e| link_error(&label, "subscribing to SMP notifications", e))?;

        let gone = Arc::new(watch::Sender::new(None));
        let gone_tx = gone.clone();
        let (note_tx, note_rx) = mpsc::unbounded_channel();
        let id = peripheral.id();
        let smp_char = characteristic.uuid;
        let mut events = events;
        tokio::spawn(async move {
            let mut note_tx = Some(note_tx);
            let why = loop {
                tokio::select! {
                    event = events.next() => match event {
                        Some(CentralEvent::DeviceDisconnected(d)) if d == id => {
                            break "the device disconnected".to_string();
                        }
                        Some(_) => {}
                        None => break "the Bluetooth stack stopped reporting events".to_string(),
                    },
                    note = notes.next() => match note {
                        Some(n) if n.uuid == smp_char => {
                            let sent = note_tx.as_ref().is_some_and(|tx| tx.send(n.value).is_ok());
                            if !sent {
                                break "the link was closed".to_string();
                            }
                        }
                        Some(_) => {}
                        None => break "the notification stream ended".to_string(),
                    },
                }
            };
            tracing::debug!("BLE link down: {why}");
            mark_gone(&gone_tx, why);
            // Dropping note_tx here lets notification() drain what arrived, then fail.
            note_tx.take();
            // The streams are kept and drained, not dropped, for the rest of the runtime's
            // life. bluez-async removes a stream's D-Bus match rule from a task spawned when
            // the stream is dropped and unwraps the result; a signal that matches in between
            // (the disconnection's own PropertiesChanged, an RSSI from someone's scan) makes
            // libdbus drop the rule first, and that task then panics with "No match with that
            // id found" (bluez-async 0.9 messagestream.rs:40). Undropped streams cannot race.
            park(events, notes).await;
        });
        Ok(BtleplugLink { peripheral, characteristic, mtu, label, gone, notifications: Mutex::new(note_rx) })
    }

    fn disconnected_error(&self) -> Error {
        let why = self.gone.borrow().clone().unwrap_or_else(|| "the link was closed".into());
        Error::link_lost(format!("{}: {why}", self.label))
    }

    /// Disconnects from the device. Dropping the link also disconnects, but only if the runtime
    /// is still running to carry it out, so call this before exiting
    /// ([`Transport::close`](smpflash_core::transport::Transport::close) of its
    /// [`GattTransport`](crate::GattTransport) does).
    pub async fn disconnect(&self) -> Result<()> {
        let was_up = self.gone.borrow().is_none();
        mark_gone(&self.gone, "disconnected by smpflash".into());
        // The watcher stays: it sees the disconnection and keeps the event streams (see park).
        match self.peripheral.disconnect().await {
            Ok(()) => Ok(()),
            // Already gone (the device reset or dropped the link): nothing left to end.
            Err(_) if !was_up => Ok(()),
            Err(e) => Err(link_error(&self.label, "disconnect", e)),
        }
    }
}

impl Drop for BtleplugLink {
    fn drop(&mut self) {
        // The watcher is left to park its streams (see park); it ends with the runtime.
        if self.gone.borrow().is_none() {
            disconnect_later(self.peripheral.clone());
        }
    }
}

#[async_trait]
impl GattLink for BtleplugLink {
    async fn write(&self, value: &[u8]) -> Result<()> {
        if value.len() + 3 > self.mtu {
            return Err(TransportError::new(
                TransportKind::Unsupported,
                format!(
                    "{}: {} byte value exceeds the ATT MTU {} minus 3",
                    self.label,
                    value.len(),
                    self.mtu
                ),
            )
            .into());
        }
        let mut gone = self.gone.subscribe();
        if gone.borrow().is_some() {
            return Err(self.disconnected_error());
        }
        tokio::select! {
            r = self.peripheral.write(&self.characteristic, value, WriteType::WithoutResponse) => {
                r.map_err(|e| link_error(&self.label, "writing to the SMP characteristic", e))
            }
            _ = gone.wait_for(Option::is_some) => Err(self.disconnected_error()),
        }
    }

    async fn notification(&self) -> Result<Vec<u8>> {
        let mut rx = self.notifications.lock().await;
        match rx.recv().await {
            Some(value) => Ok(value),
            None => Err(self.disconnected_error()),
        }
    }

    fn mtu(&self) -> usize {
        self.mtu
    }

    fn is_connected(&self) -> bool {
        self.gone.borrow().is_none()
    }

    fn describe(&self) -> String {
        self.label.clone()
    }

    async fn disconnect(&self) -> Result<()> {
        BtleplugLink::disconnect(self).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairing_errors_are_recognised() {
        assert!(needs_pairing("org.bluez.Error.NotPermitted: Operation failed with ATT error: 0x05"));
        assert!(needs_pairing("Authentication is insufficient."));
        assert!(needs_pairing("Permission denied"));
        assert!(!needs_pairing("Not connected"));
    }

    #[test]
    fn targets_tell_addresses_from_names() {
        assert_eq!(Target::parse("AA:BB:CC:DD:EE:FF"), Target::Address("AA:BB:CC:DD:EE:FF".into()));
        assert_eq!(
            Target::parse("8d53dc1d-1db7-4cd3-868b-8a527460aa84"),
            Target::Address("8d53dc1d-1db7-4cd3-868b-8a527460aa84".into())
        );
        assert_eq!(Target::parse("Zephyr"), Target::Name("Zephyr".into()));
    }

    #[test]
    fn pairing_refusal_reads_as_device_requires_pairing() {
        let e = link_error("ble X", "subscribing to SMP notifications", btleplug::Error::PermissionDenied);
        assert!(matches!(&e, Error::Transport(t) if t.kind == TransportKind::PairingRequired), "{e}");
        assert!(e.to_string().starts_with("device requires pairing"), "{e}");
        let e = link_error("ble X", "write", btleplug::Error::NotConnected);
        assert!(e.is_link_lost());
        let e = link_error(
            "ble X",
            "write",
            btleplug::Error::RuntimeError("org.bluez.Error.Failed: Not connected".into()),
        );
        assert!(e.is_link_lost(), "{e}");
    }
}
