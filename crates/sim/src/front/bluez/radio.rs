//! What the emulated adapter knows about the virtual device, and every change of it: discovery
//! sessions, advertising, the device appearing and leaving; the connection, pairing and
//! notification subscriptions are in [`super::link`]. The D-Bus objects only read this state
//! and call in here.
//!
//! Changes that add or remove D-Bus objects run under one lock (`ops`), so the object tree
//! and the state never disagree about whether the device is there or connected.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use smpflash_core::gatt::GattLink;
use tokio::sync::mpsc;
use zbus::object_server::SignalEmitter;
use zbus::zvariant::Value;
use zbus::Connection;

use async_trait::async_trait;

use super::error::{BluezError, Result};
use super::filter::DiscoveryFilter;
use super::names::{ADAPTER1, ADAPTER_PATH, CHARACTERISTIC1, CHAR_NODE, DESC_NODE, DEVICE1, SERVICE_NODE};
use super::options::BluezOptions;
use crate::device::{Device, DeviceEvent};
use crate::front::ble::BleFrontEnd;
use crate::front::ble_link::SimCentral;

/// How long after the device's side dropped a link (a reset) clients are told, at the least:
/// Zephyr answers a reset and reboots CONFIG_MCUMGR_GRP_OS_RESET_MS (250 ms) later, and a
/// central learns of a vanished peripheral later still (supervision timeout). A client that
/// takes a disconnection for the end of a pending request (smpclient) must get to read the
/// answer first, as it does against a board.
pub(super) const DROP_NOTICE: std::time::Duration = std::time::Duration::from_millis(250);

/// One connection over the simulated radio link.
pub(super) struct Link {
    pub(super) epoch: u64,
    pub(super) central: Arc<SimCentral>,
    // Write commands in the order they were accepted; a task feeds them to the radio link.
    pub(super) writes: mpsc::UnboundedSender<Vec<u8>>,
    // True once every notification that crossed the link was handed to clients.
    pub(super) drained: tokio::sync::watch::Receiver<bool>,
}

