//! SMP (MCUmgr) over Bluetooth Low Energy for smpflash.
//!
//! Two layers, split at the [`GattLink`](smpflash_core::gatt::GattLink) seam of
//! `smpflash-core`:
//!
//! - [`GattTransport`] turns any GATT link into an SMP [`Transport`](smpflash_core::transport::Transport):
//!   frames go out as writes of at most `mtu - 3` bytes and come back reassembled from
//!   notifications by the SMP header's length. It runs unchanged over the simulated radio link
//!   of `smpflash-sim`, which is how it is tested.
//! - [`BtleplugLink`] is the GATT link to a real device through btleplug (BlueZ, CoreBluetooth,
//!   WinRT), and [`scan`] lists devices advertising the SMP service.
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use smpflash_ble::{BtleplugLink, ConnectOptions, GattTransport};
//! use smpflash_core::client::Client;
//! use smpflash_core::command::os::Echo;
//!
//! # async fn run() -> smpflash_core::Result<()> {
//! let link = BtleplugLink::connect("AA:BB:CC:DD:EE:FF", &ConnectOptions::default()).await?;
//! let client = Client::new(Arc::new(GattTransport::new(link)));
//! let answer = client.request(&Echo { d: "hello".into() }).await?;
//! assert_eq!(answer.r, "hello");
//! # Ok(())
//! # }
//! ```
//!
//! Pairing, MTU and platform notes are in `docs/ble.md`.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod btleplug_link;
pub mod connector;

pub use btleplug_link::{
    finish_disconnects, first_adapter, scan, BtleplugLink, ConnectOptions, ScanResult, ADAPTER_TIMEOUT,
    NO_ADAPTER,
};
pub use connector::BleConnector;
// I/O-free, so it lives in core where the virtual device's connector can use it without
// btleplug; re-exported here because it is half of what this crate offers.
pub use smpflash_core::gatt_transport::{FrameReassembler, GattTransport, MAX_FRAME};
