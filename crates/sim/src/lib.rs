//! The virtual device: an SMP server with MCUboot's slot semantics, served over real sockets,
//! ptys and a simulated BLE link, so smpflash (and any other SMP client) can be tested and
//! developed without hardware.
//!
//! # Layout
//!
//! The modules are layered: each imports only from the layers listed before it (and from
//! `smpflash-core`), never from one after it, so there are no import circles.
//!
//! 1. [`names`], [`clock`] and [`faults`]: leaves: the named-enum helper every list of names
//!    (profiles, links) is declared with, what time is, and what can go wrong.
//! 2. [`image`]: MCUboot's image format: signing keys, and reading, validating and building
//!    the image in a slot. Pure functions over bytes.
//! 3. [`profile`]: what kind of device this is (boot mode, slots, buffers, flash timing, key),
//!    and the built-in profiles by name.
//! 4. [`flash`]: the NOR flash the slots live in, with erase and program costs.
//! 5. [`boot`]: what MCUboot does: the image trailer and the boot-time swap/revert decisions.
//! 6. [`state`]: everything the device remembers (flash, boot state, the upload in progress)
//!    and its state file.
//! 7. [`smp`]: what the SMP server answers: the shared handler vocabulary, the OS and image
//!    group handlers, and the dispatcher over them.
//! 8. [`referee`]: what the device makes of each client's traffic: the mistakes a
//!    hand-written client makes, named with their fix, and a per-client account for the
//!    summary. Pure: the device and the front ends hand it what they saw.
//! 9. [`device`]: the running device: state, resets and boots, events, flash time.
//! 10. [`front`]: the ways in: UDP, a pty serial console, the BLE link model and front end,
//!     and the BlueZ D-Bus emulation.
//! 11. [`connect`]: the device as a [`Connector`](smpflash_core::session::Connector) for
//!     smpflash itself, over one of the front ends, with the names of its profiles and links.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

// First, so its macro is in scope in every module declared after it.
#[macro_use]
pub mod names;

pub mod boot;
pub mod clock;
pub mod connect;
pub mod device;
pub mod faults;
pub mod flash;
pub mod front;
pub mod image;
pub mod profile;
pub mod referee;
pub mod smp;
pub mod state;

pub use device::{Device, DeviceOptions};
pub use profile::Profile;