/// A socket handed out by `AcquireWrite` or `AcquireNotify`: our end of the pair, and the task
/// that reads it until the client closes its end. Dropping it closes our end, which the client
/// sees as a hang-up.
pub(super) struct Acquired {
    pub(super) id: u64,
    pub(super) sock: Arc<tokio::io::unix::AsyncFd<socket2::Socket>>,
    pub(super) task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Acquired {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// The D-Bus objects the radio puts on the bus and takes off it. The objects hold the radio and
/// call into it, so the radio knows them only through this seam and the module that serves
/// them (`tree`) sits above both.
#[async_trait]
pub(crate) trait ObjectTree: Send + Sync {
    /// Exports the device object (`Device1`) at the radio's device path.
    async fn export_device(&self, radio: &Arc<Radio>) -> zbus::Result<bool>;
    /// Removes the device object.
    async fn remove_device(&self, radio: &Radio);
    /// Exports the SMP service, its characteristic and the CCC descriptor.
    async fn export_gatt(&self, radio: &Arc<Radio>);
    /// Removes the SMP service's objects.
    async fn remove_gatt(&self, radio: &Radio);
}

/// The adapter's state.
pub(crate) struct St {
    pub(super) powered: bool,
    pub(super) adapter_alias: String,
    /// Discovery sessions by client (unique bus name), each with its filter.
    pub(super) sessions: HashMap<String, DiscoveryFilter>,
    /// Filters set by clients, applied when they start discovering.
    pub(super) filters: HashMap<String, DiscoveryFilter>,
    /// Whether the device object is exported.
    pub(super) present: bool,
    pub(super) link: Option<Link>,
    pub(super) epoch: u64,
    pub(super) services_resolved: bool,
    pub(super) paired: bool,
    pub(super) trusted: bool,
    pub(super) blocked: bool,
    pub(super) alias: Option<String>,
    /// Clients that called StartNotify on the SMP characteristic.
    pub(super) notify_clients: HashSet<String>,
    /// The socket of `AcquireWrite`, while a client holds it (`WriteAcquired`).
    pub(super) write_io: Option<Acquired>,
    /// The socket of `AcquireNotify`, while a client holds it (`NotifyAcquired`).
    pub(super) notify_io: Option<Acquired>,
    /// Numbers the acquired sockets, so a late hang-up cannot release a newer one.
    pub(super) acquired: u64,
    /// The last notified value (the characteristic's `Value` property).
    pub(super) value: Vec<u8>,
    pub(super) rssi: i16,
    pub(super) adverts: u64,
}

impl St {
    pub fn discovering(&self) -> bool {
        !self.sessions.is_empty()
    }

    pub fn connected(&self) -> bool {
        self.link.is_some()
    }

    /// The `Notifying` property: some client called StartNotify.
    pub fn notifying(&self) -> bool {
        !self.notify_clients.is_empty()
    }

    /// Whether the device's CCC is set: a StartNotify session or an acquired notify socket.
    pub fn subscribed(&self) -> bool {
        self.notifying() || self.notify_io.is_some()
    }
}

/// The emulated adapter and the virtual device as it sees it.
pub(crate) struct Radio {
    pub device: Arc<Device>,
    pub front: BleFrontEnd,
    pub opts: BluezOptions,
    pub device_path: String,
    pub(super) tree: Box<dyn ObjectTree>,
    conn: OnceLock<Connection>,
    st: Mutex<St>,
    pub(super) ops: tokio::sync::Mutex<()>,
    calls: Mutex<Vec<(String, usize)>>,
}

impl Radio {
    pub fn new(device: Arc<Device>, opts: BluezOptions, tree: Box<dyn ObjectTree>) -> Arc<Self> {
        let front = BleFrontEnd::new(device.clone(), opts.link.clone());
        let device_path = format!("{ADAPTER_PATH}/dev_{}", opts.device_address.replace(':', "_"));
        let st = St {
            powered: true,
            adapter_alias: opts.adapter_name.clone(),
            sessions: HashMap::new(),
            filters: HashMap::new(),
            present: false,
            link: None,
            epoch: 0,
            services_resolved: false,
            paired: false,
            trusted: false,
            blocked: false,
            alias: None,
            notify_clients: HashSet::new(),
            write_io: None,
            notify_io: None,
            acquired: 0,
            value: Vec::new(),
            rssi: -50,
            adverts: 0,
        };
        Arc::new(Radio {
            device,
            front,
            opts,
            device_path,
            tree,
            conn: OnceLock::new(),
            st: Mutex::new(st),
            ops: tokio::sync::Mutex::new(()),
            calls: Mutex::new(Vec::new()),
        })
    }

    pub fn set_connection(&self, conn: Connection) {
        let _ = self.conn.set(conn);
    }

    pub(super) fn conn(&self) -> &Connection {
        self.conn.get().expect("the connection is set before any object is served")
    }

    pub fn st(&self) -> MutexGuard<'_, St> {
        // Plain flags and sets, consistent after a panic elsewhere.
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn service_path(&self) -> String {
        format!("{}/{SERVICE_NODE}", self.device_path)
    }

    pub fn char_path(&self) -> String {
        format!("{}/{SERVICE_NODE}/{CHAR_NODE}", self.device_path)
    }

    pub fn desc_path(&self) -> String {
        format!("{}/{SERVICE_NODE}/{CHAR_NODE}/{DESC_NODE}", self.device_path)
    }

    /// The ATT MTU of a connection: the link profile's.
    pub fn mtu(&self) -> u16 {
        self.opts.link.att_mtu as u16
    }

    /// The device's name as the adapter shows it.
    pub fn device_alias(&self) -> String {
        self.st().alias.clone().unwrap_or_else(|| self.opts.device_name.clone())
    }

    /// Counts a method call a client made, for [`calls`](Self::calls).
    pub fn record_call(&self, what: String) {
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        match calls.iter_mut().find(|(w, _)| *w == what) {
            Some((_, n)) => *n += 1,
            None => calls.push((what, 1)),
        }
    }

    pub fn calls(&self) -> Vec<(String, usize)> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Emits `PropertiesChanged` from the owner of `org.bluez`, as clients' match rules expect.
    pub async fn changed(&self, path: &str, interface: &'static str, props: Vec<(&'static str, Value<'_>)>) {
        let emit = async {
            let emitter = SignalEmitter::new(self.conn(), path)?;
            zbus::fdo::Properties::properties_changed(
                &emitter,
                interface.try_into()?,
                props.into_iter().collect(),
                std::borrow::Cow::Borrowed(&[]),
            )
            .await
        };
        if let Err(e) = emit.await {
            tracing::debug!("bluez sim: cannot emit PropertiesChanged on {path}: {e}");
        }
    }

    // ---- discovery ----

    fn visible(&self, st: &St) -> bool {
        let name = st.alias.as_deref().unwrap_or(&self.opts.device_name);
        st.powered && st.sessions.values().any(|f| f.admits(st.rssi, &self.opts.device_address, name))
    }

    pub async fn start_discovery(&self, client: &str) -> Result<()> {
        let started = {
            let mut st = self.st();
            if !st.powered {
                return Err(BluezError::NotReady("Resource Not Ready".into()));
            }
            let was = st.discovering();
            let filter = st.filters.get(client).cloned().unwrap_or_default();
            st.sessions.insert(client.to_string(), filter);
            !was
        };
        if started {
            self.changed(ADAPTER_PATH, ADAPTER1, vec![("Discovering", true.into())]).await;
        }
        Ok(())
    }

    pub async fn stop_discovery(&self, client: &str) -> Result<()> {
        let stopped = {
            let mut st = self.st();
            if st.sessions.remove(client).is_none() {
                return Err(BluezError::Failed("No discovery started".into()));
            }
            !st.discovering()
        };
        if stopped {
            self.changed(ADAPTER_PATH, ADAPTER1, vec![("Discovering", false.into())]).await;
        }
        Ok(())
    }

    pub fn set_discovery_filter(&self, client: &str, filter: DiscoveryFilter) {
        let mut st = self.st();
        if let Some(session) = st.sessions.get_mut(client) {
            *session = filter.clone();
        }
        st.filters.insert(client.to_string(), filter);
    }

    /// A client left the bus: BlueZ ends its discovery and notification sessions.
    pub async fn client_gone(&self, client: &str) {
        let (stopped, unsubscribed) = {
            let mut st = self.st();
            st.filters.remove(client);
            let had_session = st.sessions.remove(client).is_some();
            let had_notify = st.notify_clients.remove(client);
            (had_session && !st.discovering(), had_notify && !st.notifying())
        };
        if stopped {
            self.changed(ADAPTER_PATH, ADAPTER1, vec![("Discovering", false.into())]).await;
        }
        if unsubscribed {
            self.changed(&self.char_path(), CHARACTERISTIC1, vec![("Notifying", false.into())]).await;
        }
    }

    pub async fn set_powered(&self, on: bool) {
        let _ops = self.ops.lock().await;
        let (link, stopped) = {
            let mut st = self.st();
            if st.powered == on {
                return;
            }
            st.powered = on;
            if on {
                (None, false)
            } else {
                let was = st.discovering();
                st.sessions.clear();
                (st.link.take(), was)
            }
        };
        if let Some(link) = link {
            self.teardown_locked(link).await;
        }
        if stopped {
            self.changed(ADAPTER_PATH, ADAPTER1, vec![("Discovering", false.into())]).await;
        }
    }

    /// One advertising interval: a device that is up, not connected and wanted by a discovery
    /// session appears (`InterfacesAdded`), or, when already there, reports a fresh RSSI, as
    /// BlueZ does for every advertisement it receives.
    async fn advertise(self: &Arc<Self>) {
        let _ops = self.ops.lock().await;
        let up = self.device.is_up();
        let seen = {
            let mut st = self.st();
            if !up || st.link.is_some() || st.blocked || !self.visible(&st) {
                None
            } else {
                st.adverts += 1;
                // A little fading, so a client that only reacts to changes sees each one.
                st.rssi = -48 - (st.adverts % 4) as i16;
                let first = !st.present;
                st.present = true;
                Some((first, st.rssi))
            }
        };
        match seen {
            Some((true, _)) => {
                if let Err(e) = self.tree.export_device(self).await {
                    tracing::warn!("bluez sim: cannot export the device: {e}");
                    self.st().present = false;
                }
            }
            Some((false, rssi)) => {
                self.changed(&self.device_path, DEVICE1, vec![("RSSI", rssi.into())]).await
            }
            None => {}
        }
    }

    /// `Adapter1.RemoveDevice`: forgets the device (bond included); it reappears at its next
    /// advertisement while discovery is on.
    pub async fn remove_device(&self, path: &str) -> Result<()> {
        let _ops = self.ops.lock().await;
        if path != self.device_path || !self.st().present {
            return Err(BluezError::DoesNotExist("Does Not Exist".into()));
        }
        let link = self.st().link.take();
        if let Some(link) = link {
            self.teardown_locked(link).await;
        }
        self.unexport_device_locked().await;
        Ok(())
    }

    async fn unexport_device_locked(&self) {
        {
            let mut st = self.st();
            st.present = false;
            st.paired = false;
            st.trusted = false;
        }
        self.tree.remove_device(self).await;
    }

    /// Drops a connection and tells clients: ServicesResolved and Connected go false and the
    /// GATT objects go away. Called with `ops` held.
    pub(super) async fn teardown_locked(&self, link: Link) {
        link.central.disconnect();
        let (resolved, unsubscribed, acquired) = {
            let mut st = self.st();
            let resolved = std::mem::take(&mut st.services_resolved);
            let unsubscribed = st.notifying();
            st.notify_clients.clear();
            // As bluetoothd does when the link goes: the acquired sockets close, so their
            // holders see a hang-up.
            (resolved, unsubscribed, (st.write_io.take(), st.notify_io.take()))
        };
        drop(acquired);
        if unsubscribed {
            self.changed(&self.char_path(), CHARACTERISTIC1, vec![("Notifying", false.into())]).await;
        }
        if resolved {
            self.changed(&self.device_path, DEVICE1, vec![("ServicesResolved", false.into())]).await;
        }
        self.changed(&self.device_path, DEVICE1, vec![("Connected", false.into())]).await;
        self.tree.remove_gatt(self).await;
    }

    /// The device reset or lost power. Its connection is already gone (the BLE front end drops
    /// it); it stops advertising, so BlueZ forgets it unless it is bonded.
    async fn device_down(&self) {
        let _ops = self.ops.lock().await;
        // What the device notified before it went (the answer to a reset) reaches clients
        // before the disconnection, as the controller reports them in that order.
        let drained =
            self.st().link.as_ref().filter(|l| !l.central.is_connected()).map(|l| l.drained.clone());
        if let Some(mut drained) = drained {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), drained.wait_for(|d| *d)).await;
            tokio::time::sleep(DROP_NOTICE).await;
        }
        let link = {
            let mut st = self.st();
            // A link that is still up was made after the reboot: the device is back already.
            if st.link.as_ref().is_some_and(|l| l.central.is_connected()) {
                return;
            }
            st.link.take()
        };
        if let Some(link) = link {
            self.teardown_locked(link).await;
        }
        let (present, paired) = {
            let st = self.st();
            (st.present, st.paired)
        };
        if present && !paired {
            self.unexport_device_locked().await;
        }
    }
}

/// Advertising: runs for the life of the server.
pub(crate) async fn advertise_forever(radio: Arc<Radio>) {
    let mut tick = tokio::time::interval(radio.opts.advertising_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        radio.advertise().await;
    }
}

/// Follows the device's resets: each one takes it off the air until it boots again.
pub(crate) async fn follow_device(radio: Arc<Radio>) {
    let mut events = radio.device.subscribe();
    loop {
        match events.recv().await {
            Ok(DeviceEvent::Resetting | DeviceEvent::PowerLost) => radio.device_down().await,
            Ok(DeviceEvent::Booted(_) | DeviceEvent::Mistake { .. }) => {}
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}
