//! A connection to the device over the simulated radio link, as `Device1.Connect` makes it:
//! the GATT objects it exports, the SMP characteristic's writes and notifications, and its
//! end (by the client, or by the link when the device resets). More of [`Radio`]: the
//! teardown every end shares is in [`super::radio`], below this module.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use smpflash_core::gatt::GattLink;
use tokio::sync::mpsc;
use zbus::zvariant::OwnedValue;

use super::error::{BluezError, Result};
use super::filter::{as_int, as_str};
use super::names::{CHARACTERISTIC1, DEVICE1};
use super::radio::{Link, Radio, DROP_NOTICE};
use crate::front::ble_link::SimCentral;
use crate::referee::{Client, Observation};

impl Radio {
    /// `Device1.Connect`: connects over the simulated radio link, resolves the SMP service and
    /// exports it.
    pub async fn connect(self: &Arc<Self>) -> Result<()> {
        let _ops = self.ops.lock().await;
        self.connect_locked().await
    }

    async fn connect_locked(self: &Arc<Self>) -> Result<()> {
        {
            let st = self.st();
            if st.link.is_some() {
                return Ok(());
            }
            if !st.present {
                return Err(BluezError::DoesNotExist("Does Not Exist".into()));
            }
            if !st.powered {
                return Err(BluezError::NotReady("Resource Not Ready".into()));
            }
            if st.blocked {
                return Err(BluezError::Failed("Blocked".into()));
            }
        }
        // A device that is rebooting does not advertise, and a real connection attempt to it
        // times out: BlueZ reports that as an aborted connection.
        let central = self.front.connect(self.opts.connect_timeout).await.map_err(|e| {
            tracing::debug!("bluez sim: connection attempt failed: {e}");
            BluezError::Failed("Software caused connection abort".into())
        })?;
        let central = Arc::new(central);
        let (writes, queue) = mpsc::unbounded_channel();
        let (drained_tx, drained) = tokio::sync::watch::channel(false);
        let epoch = {
            let mut st = self.st();
            st.epoch += 1;
            st.link = Some(Link { epoch: st.epoch, central: central.clone(), writes, drained });
            st.services_resolved = false;
            st.epoch
        };
        tokio::spawn(feed_writes(central.clone(), queue));
        tokio::spawn(relay_notifications(self.clone(), central, epoch, drained_tx));
        self.changed(&self.device_path, DEVICE1, vec![("Connected", true.into())]).await;
        self.tree.export_gatt(self).await;
        // Discovery takes a few connection events after Connect returns; clients wait for
        // ServicesResolved, so the wait is exercised too.
        let radio = self.clone();
        // Capped so that a link with a very long interval stays within clients' discovery
        // timeouts.
        let delay = self
            .opts
            .link
            .conn_interval
            .mul_f64(4.0 * self.opts.link.time_scale)
            .min(Duration::from_millis(500));
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ops = radio.ops.lock().await;
            let now = {
                let mut st = radio.st();
                let current = st.link.as_ref().is_some_and(|l| l.epoch == epoch);
                if current {
                    st.services_resolved = true;
                }
                current
            };
            if now {
                radio.changed(&radio.device_path, DEVICE1, vec![("ServicesResolved", true.into())]).await;
            }
        });
        Ok(())
    }

    /// The link went down on its own (the device reset, or the link model dropped it).
    async fn link_lost(&self, epoch: u64) {
        // Clients hear of it a little after the last notification, as from a controller.
        tokio::time::sleep(DROP_NOTICE).await;
        let _ops = self.ops.lock().await;
        let link = {
            let mut st = self.st();
            match &st.link {
                Some(l) if l.epoch == epoch => st.link.take(),
                _ => None,
            }
        };
        if let Some(link) = link {
            tracing::debug!("bluez sim: the link dropped");
            self.teardown_locked(link).await;
        }
    }

    /// `Device1.Disconnect`.
    pub async fn disconnect(&self) {
        let _ops = self.ops.lock().await;
        let link = self.st().link.take();
        if let Some(link) = link {
            self.teardown_locked(link).await;
        }
    }

    /// `Device1.Pair`: connects if needed and bonds (the link model's encryption is a property
    /// of the link profile, so pairing only lifts the authentication requirement).
    pub async fn pair(self: &Arc<Self>) -> Result<()> {
        let _ops = self.ops.lock().await;
        if self.st().paired {
            return Err(BluezError::AlreadyExists("Already Exists".into()));
        }
        self.connect_locked().await?;
        self.st().paired = true;
        self.changed(&self.device_path, DEVICE1, vec![("Paired", true.into()), ("Bonded", true.into())])
            .await;
        Ok(())
    }

    /// `WriteValue` on the SMP characteristic. Like BlueZ for a write command, it answers once
    /// the value is queued for the radio, not when it was sent.
    pub fn write(&self, value: Vec<u8>, options: &HashMap<String, OwnedValue>) -> Result<()> {
        let kind = options.get("type").and_then(as_str);
        let offset = options.get("offset").and_then(as_int).unwrap_or(0);
        let st = self.st();
        let Some(link) = &st.link else {
            return Err(BluezError::not_connected());
        };
        match kind.as_deref() {
            // The characteristic only allows write without response.
            None | Some("command") => {}
            Some("request" | "reliable") => {
                return Err(BluezError::NotSupported("Operation is not supported".into()))
            }
            Some(other) => return Err(BluezError::InvalidArguments(format!("Invalid write type {other:?}"))),
        }
        if offset != 0 {
            return Err(BluezError::InvalidOffset("Invalid offset".into()));
        }
        if self.opts.require_pairing && !st.paired {
            return Err(BluezError::insufficient_authentication());
        }
        if value.len() > self.opts.link.max_value_len() {
            let mtu = self.opts.link.att_mtu;
            self.device.observe(&Client::Ble, Observation::WriteTooLong { len: value.len(), mtu });
            return Err(BluezError::InvalidValueLength(format!(
                "Invalid Length: {} bytes exceed ATT MTU {} minus 3",
                value.len(),
                self.opts.link.att_mtu
            )));
        }
        link.writes.send(value).map_err(|_| BluezError::not_connected())
    }

    /// `WriteValue`, refused while a client holds the write socket (`AcquireWrite`), as
    /// bluetoothd does.
    pub async fn write_value(&self, value: Vec<u8>, options: &HashMap<String, OwnedValue>) -> Result<()> {
        if !self.write_socket_closed_or_absent().await {
            return Err(BluezError::NotPermitted("Write acquired".into()));
        }
        self.write(value, options)
    }

    pub async fn start_notify(&self, client: &str) -> Result<()> {
        let started = {
            let mut st = self.st();
            if st.link.is_none() {
                return Err(BluezError::not_connected());
            }
            if st.notify_io.is_some() {
                return Err(BluezError::NotPermitted("Notify acquired".into()));
            }
            if self.opts.require_pairing && !st.paired {
                return Err(BluezError::insufficient_authentication());
            }
            let was = st.notifying();
            st.notify_clients.insert(client.to_string());
            !was
        };
        if started {
            self.changed(&self.char_path(), CHARACTERISTIC1, vec![("Notifying", true.into())]).await;
        }
        Ok(())
    }

    pub async fn stop_notify(&self, client: &str) -> Result<()> {
        // With a notify socket out, StopNotify closes it, whoever calls.
        if self.release_notify_socket().await {
            return Ok(());
        }
        let stopped = {
            let mut st = self.st();
            if !st.notify_clients.remove(client) {
                return Err(BluezError::Failed("No notify session started".into()));
            }
            !st.notifying()
        };
        if stopped {
            self.changed(&self.char_path(), CHARACTERISTIC1, vec![("Notifying", false.into())]).await;
        }
        Ok(())
    }

    /// A notification arrived over the link: clients see it as a new `Value`, or as a packet
    /// on the notify socket when one is out (`AcquireNotify`), but only while someone
    /// subscribed (the device's CCC is set), as on a real link.
    async fn notified(&self, epoch: u64, value: Vec<u8>) {
        {
            let current = self.st().link.as_ref().is_some_and(|l| l.epoch == epoch);
            if !current || self.notify_socket(&value) {
                return;
            }
            let mut st = self.st();
            if !st.notifying() {
                // The device's CCC is not set: the answer never leaves it.
                self.device.observe(&Client::Ble, Observation::AnswerUnheard);
                return;
            }
            st.value = value.clone();
        }
        self.changed(&self.char_path(), CHARACTERISTIC1, vec![("Value", value.into())]).await;
    }
}

async fn feed_writes(central: Arc<SimCentral>, mut queue: mpsc::UnboundedReceiver<Vec<u8>>) {
    while let Some(value) = queue.recv().await {
        if let Err(e) = central.write(&value).await {
            // What was queued behind it is lost with the link, as on a real controller.
            tracing::debug!("bluez sim: write dropped: {e}");
            return;
        }
    }
}

async fn relay_notifications(
    radio: Arc<Radio>,
    central: Arc<SimCentral>,
    epoch: u64,
    drained: tokio::sync::watch::Sender<bool>,
) {
    while let Ok(value) = central.notification().await {
        radio.notified(epoch, value).await;
    }
    drained.send_replace(true);
    radio.link_lost(epoch).await;
}
