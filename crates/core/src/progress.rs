//! What the upload and DFU engines report while they work. The CLI renders these; library
//! users implement [`Progress`] to receive them.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::mcuboot::ImageVersion;

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A DFU step begins.
    Step {
        /// Which step.
        step: Step,
    },
    /// An upload starts.
    UploadStarted {
        /// Image number.
        image: u32,
        /// Bytes to send.
        total: u64,
        /// Data bytes per chunk.
        chunk: usize,
        /// Requests kept in flight at first.
        window: usize,
        /// Offset the device resumes at (0 for a fresh upload).
        resumed_at: u64,
        /// How the upload started, and why (a resume, or a first chunk partly accepted).
        start: UploadStart,
        /// For a file transfer (fs group), which file and which way; absent for an image.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file: Option<FileTransfer>,
    },
    /// The device acknowledged more data.
    Progress {
        /// Image number.
        image: u32,
        /// Bytes the device has confirmed.
        acked: u64,
        /// Bytes to send.
        total: u64,
        /// Chunks sent again so far.
        retransmits: u64,
        /// Current window.
        window: usize,
        /// Average rate since the upload started, bytes per second.
        rate: f64,
    },
    /// The link dropped; the engine reconnects and resumes.
    Reconnecting {
        /// Why.
        reason: String,
    },
    /// The device restarted the upload from offset 0 (it lost its upload state).
    Restarted {
        /// Why.
        reason: String,
    },
    /// An upload finished.
    UploadFinished {
        /// Image number.
        image: u32,
        /// Bytes in the image.
        bytes: u64,
        /// Wall time.
        #[serde(with = "secs")]
        elapsed: Duration,
        /// Chunks sent more than once.
        retransmits: u64,
        /// Reconnections during the upload.
        reconnects: u32,
        /// For a file transfer (fs group), which file and which way; absent for an image.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file: Option<FileTransfer>,
    },
    /// Something worth telling without stopping (an image skipped, a reset repeated).
    Note {
        /// The note.
        note: Note,
    },
}

/// A file transfer's file and direction, in the transfer events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileTransfer {
    /// Path on the device.
    pub path: String,
    /// `true`: from the device; `false`: to it.
    pub download: bool,
}

/// How an upload started, from the device's answer to its first request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UploadStart {
    /// From offset 0; the device took the whole first chunk.
    Fresh,
    /// The device already held the image up to `at` (an earlier upload of the same image
    /// was cut off) and goes on from there.
    Resumed {
        /// The offset the device asked for.
        at: u64,
    },
    /// From offset 0, but the device took only the first `accepted` of the `sent` bytes of
    /// the first chunk and asked for the rest: MCUboot's serial recovery writes whole
    /// flash-write units and keeps the unaligned tail for the next chunk. Later chunks are
    /// sized to whole units.
    PartialFirstChunk {
        /// Bytes the device wrote.
        accepted: u64,
        /// Bytes the first chunk carried.
        sent: u64,
    },
}

impl fmt::Display for UploadStart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UploadStart::Fresh => f.write_str("from the start"),
            UploadStart::Resumed { at } => {
                write!(f, "resuming at {at} (the device held the image up to there)")
            }
            UploadStart::PartialFirstChunk { accepted, sent } => write!(
                f,
                "the device took {accepted} of the first chunk's {sent} bytes (whole flash-write units) \
                 and asked for the rest"
            ),
        }
    }
}

/// A step of the DFU flow. `Display` gives the sentence the CLI prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Step {
    /// Reading image state, buffers and bootloader.
    Inspect,
    /// Confirming an image that already runs under test.
    ConfirmUnderTest {
        /// Image number.
        image: u32,
    },
    /// Uploading a file to an image.
    Upload {
        /// Image number.
        image: u32,
        /// File name.
        name: String,
        /// The bootloader writes it straight into the primary slot.
        primary: bool,
    },
    /// Reading back what the slots hold after the uploads.
    VerifyUpload,
    /// Marking an image for the next boot.
    Mark {
        /// Image number.
        image: u32,
        /// Permanently (`true`) or for one test boot.
        permanent: bool,
    },
    /// Resetting the device and waiting for it.
    Reset,
    /// Reading which images run after the reset.
    VerifyRunning,
    /// Confirming the new images.
    Confirm,
    /// Resetting the application into the bootloader (`boot_mode` 1) and waiting for MCUboot's
    /// serial recovery to answer.
    EnterRecovery,
    /// Reading which images run after leaving serial recovery.
    VerifyBooted,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Inspect => f.write_str("reading image state, buffers and bootloader"),
            Step::ConfirmUnderTest { image } => write!(f, "confirming image {image}, which runs under test"),
            Step::Upload { image, name, primary: false } => write!(f, "uploading {name} to image {image}"),
            Step::Upload { image, name, primary: true } => {
                write!(f, "uploading {name} to image {image} (primary slot)")
            }
            Step::VerifyUpload => f.write_str("verifying the uploaded images"),
            Step::Mark { image, permanent } => write!(
                f,
                "marking image {image} for {}",
                if *permanent { "permanent install" } else { "test" }
            ),
            Step::Reset => f.write_str("resetting the device"),
            Step::VerifyRunning => f.write_str("checking which images run now"),
            Step::Confirm => f.write_str("confirming the new image"),
            Step::EnterRecovery => {
                f.write_str("resetting into the bootloader's serial recovery (boot mode 1)")
            }
            Step::VerifyBooted => f.write_str("checking which images run after leaving serial recovery"),
        }
    }
}

