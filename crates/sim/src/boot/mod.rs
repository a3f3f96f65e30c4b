//! What MCUboot does at boot: the image trailer at the end of each slot ([`trailer`]) and the
//! boot-time decisions over it: swap, revert, validate ([`bootloader`]).

pub mod bootloader;
pub mod trailer;
