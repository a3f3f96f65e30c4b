//! The upload engine over the serial console framing and a real pty to the virtual device.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use smpflash_core::command::os::{Echo, McumgrParams};
use smpflash_core::mcuboot::{Image, ImageVersion};
use smpflash_core::progress::Event;
use smpflash_core::session::{Connector, Session};
use smpflash_core::transport::Transport;
use smpflash_core::upload::{self, Limits, UploadOptions};
use smpflash_serial::SerialTransport;
use smpflash_sim::front::pty::{self, PtyOptions, SerialFaults};
use smpflash_sim::image::slot;
use smpflash_sim::{Device, DeviceOptions, Profile};

struct Pty(String);

#[async_trait]
impl Connector for Pty {
    async fn connect(&self) -> smpflash_core::Result<Arc<dyn Transport>> {
        Ok(Arc::new(SerialTransport::open(&self.0, 1_000_000)?))
    }
}

fn image(len: usize) -> Vec<u8> {
    let body: Vec<u8> = (0..len as u32).map(|i| (i.wrapping_mul(40503) >> 7) as u8).collect();
    slot::build(ImageVersion { major: 4, minor: 0, revision: 0, build_num: 0 }, &body)
}

async fn run(
    faults: SerialFaults,
    bytes: &[u8],
    window: Option<usize>,
) -> (upload::UploadReport, Arc<Device>) {
    let mut profile = Profile::by_name("nrf5340").unwrap();
    profile.apply_override("slot_size=0x120000").unwrap();
    let device = Device::new(profile, DeviceOptions { time_scale: 0.0, ..Default::default() }).unwrap();
    let server = pty::serve(device.clone(), PtyOptions { faults, ..Default::default() }).await.unwrap();
    let mut session =
        Session::open(Box::new(Pty(server.path().to_string())), Duration::from_millis(500)).await.unwrap();
    assert_eq!(session.client().request(&Echo { d: "hi".into() }).await.unwrap().r, "hi");
    let p = session.client().request(&McumgrParams {}).await.unwrap();
    assert_eq!(p.buf_size, 2475);
    let limits = Limits::query(session.client()).await.unwrap();
    let events = Arc::new(Mutex::new(0u64));
    let sink = events.clone();
    let progress = move |e: &Event| {
        if let Event::Progress { .. } = e {
            *sink.lock().unwrap() += 1;
        }
    };
    let opts = UploadOptions {
        window,
        timeout: Duration::from_millis(150),
        first_timeout: Duration::from_secs(2),
        max_attempts: 50,
        ..Default::default()
    };
    let report = upload::upload(&mut session, bytes, &limits, &opts, &progress).await.unwrap();
    assert!(*events.lock().unwrap() > 0);
    drop(server);
    (report, device)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_mebibyte_at_window_one_over_a_pty() {
    let bytes = image((1 << 20) - 64);
    let (report, device) = run(SerialFaults::default(), &bytes, Some(1)).await;
    assert_eq!(report.matched, Some(true));
    assert_eq!((report.window, report.retransmits), (1, 0));
    // the device's 2475-byte buffer holds the frame plus length and CRC: 2471-byte frames
    assert!(report.chunk > 2400 && report.chunk < 2471, "{report:?}");
    assert_eq!(&device.snapshot().await.flash.slot(1)[..bytes.len()], &bytes[..]);
    assert_eq!(
        slot::read_info(device.snapshot().await.flash.slot(1)).unwrap().hash[..],
        Image::parse(bytes).unwrap().hash()[..]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_serial_bytes_cost_retransmits_not_correctness() {
    let bytes = image(48 * 1024);
    let faults = SerialFaults { corrupt_byte_rate: 0.0005, seed: 3, ..Default::default() };
    let (report, device) = run(faults, &bytes, None).await;
    assert_eq!(report.matched, Some(true));
    assert!(report.retransmits > 0, "{report:?}");
    assert_eq!(&device.snapshot().await.flash.slot(1)[..bytes.len()], &bytes[..]);
}
