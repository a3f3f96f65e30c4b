//! MCUboot's image trailer at the end of each slot: magic, `image_ok`, `copy_done`.
//!
//! Layout with MCUboot's default `BOOT_MAX_ALIGN` of 8, counted back from the slot's end:
//! magic (16 bytes), image_ok (at -24), copy_done (at -32), swap_info (at -40), swap_size
//! (at -48). imgtool's `--pad` writes the magic and `--confirm` the image_ok at the same places.

// The same magic the image reader looks for in `imgtool --pad` images.
use smpflash_core::mcuboot::BOOT_MAGIC;

use crate::flash::{Flash, ERASED};

/// Value of a set flag.
pub const FLAG_SET: u8 = 0x01;

/// State of the magic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Magic {
    /// The MCUboot magic.
    Good,
    /// Erased.
    Unset,
    /// Anything else.
    Bad,
}

/// State of a one-byte flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// 0x01.
    Set,
    /// Erased.
    Unset,
    /// Anything else.
    Bad,
}

/// The trailer of one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer {
    /// The magic.
    pub magic: Magic,
    /// Set once the image confirmed itself (or was made permanent).
    pub image_ok: Flag,
    /// Set once a swap completed into this slot.
    pub copy_done: Flag,
}

fn flag(b: u8) -> Flag {
    match b {
        FLAG_SET => Flag::Set,
        ERASED => Flag::Unset,
        _ => Flag::Bad,
    }
}

/// Offsets of the fields from the slot's end.
const MAGIC_FROM_END: usize = 16;
const IMAGE_OK_FROM_END: usize = 24;
const COPY_DONE_FROM_END: usize = 32;

/// Reads the trailer of `slot`.
pub fn read(flash: &Flash, slot: usize) -> Trailer {
    let s = flash.slot(slot);
    let end = s.len();
    let magic_bytes = &s[end - MAGIC_FROM_END..];
    let magic = if magic_bytes == BOOT_MAGIC {
        Magic::Good
    } else if magic_bytes.iter().all(|&b| b == ERASED) {
        Magic::Unset
    } else {
        Magic::Bad
    };
    Trailer {
        magic,
        image_ok: flag(s[end - IMAGE_OK_FROM_END]),
        copy_done: flag(s[end - COPY_DONE_FROM_END]),
    }
}

/// Writes the magic.
pub fn write_magic(flash: &mut Flash, slot: usize) {
    let end = flash.slot(slot).len();
    flash.program(slot, end - MAGIC_FROM_END, &BOOT_MAGIC);
}

/// Sets image_ok.
pub fn write_image_ok(flash: &mut Flash, slot: usize) {
    let end = flash.slot(slot).len();
    flash.program(slot, end - IMAGE_OK_FROM_END, &[FLAG_SET]);
}

/// Sets copy_done.
pub fn write_copy_done(flash: &mut Flash, slot: usize) {
    let end = flash.slot(slot).len();
    flash.program(slot, end - COPY_DONE_FROM_END, &[FLAG_SET]);
}

/// Erases the trailer's sector.
pub fn erase(flash: &mut Flash, slot: usize) {
    let end = flash.slot(slot).len();
    let ss = flash.sector_size();
    flash.erase(slot, end - ss, ss);
}
