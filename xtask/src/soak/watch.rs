//! A transport wrapper that watches what the client sends: it counts upload data on the wire
//! (to check the engine's re-sent byte count against) and, at the moment a mark or confirm
//! request leaves, checks that the slot it names holds an image whose contents hash-verify.
//!
//! Checking at send time rather than after the run is what makes "no unverified image is ever
//! marked" testable: after the run, MCUboot has already erased an invalid marked image or swapped
//! a valid one in, and both look like an ordinary ending.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use smpflash_core::command::image::{ImageStateWrite, ImageUpload};
use smpflash_core::command::Command;
use smpflash_core::frame::Frame;
use smpflash_core::session::Connector;
use smpflash_core::transport::Transport;
use smpflash_core::{cbor, Result};
use smpflash_sim::image::slot;
use smpflash_sim::Device;

/// What the watcher saw over all the links of one run.
pub struct Watch {
    device: Arc<Device>,
    expected: Vec<u8>,
    upload_data: AtomicU64,
    marks: AtomicU64,
    problems: Mutex<Vec<String>>,
}

impl Watch {
    /// Watches a run against `device` that should mark only the image with hash `expected`.
    pub fn new(device: Arc<Device>, expected: Vec<u8>) -> Arc<Self> {
        Arc::new(Watch {
            device,
            expected,
            upload_data: AtomicU64::new(0),
            marks: AtomicU64::new(0),
            problems: Mutex::new(Vec::new()),
        })
    }

    /// Upload data bytes the client handed to its links, re-sent ones included.
    pub fn upload_data(&self) -> u64 {
        self.upload_data.load(Ordering::SeqCst)
    }

    /// Mark and confirm requests sent.
    pub fn marks(&self) -> u64 {
        self.marks.load(Ordering::SeqCst)
    }

    /// Violations seen so far.
    pub fn problems(&self) -> Vec<String> {
        self.problems.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Records a violation found elsewhere in the run.
    pub fn problem(&self, what: String) {
        self.problems.lock().unwrap_or_else(|e| e.into_inner()).push(what);
    }

    async fn saw(&self, bytes: &[u8]) {
        let Ok(frame) = Frame::decode(bytes) else {
            return;
        };
        let h = frame.header;
        if (h.group, h.id, h.op) == (ImageUpload::GROUP, ImageUpload::ID, ImageUpload::OP) {
            if let Ok(req) = cbor::from_slice::<ImageUpload>(&frame.body, "upload") {
                self.upload_data.fetch_add(req.data.len() as u64, Ordering::SeqCst);
            }
        } else if (h.group, h.id, h.op) == (ImageStateWrite::GROUP, ImageStateWrite::ID, ImageStateWrite::OP)
        {
            self.marks.fetch_add(1, Ordering::SeqCst);
            match cbor::from_slice::<ImageStateWrite>(&frame.body, "state write") {
                Ok(req) => {
                    if let Some(why) = self.unverified(&req).await {
                        self.problem(why);
                    }
                }
                Err(e) => self.problem(format!("the client sent an undecodable state write: {e}")),
            }
        }
    }

    /// Why marking `req` would schedule or confirm an image that does not verify, if it would.
    pub async fn unverified(&self, req: &ImageStateWrite) -> Option<String> {
        let state = self.device.snapshot().await;
        let profile = self.device.profile();
        let verb = if req.confirm { "confirm" } else { "test" };
        let slots: Vec<usize> = match &req.hash {
            // Without a hash the running image of image 0 is confirmed.
            None => vec![state.boot.active.first().copied().unwrap_or(0)],
            Some(h) => {
                if h[..] != self.expected[..] {
                    return Some(format!("the client asked to {verb} {}, not the image it uploaded", hex(h)));
                }
                (0..state.flash.slot_count())
                    .filter(|&s| slot::read_info(state.flash.slot(s)).is_some_and(|i| i.hash[..] == h[..]))
                    .collect()
            }
        };
        for slot in slots {
            if let Err(why) = slot::validate(state.flash.slot(slot), profile.max_image_size(slot / 2)) {
                return Some(format!(
                    "the client asked to {verb} the image in flash slot {slot}, which does not verify: {why}"
                ));
            }
        }
        None
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A link whose outgoing frames pass the [`Watch`] first.
struct Watched {
    inner: Arc<dyn Transport>,
    watch: Arc<Watch>,
}

#[async_trait]
impl Transport for Watched {
    async fn send(&self, frame: &[u8]) -> Result<()> {
        self.watch.saw(frame).await;
        self.inner.send(frame).await
    }

    async fn recv(&self) -> Result<Vec<u8>> {
        self.inner.recv().await
    }

    fn max_frame(&self) -> usize {
        self.inner.max_frame()
    }

    fn frame_overhead(&self) -> usize {
        self.inner.frame_overhead()
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// Opens links through another connector and watches each.
pub struct WatchedConnector {
    /// The real connector.
    pub inner: Box<dyn Connector>,
    /// The watcher every link reports to.
    pub watch: Arc<Watch>,
}

#[async_trait]
impl Connector for WatchedConnector {
    async fn connect(&self) -> Result<Arc<dyn Transport>> {
        let inner = self.inner.connect().await?;
        Ok(Arc::new(Watched { inner, watch: self.watch.clone() }))
    }
}

#[cfg(test)]
mod tests {
    use smpflash_core::command::encode_request;
    use smpflash_core::frame::Version;
    use smpflash_core::mcuboot::ImageVersion;
    use smpflash_sim::{DeviceOptions, Profile};

    use super::*;

    /// Uploads `bytes` to the device's secondary slot as a client would, without `sha`, so the
    /// device keeps whatever arrives.
    async fn upload(device: &Device, bytes: &[u8]) {
        for (i, part) in bytes.chunks(256).enumerate() {
            let off = (i * 256) as u64;
            let req = ImageUpload {
                len: (off == 0).then_some(bytes.len() as u64),
                off,
                data: part.to_vec().into(),
                ..Default::default()
            };
            let frame = encode_request(&req, Version::V2, i as u8).unwrap().encode();
            assert!(!device
                .handle(&smpflash_sim::referee::Client::Direct, &frame)
                .await
                .responses
                .is_empty());
        }
    }

    #[tokio::test]
    async fn marking_an_image_whose_contents_do_not_verify_is_caught() {
        let image = slot::build(ImageVersion { major: 2, ..Default::default() }, &[0x3C; 5000]);
        let hash = slot::read_info(&image).unwrap().hash.to_vec();
        let mark = ImageStateWrite { hash: Some(hash.clone().into()), confirm: false };
        for corrupt in [false, true] {
            let device = Device::new(
                Profile::by_name("zephyr-default").unwrap(),
                DeviceOptions { time_scale: 0.0, ..Default::default() },
            )
            .unwrap();
            let mut bytes = image.clone();
            if corrupt {
                // One body byte wrong: header and hash TLV intact, so the device lists the
                // image under the expected hash all the same.
                bytes[1000] ^= 0x10;
            }
            upload(&device, &bytes).await;
            let watch = Watch::new(device, hash.clone());
            let verdict = watch.unverified(&mark).await;
            assert_eq!(verdict.is_some(), corrupt, "{verdict:?}");
            if let Some(why) = verdict {
                assert!(why.contains("does not verify"), "{why}");
            }
        }
        // Marking something other than what was uploaded is caught too.
        let device =
            Device::new(Profile::by_name("zephyr-default").unwrap(), DeviceOptions::default()).unwrap();
        let watch = Watch::new(device, vec![0; 32]);
        assert!(watch.unverified(&mark).await.unwrap().contains("not the image it uploaded"));
    }
}
