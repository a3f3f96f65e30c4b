//! MCUboot's image format as the device sees it: the key a bootloader is built with
//! ([`keys`]) and the image in a slot, read, validated and built ([`slot`]). Pure functions
//! over bytes; nothing here knows about flash, profiles or the bootloader's state.

pub mod keys;
pub mod slot;
