//! An in-memory [`Transport`] for tests: a scripted peer instead of a device, no sockets.
//!
//! [`Loopback::pair`] gives the host side (a [`Transport`] for [`Client`](crate::client::Client))
//! and the [`Peer`] side, which a test drives by hand ([`Peer::recv`], [`Peer::send`],
//! [`Peer::close`]) or hands a responder to ([`Peer::serve`]). A responder sees every request
//! frame and returns the [`Reply`]s to send back: none (a lost request), one, several
//! (duplicates, strangers' sequence numbers), each after its own delay (answers out of order),
//! raw bytes (malformed frames), or [`Reply::close`] to drop the link. [`LoopbackConnector`]
//! opens a fresh loopback to the same responder on every connect, so
//! [`Session`](crate::session::Session) reconnects can be tested too.
//!
//! Delays use `tokio::time`, so under `tokio::time::pause()` a scripted exchange runs in virtual
//! time, deterministically.
//!
//! ```
//! use std::sync::Arc;
//! use smpflash_core::client::Client;
//! use smpflash_core::command::os::{Echo, EchoResponse};
//! use smpflash_core::loopback::{Loopback, Reply};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> smpflash_core::Result<()> {
//! // A peer that echoes every request's text back.
//! let link = Loopback::serving(|req| {
//!     let echo: Echo = smpflash_core::cbor::from_slice(&req.body, "echo").unwrap();
//!     vec![Reply::answer(req, &EchoResponse { r: echo.d }).unwrap()]
//! });
//! let client = Client::new(Arc::new(link));
//! assert_eq!(client.request(&Echo { d: "hello".into() }).await?.r, "hello");
//! assert_eq!(client.describe(), "loopback");
//! # Ok(())
//! # }
//! ```

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, Mutex};

use crate::error::{Error, Result};
use crate::frame::{Frame, Header};
use crate::session::Connector;
use crate::transport::Transport;

/// The [`Transport::max_frame`] of a loopback unless set otherwise.
pub const DEFAULT_MAX_FRAME: usize = 1024;

/// Decides what a scripted peer sends back for each request frame.
pub type Responder = Arc<dyn Fn(&Frame) -> Vec<Reply> + Send + Sync>;

/// One thing a scripted peer does in answer to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    delay: Duration,
    action: Action,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    Send(Vec<u8>),
    Close,
}

impl Reply {
    /// Sends `frame`.
    pub fn frame(frame: &Frame) -> Self {
        Reply::bytes(frame.encode())
    }

    /// Sends these bytes as one frame, whether they decode or not.
    pub fn bytes(bytes: impl Into<Vec<u8>>) -> Self {
        Reply { delay: Duration::ZERO, action: Action::Send(bytes.into()) }
    }

    /// The answer to `req` a device would send: same version, group, id and sequence number,
    /// the response op, and `body` encoded as CBOR.
    pub fn answer(req: &Frame, body: &impl serde::Serialize) -> Result<Self> {
        let header = Header { op: req.header.op.response(), ..req.header };
        Ok(Reply::frame(&Frame::new(header, crate::cbor::to_vec(body, "loopback reply")?)?))
    }

    /// Closes the link: the host's [`recv`](Transport::recv) yields
    /// a link-lost error ([`Error::is_link_lost`]) once the frames sent before it were read.
    pub fn close() -> Self {
        Reply { delay: Duration::ZERO, action: Action::Close }
    }

    /// Does this `delay` after the request arrived instead of at once. The replies to one
    /// request go out in the order of their delays (in the order given when equal); replies to
    /// a later request overtake earlier ones by having shorter delays.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// The bytes this reply sends, if it sends a frame.
    pub fn payload(&self) -> Option<&[u8]> {
        match &self.action {
            Action::Send(b) => Some(b),
            Action::Close => None,
        }
    }
}

/// What travels from the peer to the host.
enum Msg {
    Frame(Vec<u8>),
    Close,
}

/// The host side of an in-memory link: a [`Transport`] whose frames go to a [`Peer`].
pub struct Loopback {
    to_peer: mpsc::UnboundedSender<Vec<u8>>,
    from_peer: Mutex<mpsc::UnboundedReceiver<Msg>>,
    closed: Arc<AtomicBool>,
    ended: AtomicBool,
    max_frame: usize,
    frame_overhead: usize,
    piece_len: usize,
}

