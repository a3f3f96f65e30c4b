//! File transfers over the loopback against a device that garbles requests arriving back to
//! back (as the native_sim `serial` fixture's emulated UART does with bursts: the device ends
//! with a file other than the one it acknowledged). The device's hash catches it, and the
//! transfer goes once more one request at a time. Time is paused: latencies run in virtual time.
//!
//! The virtual device cannot garble its own flash, so this device is a small fs server here;
//! the clean transfers against the virtual device over UDP are `crates/sim/tests/fs_transfer.rs`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_bytes::ByteBuf;
use smpflash_core::cbor;
use smpflash_core::command::fs::{
    FileClose, FileDownload, FileDownloadResponse, FileHash, FileHashResponse, FileUpload,
    FileUploadResponse, HashType, SupportedHashes, SupportedHashesResponse,
};
use smpflash_core::command::Command;
use smpflash_core::frame::Frame;
use smpflash_core::fs::{self, HashKind};
use smpflash_core::loopback::{noise, LoopbackConnector, Reply};
use smpflash_core::progress::Event;
use smpflash_core::session::Session;
use smpflash_core::upload::{Limits, UploadOptions};
use smpflash_core::Error;
use tokio::time::Instant;

/// Each answer comes this long after its request; a request that arrives sooner after the one
/// before came back to back.
const LATENCY: Duration = Duration::from_millis(10);

/// 1024-byte buffers, 4 of them: 3 requests in flight.
const LIMITS: Limits = Limits { buf_size: 1024, buf_count: 4, reported: true };

/// The device's download chunk.
const CHUNK: usize = 500;

#[derive(Default)]
struct Device {
    file: Vec<u8>,
    last: Option<Instant>,
    /// Transfers still to garble: 1 garbles the first transfer's bursts, `u32::MAX` all.
    garble: u32,
    /// Whether the current transfer garbled anything (counted when it ends).
    garbled: bool,
    /// A byte of the file that always reads back as 0xff (a worn-out flash cell).
    stuck_byte: Option<usize>,
    /// Close commands received.
    closes: u32,
}

impl Device {
    fn end_transfer(&mut self) {
        if self.garbled {
            self.garble = self.garble.saturating_sub(1);
            self.garbled = false;
        }
    }

    fn answer(&mut self, req: &Frame) -> Reply {
        let now = Instant::now();
        let burst = self.garble > 0 && self.last.is_some_and(|t| now.duration_since(t) < LATENCY);
        self.last = Some(now);
        let (group, id, op) = (req.header.group, req.header.id, req.header.op);
        let reply = if (group, id, op) == (FileUpload::GROUP, FileUpload::ID, FileUpload::OP) {
            let r: FileUpload = cbor::from_slice(&req.body, "upload").unwrap();
            if r.off == 0 {
                self.end_transfer();
                self.file.clear();
            }
            assert_eq!(r.off as usize, self.file.len(), "the engine sends in order on a lossless link");
            // A burst's bytes are taken, acknowledged, and stored wrong.
            let data = if burst { vec![0; r.data.len()] } else { r.data.to_vec() };
            self.garbled |= burst;
            self.file.extend_from_slice(&data);
            Reply::answer(req, &FileUploadResponse { off: self.file.len() as u64 })
        } else if (group, id, op) == (FileDownload::GROUP, FileDownload::ID, FileDownload::OP) {
            let r: FileDownload = cbor::from_slice(&req.body, "download").unwrap();
            if r.off == 0 {
                self.end_transfer();
            }
            let off = (r.off as usize).min(self.file.len());
            let end = (off + CHUNK).min(self.file.len());
            let data = if burst { vec![0; end - off] } else { self.file[off..end].to_vec() };
            self.garbled |= burst;
            let len = (r.off == 0).then_some(self.file.len() as u64);
            Reply::answer(req, &FileDownloadResponse { off: r.off, data: ByteBuf::from(data), len })
        } else if (group, id) == (FileHash::GROUP, FileHash::ID) {
            let mut stored = self.file.clone();
            if let Some(b) = self.stuck_byte.filter(|&b| b < stored.len()) {
                stored[b] = 0xff;
            }
            let output = HashKind::Sha256.of(&stored);
            let r =
                FileHashResponse { kind: "sha256".into(), off: None, len: self.file.len() as u64, output };
            Reply::answer(req, &r)
        } else if (group, id) == (FileClose::GROUP, FileClose::ID) {
            self.closes += 1;
            Reply::answer(req, &std::collections::BTreeMap::<String, u8>::new())
        } else if (group, id) == (SupportedHashes::GROUP, SupportedHashes::ID) {
            let types = [("sha256".to_string(), HashType { format: 1, size: 32 })].into();
            Reply::answer(req, &SupportedHashesResponse { types })
        } else {
            panic!("unexpected request {:?}", req.header)
        };
        reply.unwrap().after(LATENCY)
    }
}

