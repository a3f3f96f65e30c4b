//! A minimal SMP image-upload server for the loopback: it keeps the offset it expects, takes
//! `len` and `sha` on the first chunk, writes chunks that arrive at its offset into its flash,
//! answers `{"rc": 0, "off": N}` per chunk and adds `match` at the end, and resumes an upload
//! with the same `sha` asked again from offset 0 (as Zephyr does). A `twist` decides per
//! request what goes wrong: lost, duplicated or late answers, a reset, a rewound offset, a
//! dropped link.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use sha2::{Digest, Sha256};
use smpflash_core::cbor;
use smpflash_core::command::image::ImageUpload;
use smpflash_core::command::Command;
use smpflash_core::frame::Frame;
use smpflash_core::loopback::Reply;
use tokio::time::Instant;

/// How long the device takes to answer a chunk unless a twist says otherwise.
pub const LATENCY: Duration = Duration::from_millis(5);

/// What the device does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Processes it and answers after [`LATENCY`].
    Answer,
    /// Processes it and answers after this long instead.
    Late(Duration),
    /// Processes it; the answer is lost.
    Drop,
    /// Processes it and answers twice.
    Twice,
    /// Processes it, then the link drops before the answer.
    Close,
    /// Ignores it and answers with this offset.
    Say(u64),
}

/// One request the device received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// 1-based count of upload requests.
    pub n: u64,
    /// The chunk's offset.
    pub off: u64,
    /// Data bytes in it.
    pub len: usize,
    /// Whether it carried `len`/`sha` (a first request).
    pub first: bool,
    /// Encoded size of the whole request frame.
    pub frame_len: usize,
}

/// The device's upload state.
#[derive(Debug, Default)]
pub struct State {
    /// Offset the device expects next.
    pub off: u64,
    /// Length of the upload in progress, if any.
    pub len: Option<u64>,
    /// Flash write alignment, as MCUboot's serial recovery applies it: a chunk that is not
    /// the last is written only up to a multiple of this, and the device asks for the rest
    /// (0 or 1: every byte is written).
    pub write_align: usize,
    /// Its SHA-256.
    pub sha: Option<Vec<u8>>,
    /// The slot: what has been written.
    pub flash: Vec<u8>,
    /// Every upload request, in arrival order.
    pub seen: Vec<Seen>,
    /// Most requests outstanding at once: received, answer not yet due.
    pub max_inflight: usize,
    due: Vec<Instant>,
}

impl State {
    /// Forgets the upload in progress, as a reset device does.
    pub fn forget(&mut self) {
        self.off = 0;
        self.len = None;
        self.sha = None;
    }
}

type Twist = dyn Fn(&mut State, &Seen) -> Fate + Send + Sync;

/// The device.
pub struct ImgDevice {
    state: Mutex<State>,
    twist: Box<Twist>,
}

#[derive(serde::Serialize)]
struct Answer {
    rc: i64,
    off: u64,
    #[serde(rename = "match", skip_serializing_if = "Option::is_none")]
    matched: Option<bool>,
}

#[derive(serde::Serialize)]
struct Rc {
    rc: i64,
}

impl ImgDevice {
    /// A device that behaves.
    pub fn new() -> Arc<Self> {
        Self::twisted(|_, _| Fate::Answer)
    }

    /// A device whose `twist` sees the state and each request before the device acts on it.
    pub fn twisted(twist: impl Fn(&mut State, &Seen) -> Fate + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(ImgDevice { state: Mutex::new(State::default()), twist: Box::new(twist) })
    }

    /// The device's state.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// Lets the device hold the first `upto` bytes of an upload of `image` already, as after
    /// an interrupted upload.
    pub fn preload(&self, image: &[u8], upto: usize) {
        let mut st = self.state();
        st.len = Some(image.len() as u64);
        st.sha = Some(Sha256::digest(image).to_vec());
        st.flash = vec![0xFF; image.len()];
        st.flash[..upto].copy_from_slice(&image[..upto]);
        st.off = upto as u64;
    }

    /// The loopback responder serving this device.
    pub fn responder(self: &Arc<Self>) -> impl Fn(&Frame) -> Vec<Reply> + Send + Sync + 'static {
        let dev = self.clone();
        move |req| dev.handle(req)
    }

    fn handle(&self, frame: &Frame) -> Vec<Reply> {
        let h = frame.header;
        if (h.group, h.id) != (ImageUpload::GROUP, ImageUpload::ID) {
            return vec![Reply::answer(frame, &Rc { rc: 8 }).unwrap()];
        }
        let req: ImageUpload = cbor::from_slice(&frame.body, "upload").unwrap();
        let mut st = self.state();
        let seen = Seen {
            n: st.seen.len() as u64 + 1,
            off: req.off,
            len: req.data.len(),
            first: req.len.is_some(),
            frame_len: frame.len(),
        };
        st.seen.push(seen);
        let now = Instant::now();
        st.due.retain(|&d| d > now);
        let inflight = st.due.len() + 1;
        st.max_inflight = st.max_inflight.max(inflight);

        let fate = (self.twist)(&mut st, &seen);
        let body = match fate {
            Fate::Say(off) => Answer { rc: 0, off, matched: None },
            _ => Self::process(&mut st, &req),
        };
        let answer = || Reply::answer(frame, &body).unwrap();
        let (replies, delay) = match fate {
            Fate::Answer | Fate::Say(_) => (vec![answer().after(LATENCY)], Some(LATENCY)),
            Fate::Late(d) => (vec![answer().after(d)], Some(d)),
            Fate::Twice => (vec![answer().after(LATENCY), answer().after(LATENCY)], Some(LATENCY)),
            Fate::Drop => (vec![], None),
            Fate::Close => (vec![Reply::close()], None),
        };
        if let Some(d) = delay {
            st.due.push(now + d);
        }
        replies
    }

    /// Zephyr's rules, reduced to what the engine relies on.
    fn process(st: &mut State, req: &ImageUpload) -> Answer {
        if req.off == 0 {
            let sha = req.sha.as_ref().map(|s| s.to_vec());
            let resume =
                st.len.is_some() && st.len == req.len && sha.is_some() && st.sha == sha && st.off > 0;
            if !resume {
                let len = req.len.expect("the first chunk carries len");
                st.len = Some(len);
                st.sha = sha;
                st.flash = vec![0xFF; len as usize];
                st.off = 0;
            }
        }
        let Some(len) = st.len else {
            // No upload in progress (the device reset): it expects the start.
            return Answer { rc: 0, off: 0, matched: None };
        };
        if req.off == st.off {
            let at = st.off as usize;
            let mut n = req.data.len();
            if st.write_align > 1 && st.off + n as u64 != len {
                n -= n % st.write_align;
            }
            st.flash[at..at + n].copy_from_slice(&req.data[..n]);
            st.off += n as u64;
        }
        let matched = (st.off == len).then(|| st.sha.as_deref() == Some(&Sha256::digest(&st.flash)[..]));
        Answer { rc: 0, off: st.off, matched }
    }
}

/// `len` bytes of noise.
pub fn image(len: usize) -> Vec<u8> {
    smpflash_core::loopback::noise(len, 0x1234_5678)
}
