//! The protocol core of smpflash: SMP (MCUmgr) frames and typed commands, the device's error
//! codes, the transport seam, the request layer, and the MCUboot image reader.
//!
//! This crate performs no I/O of its own beyond reading firmware files: every medium (BLE,
//! serial, UDP, the virtual device) plugs in through [`transport::Transport`].
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod cbor;
pub mod client;
pub mod command;
pub mod decode;
pub mod dfu;
pub mod error;
pub mod frame;
pub mod fs;
pub mod gatt;
pub mod gatt_transport;
pub mod groups;
pub mod image_hash;
pub mod loopback;
pub mod mcuboot;
pub mod progress;
pub mod rc;
pub mod session;
pub mod status;
pub mod transport;
pub mod upload;

pub use error::{DeviceError, Error, Result};
pub use image_hash::ImageHash;
