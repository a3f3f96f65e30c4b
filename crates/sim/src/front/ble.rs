//! The BLE front end: the device as an SMP peripheral behind the simulated radio link, doing
//! what Zephyr's `smp_bt` does — reassemble written fragments into frames by the header's
//! length (`smp_reassembly.c`: a write that overruns the header's length, a packet larger than
//! an SMP buffer or a first write shorter than a header is dropped whole), queue them in SMP
//! buffers, answer with notifications of at most MTU-3 bytes, and drop the connection when
//! the device resets.

use std::sync::Arc;
use std::time::Duration;

use smpflash_core::frame::expected_len;
use smpflash_core::transport::{TransportError, TransportKind};
use smpflash_core::Result;
use tokio::sync::mpsc;

use crate::device::{Device, DeviceEvent};
use crate::front::ble_link::{link, LinkParams, SimCentral, SimPeripheral};
use crate::referee::{Client, Observation};

/// Makes connections to the device over simulated BLE links with fixed parameters.
#[derive(Debug, Clone)]
pub struct BleFrontEnd {
    device: Arc<Device>,
    params: LinkParams,
    drop_once: Arc<std::sync::Mutex<Option<u64>>>,
}

impl BleFrontEnd {
    /// A front end whose links use `params`.
    pub fn new(device: Arc<Device>, params: LinkParams) -> Self {
        BleFrontEnd { device, params, drop_once: Default::default() }
    }

    /// Fault: the next connection drops after `bytes` bytes were written to the device; later
    /// connections do not (a single link loss at a chosen point of an upload).
    pub fn drop_next_link_after(&self, bytes: u64) {
        *self.drop_once.lock().unwrap_or_else(|e| e.into_inner()) = Some(bytes);
    }

    /// The link parameters.
    pub fn params(&self) -> &LinkParams {
        &self.params
    }

    /// Connects a central, waiting up to `timeout` for the device to advertise (it does not
    /// while it reboots). Returns the central's end of the link.
    pub async fn connect(&self, timeout: Duration) -> Result<SimCentral> {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.device.is_up() {
            if tokio::time::Instant::now() >= deadline {
                return Err(TransportError::new(
                    TransportKind::NotFound,
                    "virtual device not found: it is not advertising",
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut params = self.params.clone();
        if let Some(bytes) = self.drop_once.lock().unwrap_or_else(|e| e.into_inner()).take() {
            params.disconnect_after_bytes = Some(bytes);
        }
        let (central, peripheral) = link(params);
        spawn_peripheral(self.device.clone(), Arc::new(peripheral));
        Ok(central)
    }
}

fn spawn_peripheral(device: Arc<Device>, peripheral: Arc<SimPeripheral>) {
    let (queue, mut work) = mpsc::unbounded_channel::<(Vec<u8>, tokio::sync::OwnedSemaphorePermit)>();

    // Receiver: a buffer must be free before the link takes more data, so a busy device
    // back-pressures the radio link instead of dropping frames.
    let rx = peripheral.clone();
    let rx_device = device.clone();
    let receiver = tokio::spawn(async move {
        let buf_size = rx_device.profile().buf_size;
        loop {
            // Zephyr's smp_bt_chr_write with CONFIG_MCUMGR_TRANSPORT_BT_REASSEMBLY
            // (smp_reassembly.c, smp_reassembly_collect): the first write of a packet must
            // hold a whole header, and the header's length (plus the header) is what the
            // packet will have; a write that breaks a rule is refused and dropped whole
            // (write without response: the client never hears of it).
            let Some(first) = rx.next_write().await else {
                return;
            };
            let Some(expected) = expected_len(&first) else {
                // -ENODATA: "Not enough data to even collect header".
                tracing::debug!("sim ble: a {}-byte write cannot hold a header; dropped", first.len());
                rx_device.observe(&Client::Ble, Observation::LengthMismatch { write: first });
                continue;
            };
            if first.len() > buf_size || expected > buf_size {
                // -ENOSR: "Joining net_bufs not supported yet".
                tracing::debug!(
                    "sim ble: a {expected}-byte packet does not fit a {buf_size}-byte buffer; dropped"
                );
                rx_device.observe(
                    &Client::Ble,
                    Observation::TooLarge { len: expected.max(first.len()), buf_size },
                );
                continue;
            }
            if first.len() > expected {
                // -EOVERFLOW: more bytes than the header's length; nothing of it is handled.
                tracing::debug!(
                    "sim ble: a {}-byte write whose header says {expected} bytes; dropped",
                    first.len()
                );
                rx_device.observe(&Client::Ble, Observation::LengthMismatch { write: first });
                continue;
            }
            // smp_packet_alloc: a packet takes a buffer when its first write is collected;
            // until one is free the link is not read, so the radio stops accepting writes.
            let permit = match rx_device.buffers().try_acquire_owned() {
                Ok(permit) => permit,
                Err(_) => {
                    // More requests than buffers in flight: a real device drops the packet
                    // (smp_reassembly has no buffer to collect it into); the model holds the
                    // link instead, and tells the client.
                    let buffers = rx_device.profile().buf_count;
                    rx_device.observe(&Client::Ble, Observation::NoBuffer { buffers, dropped: false });
                    let Ok(permit) = rx_device.buffers().acquire_owned().await else {
                        return;
                    };
                    permit
                }
            };
            let mut packet = first;
            let complete = loop {
                if packet.len() == expected {
                    break true;
                }
                let Some(value) = rx.next_write().await else {
                    return;
                };
                if packet.len() + value.len() > expected {
                    // -EOVERFLOW on a later write: "A fragment is longer than the expected
                    // size"; smp_reassembly_drop frees the whole packet.
                    tracing::debug!("sim ble: a write overruns the packet's header length; packet dropped");
                    break false;
                }
                packet.extend_from_slice(&value);
            };
            if complete && queue.send((packet, permit)).is_err() {
                return;
            }
        }
    });

    // Resets drop every connection, whichever front end asked for them.
    let watcher_link = peripheral.clone();
    let mut events = device.subscribe();
    let watcher = tokio::spawn(async move {
        while let Ok(ev) = events.recv().await {
            if matches!(ev, DeviceEvent::Resetting | DeviceEvent::PowerLost) {
                watcher_link.disconnect();
                return;
            }
        }
    });

    tokio::spawn(async move {
        let chunk = peripheral.mtu() - 3;
        while let Some((frame, permit)) = work.recv().await {
            let outcome = device.handle(&Client::Ble, &frame).await;
            'answers: for response in &outcome.responses {
                for piece in response.chunks(chunk) {
                    // Zephyr's SMP work queue hands the answer to the host and moves on to the
                    // next request while the radio sends it; only the answer to a reset is
                    // waited for, since the reset then drops the link.
                    let sent = if outcome.reset {
                        peripheral.notify(piece).await
                    } else {
                        peripheral.queue_notification(piece).await.map(drop)
                    };
                    if sent.is_err() {
                        break 'answers;
                    }
                }
            }
            drop(permit);
            if outcome.reset {
                peripheral.disconnect();
                device.reset().await;
                break;
            }
            if !peripheral.is_connected() {
                break;
            }
        }
        receiver.abort();
        watcher.abort();
    });
}
