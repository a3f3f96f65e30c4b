//! How the emulated adapter and device present themselves: the one input of the emulation,
//! read by every layer of it.

use std::time::Duration;

use crate::front::ble_link::LinkParams;

/// How the emulated adapter and device present themselves.
#[derive(Debug, Clone)]
pub struct BluezOptions {
    /// The simulated radio link of every connection (MTU, timing).
    pub link: LinkParams,
    /// The adapter's address.
    pub adapter_address: String,
    /// The adapter's name.
    pub adapter_name: String,
    /// The device's address (random static: the two top bits set).
    pub device_address: String,
    /// The name the device advertises.
    pub device_name: String,
    /// Refuse notifications and writes (ATT insufficient authentication) until the client
    /// pairs (`Device1.Pair`).
    pub require_pairing: bool,
    /// Time between advertisements while a client discovers.
    pub advertising_interval: Duration,
    /// How long `Connect` waits for the device to advertise (it does not while rebooting).
    pub connect_timeout: Duration,
}

impl Default for BluezOptions {
    fn default() -> Self {
        BluezOptions {
            link: LinkParams::phone_fast(),
            adapter_address: "02:53:4D:50:00:00".into(),
            adapter_name: "smpflash-sim-adapter".into(),
            device_address: "C0:53:4D:50:00:01".into(),
            device_name: "smpflash-sim".into(),
            require_pairing: false,
            advertising_interval: Duration::from_millis(100),
            connect_timeout: Duration::from_secs(10),
        }
    }
}