/// The device side of a [`Loopback`]: receives the host's frames and sends answers.
///
/// Cheap to clone; all clones are the same peer.
#[derive(Clone)]
pub struct Peer {
    to_host: mpsc::UnboundedSender<Msg>,
    from_host: Arc<Mutex<mpsc::UnboundedReceiver<Vec<u8>>>>,
    closed: Arc<AtomicBool>,
}

impl Loopback {
    /// A connected pair: the host's transport and the peer that answers it.
    pub fn pair() -> (Loopback, Peer) {
        let (to_peer, from_host) = mpsc::unbounded_channel();
        let (to_host, from_peer) = mpsc::unbounded_channel();
        let closed = Arc::new(AtomicBool::new(false));
        let host = Loopback {
            to_peer,
            from_peer: Mutex::new(from_peer),
            closed: closed.clone(),
            ended: AtomicBool::new(false),
            max_frame: DEFAULT_MAX_FRAME,
            frame_overhead: 0,
            piece_len: 1,
        };
        (host, Peer { to_host, from_host: Arc::new(Mutex::new(from_host)), closed })
    }

    /// A loopback whose peer answers with `responder`, served by a spawned task that ends when
    /// the loopback is dropped. Must be called inside a tokio runtime.
    pub fn serving(responder: impl Fn(&Frame) -> Vec<Reply> + Send + Sync + 'static) -> Loopback {
        Loopback::serving_with(Arc::new(responder))
    }

    fn serving_with(responder: Responder) -> Loopback {
        let (host, peer) = Loopback::pair();
        tokio::spawn(peer.serve(responder));
        host
    }

    /// Sets [`Transport::max_frame`]; [`send`](Transport::send) refuses larger frames.
    pub fn with_max_frame(mut self, max_frame: usize) -> Self {
        self.max_frame = max_frame;
        self
    }

    /// Sets [`Transport::frame_overhead`] (0 unless set).
    pub fn with_frame_overhead(mut self, frame_overhead: usize) -> Self {
        self.frame_overhead = frame_overhead;
        self
    }

    /// Sets [`Transport::piece_len`] (1 unless set).
    pub fn with_piece_len(mut self, piece_len: usize) -> Self {
        self.piece_len = piece_len;
        self
    }

    fn gone(&self) -> Error {
        Error::link_lost("loopback closed")
    }
}

#[async_trait]
impl Transport for Loopback {
    async fn send(&self, frame: &[u8]) -> Result<()> {
        if frame.len() > self.max_frame {
            return Err(Error::FrameTooLarge { size: frame.len(), limit: self.max_frame });
        }
        if self.closed.load(Ordering::SeqCst) {
            return Err(self.gone());
        }
        self.to_peer.send(frame.to_vec()).map_err(|_| self.gone())
    }

    async fn recv(&self) -> Result<Vec<u8>> {
        if self.ended.load(Ordering::SeqCst) {
            return Err(self.gone());
        }
        match self.from_peer.lock().await.recv().await {
            Some(Msg::Frame(bytes)) => Ok(bytes),
            Some(Msg::Close) | None => {
                self.ended.store(true, Ordering::SeqCst);
                Err(self.gone())
            }
        }
    }

    fn max_frame(&self) -> usize {
        self.max_frame
    }

    fn frame_overhead(&self) -> usize {
        self.frame_overhead
    }

    fn piece_len(&self) -> usize {
        self.piece_len
    }

    fn describe(&self) -> String {
        "loopback".into()
    }
}

impl Peer {
    /// The next frame the host sent, as sent; `None` once the host dropped its side.
    pub async fn recv(&self) -> Option<Vec<u8>> {
        self.from_host.lock().await.recv().await
    }

    /// The next frame the host sent, decoded. a link-lost error ([`Error::is_link_lost`]) once the host dropped its
    /// side; the decoder's error for bytes that are not a frame.
    pub async fn recv_frame(&self) -> Result<Frame> {
        let bytes = self.recv().await.ok_or_else(|| Error::link_lost("loopback host gone"))?;
        Frame::decode(&bytes)
    }

