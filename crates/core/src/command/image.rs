//! Image management group (1): state, upload, erase, slot info.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use super::{Command, Empty};
use crate::frame::Op;
use crate::rc::group::IMAGE;

/// Read the state of every image slot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ImageStateRead {}

impl Command for ImageStateRead {
    type Response = ImageStateResponse;
    const GROUP: u16 = IMAGE;
    const ID: u8 = 0;
    const OP: Op = Op::Read;
    const NAME: &'static str = "image state read";
}

/// Mark an image: test (`confirm: false`) or permanent (`confirm: true`); without a hash and
/// with `confirm: true`, confirm the running image.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ImageStateWrite {
    /// MCUboot image hash (the SHA-256 TLV), 32 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<ByteBuf>,
    /// `true`: permanent; `false`: test once.
    pub confirm: bool,
}

impl Command for ImageStateWrite {
    type Response = ImageStateResponse;
    const GROUP: u16 = IMAGE;
    const ID: u8 = 0;
    const OP: Op = Op::Write;
    const NAME: &'static str = "image state write";
    /// Marking writes the image trailer (and on some devices erases its sector first): a
    /// flash operation of a sector or two, 100 ms on an nRF5340, but slower on external flash.
    const TIMEOUT: Option<Duration> = Some(STATE_WRITE_TIMEOUT);
}

/// Default wait for an [`ImageStateWrite`] answer (see docs/cli.md, "Timeouts").
pub const STATE_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Default wait for an [`ImageErase`] answer: Zephyr erases the whole slot before it answers.
/// An nRF5340's 0xF0000-byte application slot is 240 pages of 85 ms: 20.4 s. 60 s is that
/// bound with room for larger slots and slower (external) flash (see docs/cli.md, "Timeouts").
pub const ERASE_TIMEOUT: Duration = Duration::from_secs(60);

/// Answer to image state read and write.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ImageStateResponse {
    /// One entry per slot holding an image.
    #[serde(default)]
    pub images: Vec<SlotState>,
    /// Legacy split-image status.
    #[serde(rename = "splitStatus", default, skip_serializing_if = "Option::is_none")]
    pub split_status: Option<i64>,
}

/// One slot as image state reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct SlotState {
    /// Image number (absent on single-image devices, meaning 0).
    #[serde(default)]
    pub image: u32,
    /// Slot within the image: 0 primary, 1 secondary.
    pub slot: u32,
    /// Version text, `major.minor.revision[.build]`.
    #[serde(default)]
    pub version: String,
    /// MCUboot image hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<crate::ImageHash>,
    /// Header flags allow booting.
    #[serde(default)]
    pub bootable: bool,
    /// Marked to be swapped in at the next boot.
    #[serde(default)]
    pub pending: bool,
    /// `image_ok` is set.
    #[serde(default)]
    pub confirmed: bool,
    /// Running now.
    #[serde(default)]
    pub active: bool,
    /// Pending and confirmed: stays after the next boot.
    #[serde(default)]
    pub permanent: bool,
}

/// One chunk of an image upload.
///
/// The first chunk (`off == 0`) must carry `len`, and may carry `image`, `sha` and `upgrade`;
/// later chunks carry only `off` and `data`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ImageUpload {
    /// Image number to upload to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<u32>,
    /// Total length of the image (first chunk only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub len: Option<u64>,
    /// Offset of this chunk.
    pub off: u64,
    /// SHA-256 of the whole upload, so the device can resume and report `match`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha: Option<ByteBuf>,
    /// The chunk's bytes.
    pub data: ByteBuf,
    /// Ask the device to refuse images not newer than the running one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<bool>,
}

/// Answer to [`ImageUpload`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub struct ImageUploadResponse {
    /// The next offset the device expects.
    pub off: u64,
    /// Whether the received image's SHA-256 equals `sha` (when the device checks).
    #[serde(rename = "match", default, skip_serializing_if = "Option::is_none")]
    pub matched: Option<bool>,
}

impl Command for ImageUpload {
    type Response = ImageUploadResponse;
    const GROUP: u16 = IMAGE;
    const ID: u8 = 1;
    const OP: Op = Op::Write;
    const NAME: &'static str = "image upload";
}

/// Erase a slot (the secondary by default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ImageErase {
    /// Slot to erase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<u32>,
}

impl Command for ImageErase {
    type Response = Empty;
    const GROUP: u16 = IMAGE;
    const ID: u8 = 5;
    const OP: Op = Op::Write;
    const NAME: &'static str = "image erase";
    const TIMEOUT: Option<Duration> = Some(ERASE_TIMEOUT);
}

/// Read the sizes of every slot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct SlotInfo {}

/// Answer to [`SlotInfo`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct SlotInfoResponse {
    /// One entry per image.
    #[serde(default)]
    pub images: Vec<SlotInfoImage>,
}

/// Slots of one image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct SlotInfoImage {
    /// Image number.
    pub image: u32,
    /// Its slots.
    #[serde(default)]
    pub slots: Vec<SlotInfoSlot>,
    /// Largest image the bootloader can take (slot size minus trailer and swap overhead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_image_size: Option<u64>,
}

/// One slot's size.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct SlotInfoSlot {
    /// Slot number within the image.
    pub slot: u32,
    /// Size in bytes.
    pub size: u64,
    /// Image number to give an upload so it lands in this slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_image_id: Option<u32>,
}

impl Command for SlotInfo {
    type Response = SlotInfoResponse;
    const GROUP: u16 = IMAGE;
    const ID: u8 = 6;
    const OP: Op = Op::Read;
    const NAME: &'static str = "slot info";
}