struct Run {
    device: Arc<Mutex<Device>>,
    session: Session,
    events: Arc<Mutex<Vec<Event>>>,
}

async fn open(garble: u32) -> Run {
    let device = Arc::new(Mutex::new(Device { garble, ..Default::default() }));
    let d = device.clone();
    let connector = LoopbackConnector::new(move |req| vec![d.lock().unwrap().answer(req)]);
    let session = Session::open(Box::new(connector), Duration::from_secs(1)).await.unwrap();
    Run { device, session, events: Arc::default() }
}

fn opts(window: Option<usize>) -> UploadOptions {
    UploadOptions { window, timeout: Duration::from_millis(500), ..Default::default() }
}

impl Run {
    async fn upload(&mut self, data: &[u8], window: Option<usize>) -> Result<fs::FileReport, Error> {
        let sink = self.events.clone();
        let progress = move |e: &Event| sink.lock().unwrap().push(e.clone());
        fs::upload_file(&mut self.session, "/lfs1/f.bin", data, &LIMITS, &opts(window), &progress).await
    }

    async fn download(&mut self) -> Result<(Vec<u8>, fs::FileReport), Error> {
        let sink = self.events.clone();
        let progress = move |e: &Event| sink.lock().unwrap().push(e.clone());
        fs::download_file(&mut self.session, "/lfs1/f.bin", &LIMITS, &opts(None), &progress).await
    }

    fn restarts(&self) -> Vec<String> {
        let events = self.events.lock().unwrap();
        events
            .iter()
            .filter_map(|e| if let Event::Restarted { reason } = e { Some(reason.clone()) } else { None })
            .collect()
    }
}

#[tokio::test(start_paused = true)]
async fn a_garbled_upload_goes_again_one_request_at_a_time() {
    let data = noise(20_000, 1);
    let mut run = open(1).await;
    let report = run.upload(&data, None).await.unwrap();
    assert_eq!(run.device.lock().unwrap().file, data, "the device holds the file after the second try");
    assert_eq!(report.attempts, 2);
    assert_eq!(report.window, 1, "the second try keeps one request in flight");
    assert_eq!(
        run.device.lock().unwrap().closes,
        4,
        "each try closes the file before it starts and before it is checked"
    );
    assert!(report.verified.is_some());
    let restarts = run.restarts();
    assert_eq!(restarts.len(), 1, "{restarts:?}");
    assert!(
        restarts[0].contains("does not match") && restarts[0].contains("one request at a time"),
        "{restarts:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_clean_upload_goes_once_pipelined() {
    let data = noise(20_000, 2);
    let mut run = open(0).await;
    let report = run.upload(&data, None).await.unwrap();
    assert_eq!((report.attempts, report.window), (1, 3));
    assert!(run.restarts().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_second_mismatch_is_the_error_and_window_1_is_not_retried() {
    let data = noise(20_000, 3);
    // A device whose flash keeps one byte wrong whatever the pace: both tries mismatch.
    let mut run = open(0).await;
    run.device.lock().unwrap().stuck_byte = Some(7_000);
    let e = run.upload(&data, None).await.unwrap_err();
    assert!(matches!(&e, Error::FileMismatch { name, .. } if name == "/lfs1/f.bin"), "{e}");
    assert!(e.to_string().contains("transfer it again"), "{e}");
    assert_eq!(run.restarts().len(), 1, "one more try, not more");
    // Asked for one request at a time from the start, there is nothing slower to try.
    let mut run = open(0).await;
    run.device.lock().unwrap().stuck_byte = Some(7_000);
    assert!(matches!(run.upload(&data, Some(1)).await, Err(Error::FileMismatch { .. })));
    assert!(run.restarts().is_empty());
    // The decision itself.
    assert_eq!(fs::retry_options(&opts(Some(1))).map(|o| o.window), None);
    assert_eq!(fs::retry_options(&opts(Some(4))).map(|o| o.window), Some(Some(1)));
    assert_eq!(fs::retry_options(&opts(None)).map(|o| o.window), Some(Some(1)));
}

#[tokio::test(start_paused = true)]
async fn a_garbled_download_is_read_again_one_request_at_a_time() {
    let data = noise(20_000, 4);
    let mut run = open(0).await;
    run.upload(&data, None).await.unwrap();
    run.device.lock().unwrap().garble = 1;
    let (bytes, report) = run.download().await.unwrap();
    assert_eq!(bytes, data);
    assert_eq!((report.attempts, report.window), (2, 1));
    assert_eq!(run.restarts().len(), 1);
}
