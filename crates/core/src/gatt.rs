//! The GATT-link seam: what SMP over BLE needs from a Bluetooth stack.
//!
//! Both the btleplug adapter (`smpflash-ble`) and the virtual device's simulated radio link
//! (`smpflash-sim`) implement [`GattLink`], so the SMP-over-GATT code that fragments frames and
//! reassembles notifications is the same against hardware and against the simulator.

use async_trait::async_trait;

use crate::error::Result;

/// SMP service UUID.
pub const SMP_SERVICE_UUID: &str = "8d53dc1d-1db7-4cd3-868b-8a527460aa84";
/// SMP characteristic UUID (write without response + notify).
pub const SMP_CHARACTERISTIC_UUID: &str = "da2e7828-fbce-4e01-ae9e-261174997c48";

/// Smallest ATT MTU every BLE link supports.
pub const DEFAULT_ATT_MTU: usize = 23;

/// A connected link to the SMP characteristic of one device.
#[async_trait]
pub trait GattLink: Send + Sync {
    /// Writes one value without response. `value` is at most `mtu() - 3` bytes. Waits while the
    /// link cannot take more (flow control), and fails with
    /// a [`LinkLost`](crate::transport::TransportKind::LinkLost) error once the link is gone.
    async fn write(&self, value: &[u8]) -> Result<()>;

    /// Waits for the next notification value of the SMP characteristic; fails with
    /// a [`LinkLost`](crate::transport::TransportKind::LinkLost) error once the link is gone.
    async fn notification(&self) -> Result<Vec<u8>>;

    /// The negotiated ATT MTU.
    fn mtu(&self) -> usize;

    /// Whether the link is still up.
    fn is_connected(&self) -> bool;

    /// A short description for logs, e.g. `ble AA:BB:CC:DD:EE:FF`.
    fn describe(&self) -> String;

    /// Disconnects from the device ([`Transport::close`](crate::transport::Transport::close)
    /// of a GATT transport). The default does nothing.
    async fn disconnect(&self) -> Result<()> {
        Ok(())
    }
}
