//! What the upload and DFU engines report while they work. The CLI renders these; library
//! users implement [`Progress`] to receive them.

use std::time::Duration;

use serde::Serialize;

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A DFU step begins, in words ("reading image state").
    Step {
        /// What is being done.
        what: String,
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
    },
    /// Something worth telling without stopping ("image already in the secondary slot").
    Note {
        /// The note.
        text: String,
    },
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
