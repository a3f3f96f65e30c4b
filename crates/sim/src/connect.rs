//! The virtual device as something smpflash connects to: build the device from a profile,
//! serve it over one simulated link, and hand back a
//! [`Connector`] that reaches it through the same transport
//! smpflash uses for real hardware (UDP, the serial console framing, SMP over GATT).
//!
//! ```no_run
//! use smpflash_sim::connect::{SimConnector, SimLink, SimOptions};
//! use smpflash_sim::profile::SimProfile;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let options = SimOptions { link: SimLink::Udp, ..SimOptions::new(SimProfile::ZephyrDefault) };
//! let connector = SimConnector::start(&options).await?;
//! let session = smpflash_core::session::Session::open(Box::new(connector), std::time::Duration::from_secs(5)).await?;
//! # drop(session);
//! # Ok(())
//! # }
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use smpflash_core::gatt_transport::GattTransport;
use smpflash_core::session::Connector;
use smpflash_core::transport::Transport;
use smpflash_serial::SerialTransport;
use smpflash_udp::UdpConnector;

use crate::device::{Device, DeviceOptions};
use crate::front::ble::BleFrontEnd;
use crate::front::ble_link::BleLinkProfile;
use crate::front::pty::{self, PtyOptions, PtyServer};
use crate::front::udp::{self, UdpOptions, UdpServer};
use crate::profile::{Profile, SimProfile};

named_enum! {
    /// How smpflash reaches the virtual device.
    pub enum SimLink ("simulated link") {
        /// SMP over UDP on a loopback port.
        Udp = "udp",
        /// The serial console framing over a pty paced at 115200 baud.
        Serial115200 = "serial-115200",
        /// The serial console framing over a pty paced at 1000000 baud.
        Serial1000000 = "serial-1000000",
        /// SMP over GATT on the simulated radio link of a recent phone.
        BlePhoneFast = "ble-phone-fast",
        /// SMP over GATT on the simulated radio link of a phone that stays on 1M.
        BlePhoneSlow = "ble-phone-slow",
        /// SMP over GATT on the simulated radio link of a Bluetooth 4.0 central.
        BleLegacy = "ble-legacy",
    }
}

impl SimLink {
    /// The baud rate of a serial link.
    pub fn baud(self) -> Option<u32> {
        match self {
            SimLink::Serial115200 => Some(115_200),
            SimLink::Serial1000000 => Some(1_000_000),
            _ => None,
        }
    }

    /// The radio link profile of a BLE link.
    pub fn ble(self) -> Option<BleLinkProfile> {
        match self {
            SimLink::BlePhoneFast => Some(BleLinkProfile::PhoneFast),
            SimLink::BlePhoneSlow => Some(BleLinkProfile::PhoneSlow),
            SimLink::BleLegacy => Some(BleLinkProfile::Legacy),
            _ => None,
        }
    }
}

/// What to start: the device and the link to it.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// The built-in profile.
    pub profile: SimProfile,
    /// `KEY=VALUE` overrides of the profile's fields, applied in order
    /// ([`Profile::apply_override`]).
    pub overrides: Vec<String>,
    /// Flash and boot time: 1 real time, 0 none.
    pub time_scale: f64,
    /// Keep the flash in this file between runs.
    pub state_file: Option<PathBuf>,
    /// How to reach the device.
    pub link: SimLink,
    /// Serial links: the largest SMP frame the transport sends (default: the device's buffer
    /// size less 4). Ignored by UDP and BLE, whose sizes come from the device and the link.
    pub mtu: Option<usize>,
}

impl SimOptions {
    /// `profile` in real time, no overrides, no state file, over the fast phone BLE link.
    pub fn new(profile: SimProfile) -> Self {
        SimOptions {
            profile,
            overrides: Vec::new(),
            time_scale: 1.0,
            state_file: None,
            link: SimLink::BlePhoneFast,
            mtu: None,
        }
    }
}