    /// Sends `bytes` to the host as one frame. a link-lost error ([`Error::is_link_lost`]) after
    /// [`close`](Self::close) or once the host dropped its side.
    pub fn send(&self, bytes: impl Into<Vec<u8>>) -> Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::link_lost("loopback closed"));
        }
        self.to_host.send(Msg::Frame(bytes.into())).map_err(|_| Error::link_lost("loopback host gone"))
    }

    /// Drops the link: the host reads what was sent before, then
    /// a link-lost error ([`Error::is_link_lost`]); its sends fail from now on, and so do this peer's.
    pub fn close(&self) {
        if !self.closed.swap(true, Ordering::SeqCst) {
            let _ = self.to_host.send(Msg::Close);
        }
    }

    /// Answers every request with `responder` until the host drops its side. Undecodable
    /// requests are skipped. Spawn it, or use [`Loopback::serving`].
    pub async fn serve(self, responder: Responder) {
        while let Some(bytes) = self.recv().await {
            let Ok(req) = Frame::decode(&bytes) else {
                tracing::warn!("loopback peer: skipping a request that is not a frame");
                continue;
            };
            let start = tokio::time::Instant::now();
            let (now, mut later): (Vec<Reply>, Vec<Reply>) =
                responder(&req).into_iter().partition(|r| r.delay.is_zero());
            for reply in now {
                self.act(reply.action);
            }
            if !later.is_empty() {
                later.sort_by_key(|r| r.delay);
                let peer = self.clone();
                tokio::spawn(async move {
                    for reply in later {
                        tokio::time::sleep_until(start + reply.delay).await;
                        peer.act(reply.action);
                    }
                });
            }
        }
    }

    fn act(&self, action: Action) {
        match action {
            // The host may be gone or the link closed: a real medium drops the frame too.
            Action::Send(bytes) => {
                let _ = self.send(bytes);
            }
            Action::Close => self.close(),
        }
    }
}

/// A [`Connector`] whose every connect opens a fresh [`Loopback`] served by the same responder
/// (keep device state in the responder and it survives reconnects).
///
/// Cheap to clone; clones share the responder, the settings and the count of connects, so a
/// test can keep one while a [`Session`](crate::session::Session) owns another.
#[derive(Clone)]
pub struct LoopbackConnector {
    responder: Responder,
    connects: Arc<AtomicU32>,
    max_frame: usize,
    frame_overhead: usize,
    piece_len: usize,
}

impl LoopbackConnector {
    /// Connects to a peer answering with `responder`.
    pub fn new(responder: impl Fn(&Frame) -> Vec<Reply> + Send + Sync + 'static) -> Self {
        LoopbackConnector {
            responder: Arc::new(responder),
            connects: Arc::new(AtomicU32::new(0)),
            max_frame: DEFAULT_MAX_FRAME,
            frame_overhead: 0,
            piece_len: 1,
        }
    }

    /// [`Loopback::with_max_frame`] for every link opened.
    pub fn with_max_frame(mut self, max_frame: usize) -> Self {
        self.max_frame = max_frame;
        self
    }

    /// [`Loopback::with_frame_overhead`] for every link opened.
    pub fn with_frame_overhead(mut self, frame_overhead: usize) -> Self {
        self.frame_overhead = frame_overhead;
        self
    }

    /// [`Loopback::with_piece_len`] for every link opened.
    pub fn with_piece_len(mut self, piece_len: usize) -> Self {
        self.piece_len = piece_len;
        self
    }

    /// Links opened so far, by this connector and its clones.
    pub fn connects(&self) -> u32 {
        self.connects.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Connector for LoopbackConnector {
    async fn connect(&self) -> Result<Arc<dyn Transport>> {
        self.connects.fetch_add(1, Ordering::SeqCst);
        let link = Loopback::serving_with(self.responder.clone())
            .with_max_frame(self.max_frame)
            .with_frame_overhead(self.frame_overhead)
            .with_piece_len(self.piece_len);
        Ok(Arc::new(link))
    }
}

/// `len` bytes of reproducible noise from `seed` (xorshift32): test data that is recognisable
/// yet compresses badly and has no long runs, for uploads and file transfers in tests and
/// benches.
pub fn noise(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}
