//! The virtual device: an SMP server with MCUboot's slot semantics, served over real sockets,
//! ptys and a simulated BLE link, so smpflash (and any other SMP client) can be tested and
//! developed without hardware.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod ble;
pub mod ble_link;
pub mod bluez;
pub mod bootloader;
pub mod clock;
pub mod device;
pub mod faults;
pub mod flash;
pub mod img_mgmt;
pub mod os_mgmt;
pub mod profile;
pub mod pty;
pub mod server;
pub mod signing_key;
pub mod slot_image;
pub mod state;
pub mod trailer;
pub mod udp;

pub use device::{Device, DeviceOptions};
pub use profile::Profile;