/// Why an image of the package is not uploaded. `Display` gives the sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Skip {
    /// The device already runs this image.
    AlreadyRunning {
        /// Image number.
        image: u32,
        /// The running version as the device reports it.
        version: String,
        /// File name.
        name: String,
    },
    /// The image already ran under test; it was confirmed instead of uploaded again.
    ConfirmedUnderTest {
        /// Image number.
        image: u32,
        /// The image's version.
        version: ImageVersion,
        /// File name.
        name: String,
    },
    /// The free slot already holds this image: no upload needed.
    AlreadyInSlot {
        /// Image number.
        image: u32,
        /// Slot number.
        slot: u32,
        /// The image's version.
        version: ImageVersion,
        /// File name.
        name: String,
    },
}

impl Skip {
    /// The image number skipped.
    pub fn image(&self) -> u32 {
        match self {
            Skip::AlreadyRunning { image, .. }
            | Skip::ConfirmedUnderTest { image, .. }
            | Skip::AlreadyInSlot { image, .. } => *image,
        }
    }
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::AlreadyRunning { image, version, name } => {
                write!(f, "image {image} already runs {version} ({name}), nothing to do")
            }
            Skip::ConfirmedUnderTest { image, version, name } => {
                write!(f, "image {image} already ran {version} ({name}) under test; confirmed it")
            }
            Skip::AlreadyInSlot { image, slot, version, name } => {
                write!(f, "image {image}: slot {slot} already holds {version} ({name}), not uploading again")
            }
        }
    }
}

/// Something the DFU flow tells without stopping. `Display` gives the sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "note", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Note {
    /// An image is not uploaded.
    Skipped {
        /// Why.
        skip: Skip,
    },
    /// The bootloader itself answers: the update goes through MCUboot's serial recovery.
    SerialRecovery,
    /// Every marked image is still pending after the reset: the reset was lost; asking again.
    ResetAgain,
    /// `--buf-size` gives more than the device reported; the given buffers are used.
    BuffersAboveReported {
        /// As given (`SIZE` or `SIZExCOUNT`).
        given: String,
        /// As reported (`SIZExCOUNT`).
        reported: String,
    },
    /// After the reset that should leave serial recovery the bootloader still answers; the
    /// primary slot holds the upload, but what runs cannot be checked.
    StillInRecovery,
    /// MCUboot boots the newest valid image by itself (RAM_LOAD, or direct-XIP without
    /// revert): nothing is marked or confirmed; the check after the reset decides.
    NewestValidBoots {
        /// How that is known.
        evidence: BootEvidence,
    },
}

/// How smpflash knows the bootloader boots the newest valid image without marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BootEvidence {
    /// The device reports bootloader mode 6 (RAM_LOAD).
    ReportedRamLoad,
    /// The device reports bootloader mode 4 (direct-XIP without revert).
    ReportedDirectXip,
    /// Inferred: the device does not report its bootloader mode and the image is built for
    /// RAM_LOAD (its header's `RAM_LOAD` flag).
    RamLoadImage,
    /// Inferred: the application refused to mark the image with `rc 8` (`MGMT_ERR_ENOTSUP`),
    /// which Zephyr's img_mgmt does only under RAM_LOAD or direct-XIP without revert.
    MarkRefused,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::Skipped { skip } => skip.fmt(f),
            Note::SerialRecovery => f.write_str(
                "the bootloader itself answers (MCUboot serial recovery): uploading straight into the \
                 primary slot; nothing to mark",
            ),
            Note::ResetAgain => f.write_str("the device did not reset; asking again"),
            Note::BuffersAboveReported { given, reported } => write!(
                f,
                "--buf-size {given} is more than the device reports ({reported}); using {given} as \
                 given: requests that do not fit the device's buffers may go unanswered"
            ),
            Note::StillInRecovery => f.write_str(
                "the bootloader still answers after the reset (serial recovery; is its entry pin held or \
                 the application missing?): the primary slot holds the new image, but nothing runs that \
                 could be checked",
            ),
            Note::NewestValidBoots { evidence } => {
                let why = match evidence {
                    BootEvidence::ReportedRamLoad => "MCUboot reports RAM_LOAD",
                    BootEvidence::ReportedDirectXip => "MCUboot reports direct-XIP without revert",
                    BootEvidence::RamLoadImage => {
                        "inferred RAM_LOAD: the device does not report its bootloader mode and the image is built \
                         for RAM_LOAD"
                    }
                    BootEvidence::MarkRefused => {
                        "inferred RAM_LOAD or direct-XIP without revert: the device refused to mark the image \
                         with rc 8 (not supported), as Zephyr does under those modes"
                    }
                };
                write!(
                    f,
                    "{why}: MCUboot boots the newest valid image at the next reset; nothing to mark or \
                     confirm, checking what runs after the reset"
                )
            }
        }
    }
}

mod secs {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

/// Receives [`Event`]s.
pub trait Progress: Send + Sync {
    /// Called for every event, from the engine's task: keep it quick.
    fn event(&self, event: &Event);
}

/// Ignores everything.
impl Progress for () {
    fn event(&self, _: &Event) {}
}

impl<F: Fn(&Event) + Send + Sync> Progress for F {
    fn event(&self, event: &Event) {
        self(event)
    }
}
