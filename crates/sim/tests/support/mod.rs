//! What the UDP device tests share: a device served on a real socket with a client on it, a
//! stop-and-wait upload, a reset that waits for the boot, and the image fixtures.
//!
//! Each test binary uses its own subset.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};
use smpflash_core::client::Client;
use smpflash_core::command::image::{ImageStateRead, ImageUpload, ImageUploadResponse, SlotState};
use smpflash_core::command::os::Reset;
use smpflash_core::mcuboot::Image;
use smpflash_core::Error;
use smpflash_sim::device::DeviceEvent;
use smpflash_sim::front::udp::{self, UdpOptions, UdpServer};
use smpflash_sim::{Device, DeviceOptions, Profile};
use smpflash_udp::UdpTransport;

/// A virtual device on a loopback UDP socket and a client talking to it.
pub struct Rig {
    pub device: Arc<Device>,
    pub _server: UdpServer,
    pub client: Client,
}

impl Rig {
    /// Serves a device with `profile` and `options`, and connects a client with a 2 s timeout.
    pub async fn start(profile: Profile, options: DeviceOptions) -> Rig {
        let device = Device::new(profile, options).unwrap();
        let server =
            udp::serve(device.clone(), "127.0.0.1:0".parse().unwrap(), UdpOptions::default()).await.unwrap();
        let client = connect(server.local_addr()).await;
        Rig { device, _server: server, client }
    }
}

/// A client on the device at `addr`, with a 2 s timeout.
pub async fn connect(addr: SocketAddr) -> Client {
    Client::new(Arc::new(UdpTransport::connect_addr(addr).await.unwrap()))
        .with_timeout(Duration::from_secs(2))
}

/// Resets the device and waits until it has booted again.
pub async fn reset(rig: &Rig) {
    let mut events = rig.device.subscribe();
    rig.client.request(&Reset::default()).await.unwrap();
    loop {
        if let DeviceEvent::Booted(_) = events.recv().await.unwrap() {
            break;
        }
    }
}

/// Instant flash: these tests are about rules, not timing.
pub fn instant() -> DeviceOptions {
    DeviceOptions { time_scale: 0.0, ..Default::default() }
}

/// The repository's `tests/fixtures` directory.
pub fn fixtures() -> String {
    format!("{}/../../tests/fixtures", env!("CARGO_MANIFEST_DIR"))
}

/// An imgtool-made image from `tests/fixtures/images`.
pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/images/{name}", fixtures())).unwrap()
}

/// A plain stop-and-wait upload in 256-byte chunks (the pipelined engine lives in
/// smpflash-core's upload module; this one only has to be obviously right).
pub async fn upload(c: &Client, image: u32, bytes: &[u8]) -> Result<ImageUploadResponse, Error> {
    let sha = ByteBuf::from(Sha256::digest(bytes).to_vec());
    let mut off = 0usize;
    loop {
        let chunk = 256.min(bytes.len() - off);
        let first = off == 0;
        let req = ImageUpload {
            image: first.then_some(image),
            len: first.then_some(bytes.len() as u64),
            off: off as u64,
            sha: first.then(|| sha.clone()),
            data: ByteBuf::from(bytes[off..off + chunk].to_vec()),
            upgrade: None,
        };
        let r = c.request(&req).await?;
        off = r.off as usize;
        if off >= bytes.len() {
            return Ok(r);
        }
    }
}

/// The device's image state list.
pub async fn state(c: &Client) -> Vec<SlotState> {
    c.request(&ImageStateRead {}).await.unwrap().images
}

/// The image's SHA-256 TLV, as the device reports it.
pub fn hash_of(bytes: &[u8]) -> ByteBuf {
    ByteBuf::from(Image::parse(bytes.to_vec()).unwrap().hash().to_vec())
}