/// Why the virtual device could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SimStartError {
    /// An override does not apply to the profile (unknown field, bad value, invalid result).
    #[error("{0}")]
    Profile(String),
    /// The device could not be made (its state file is unreadable or does not fit).
    #[error("cannot start the virtual device: {0}")]
    Device(#[source] std::io::Error),
    /// No loopback UDP socket.
    #[error("cannot serve UDP: {0}")]
    Udp(#[source] std::io::Error),
    /// No pty.
    #[error("cannot open a pty: {0}")]
    Pty(#[source] std::io::Error),
}

/// The running virtual device behind a [`Connector`]: its servers live as long as this does,
/// so a session that owns it can reconnect for as long as it runs.
pub struct SimConnector {
    device: Arc<Device>,
    inner: Inner,
}

/// The server of the chosen link and how to reach it.
enum Inner {
    Udp { connector: UdpConnector, _server: UdpServer },
    Serial { path: String, baud: u32, max_frame: Option<usize>, _server: PtyServer },
    Ble(BleFrontEnd),
}

/// How long a BLE connection attempt waits for the device to advertise: long enough for a
/// reboot at real-time boot delays.
const BLE_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

impl SimConnector {
    /// Builds the device `options` describe and starts the server of its link.
    pub async fn start(options: &SimOptions) -> Result<Self, SimStartError> {
        let profile =
            Profile::with_overrides(options.profile, &options.overrides).map_err(SimStartError::Profile)?;
        let device = Device::new(
            profile,
            DeviceOptions {
                time_scale: options.time_scale,
                state_file: options.state_file.clone(),
                ..Default::default()
            },
        )
        .map_err(SimStartError::Device)?;
        let inner = if let Some(baud) = options.link.baud() {
            let server = pty::serve(device.clone(), PtyOptions { baud: Some(baud), ..Default::default() })
                .await
                .map_err(SimStartError::Pty)?;
            Inner::Serial { path: server.path().to_string(), baud, max_frame: options.mtu, _server: server }
        } else if let Some(ble) = options.link.ble() {
            Inner::Ble(BleFrontEnd::new(device.clone(), ble.params()))
        } else {
            let loopback = "127.0.0.1:0".parse().expect("literal address");
            let server = udp::serve(device.clone(), loopback, UdpOptions::default())
                .await
                .map_err(SimStartError::Udp)?;
            Inner::Udp { connector: UdpConnector::new(server.local_addr().to_string()), _server: server }
        };
        Ok(SimConnector { device, inner })
    }

    /// The device behind the link.
    pub fn device(&self) -> &Arc<Device> {
        &self.device
    }
}

impl std::fmt::Debug for SimConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let link = match &self.inner {
            Inner::Udp { .. } => "udp",
            Inner::Serial { .. } => "serial",
            Inner::Ble(_) => "ble",
        };
        f.debug_struct("SimConnector")
            .field("profile", &self.device.profile().name)
            .field("link", &link)
            .finish()
    }
}

#[async_trait]
impl Connector for SimConnector {
    async fn connect(&self) -> smpflash_core::Result<Arc<dyn Transport>> {
        match &self.inner {
            Inner::Udp { connector, .. } => connector.connect().await,
            Inner::Serial { path, baud, max_frame, .. } => {
                let mut t = SerialTransport::connect(path, *baud).await?;
                if let Some(n) = max_frame {
                    t = t.with_max_frame(*n);
                }
                Ok(Arc::new(t))
            }
            Inner::Ble(front) => Ok(Arc::new(GattTransport::new(front.connect(BLE_CONNECT_TIMEOUT).await?))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_names_parse_back_and_ble_links_name_their_radio_profile() {
        for link in SimLink::ALL {
            assert_eq!(link.name().parse::<SimLink>(), Ok(*link));
            if let Some(ble) = link.ble() {
                assert_eq!(link.name(), format!("ble-{ble}"));
            }
            assert!(link.baud().is_some() || link.ble().is_some() || *link == SimLink::Udp);
        }
        let e = "serial-9600".parse::<SimLink>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown simulated link \"serial-9600\"; choose one of udp, serial-115200, serial-1000000, ble-phone-fast, ble-phone-slow, ble-legacy"
        );
    }
}
