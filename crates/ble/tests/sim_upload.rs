//! The upload engine over SMP-over-GATT and the simulated radio link to the virtual device:
//! pipelining through link-layer flow control, and resuming after the link drops.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use smpflash_ble::GattTransport;
use smpflash_core::command::image::ImageStateRead;
use smpflash_core::mcuboot::{Image, ImageVersion};
use smpflash_core::progress::Event;
use smpflash_core::session::{Connector, Session};
use smpflash_core::transport::Transport;
use smpflash_core::upload::{self, Limits, UploadOptions};
use smpflash_sim::front::ble::BleFrontEnd;
use smpflash_sim::front::ble_link::LinkParams;
use smpflash_sim::image::slot;
use smpflash_sim::{Device, DeviceOptions, Profile};

mod support;

struct SimConnector(BleFrontEnd);

#[async_trait]
impl Connector for SimConnector {
    async fn connect(&self) -> smpflash_core::Result<Arc<dyn Transport>> {
        Ok(Arc::new(GattTransport::new(self.0.connect(Duration::from_secs(5)).await?)))
    }
}

fn image(len: usize) -> Vec<u8> {
    let body: Vec<u8> = (0..len as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    slot::build(ImageVersion { major: 3, minor: 1, revision: 0, build_num: 0 }, &body)
}

async fn upload_over(
    params: LinkParams,
    bytes: &[u8],
    window: Option<usize>,
) -> (upload::UploadReport, Vec<Event>, Session) {
    let mut profile = Profile::by_name("nrf5340").unwrap();
    profile.apply_override("slot_size=0x120000").unwrap();
    let device = Device::new(profile, DeviceOptions { time_scale: 0.0, ..Default::default() }).unwrap();
    let front = BleFrontEnd::new(device, params);
    let mut session = Session::open(Box::new(SimConnector(front)), Duration::from_secs(5)).await.unwrap();
    let limits = Limits::query(session.client()).await.unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let progress = move |e: &Event| sink.lock().unwrap().push(e.clone());
    let opts = UploadOptions { window, ..Default::default() };
    let report = upload::upload(&mut session, bytes, &limits, &opts, &progress).await.unwrap();
    let events = events.lock().unwrap().clone();
    (report, events, session)
}

async fn secondary_hash(session: &Session) -> Vec<u8> {
    let state = session.client().request(&ImageStateRead {}).await.unwrap();
    state.images.iter().find(|s| s.slot == 1 && s.image == 0).unwrap().hash.clone().unwrap().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_upload_over_a_fast_phone_link() {
    let bytes = image(256 * 1024);
    let (report, _, session) =
        upload_over(LinkParams::phone_fast().with_time_scale(0.02), &bytes, None).await;
    assert_eq!(report.matched, Some(true));
    assert_eq!(report.window, 3);
    // BLE fragments, so the device's 2475-byte buffer is the limit
    assert!(report.chunk > 2400, "{report:?}");
    assert_eq!(secondary_hash(&session).await, Image::parse(bytes).unwrap().hash());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_links_are_reconnected_and_the_upload_resumes() {
    let bytes = image(200 * 1024);
    let mut params = LinkParams::phone_fast().with_time_scale(0.02);
    params.disconnect_after_bytes = Some(64 * 1024);
    let (report, events, session) = upload_over(params, &bytes, None).await;
    assert_eq!(report.matched, Some(true));
    assert!(report.reconnects >= 3, "every 64 KiB the link drops: {report:?}");
    assert!(events.iter().any(|e| matches!(e, Event::Reconnecting { .. })));
    // resuming with the same sha means nearly nothing is sent twice: at most a window's worth
    // per drop
    assert!(
        report.resent_bytes <= (report.window * report.chunk) as u64 * u64::from(report.reconnects),
        "{report:?}"
    );
    assert!(!events.iter().any(|e| matches!(e, Event::Restarted { .. })), "never restart from zero");
    assert_eq!(secondary_hash(&session).await, Image::parse(bytes).unwrap().hash());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_mebibyte_at_window_one_over_ble() {
    let bytes = image((1 << 20) - 64);
    let (report, _, session) =
        upload_over(LinkParams::phone_fast().with_time_scale(0.01), &bytes, Some(1)).await;
    assert_eq!(report.matched, Some(true));
    assert_eq!((report.window, report.retransmits), (1, 0));
    assert_eq!(secondary_hash(&session).await, Image::parse(bytes).unwrap().hash());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_link_loss_at_10_50_90_percent_resumes_with_little_resent() {
    let bytes = image(160 * 1024);
    for percent in [10u64, 50, 90] {
        let device = Device::new(
            Profile::by_name("nrf5340").unwrap(),
            DeviceOptions { time_scale: 0.0, ..Default::default() },
        )
        .unwrap();
        let front = BleFrontEnd::new(device, LinkParams::phone_fast().with_time_scale(0.02));
        front.drop_next_link_after(bytes.len() as u64 * percent / 100);
        let mut session = Session::open(Box::new(SimConnector(front)), Duration::from_secs(5)).await.unwrap();
        let limits = Limits::query(session.client()).await.unwrap();
        let report =
            upload::upload(&mut session, &bytes, &limits, &UploadOptions::default(), &()).await.unwrap();
        assert_eq!(report.matched, Some(true), "{percent} %");
        assert_eq!(report.reconnects, 1, "{percent} %: {report:?}");
        // what was in flight when the link dropped is sent again, plus the 32-byte header that
        // asks the device to resume; nothing more
        assert!(report.resent_bytes <= (report.window * report.chunk + 32) as u64, "{percent} %: {report:?}");
        assert_eq!(secondary_hash(&session).await, Image::parse(bytes.clone()).unwrap().hash());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_dfu_over_ble_with_reset_rescan_and_reconnect() {
    let device = Device::new(
        Profile::by_name("nrf5340").unwrap(),
        DeviceOptions { time_scale: 0.0, ..Default::default() },
    )
    .unwrap();
    let front = BleFrontEnd::new(device, LinkParams::phone_fast().with_time_scale(0.02));
    let mut session = Session::open(Box::new(SimConnector(front)), Duration::from_secs(5)).await.unwrap();
    support::dfu_example_package(&mut session).await;
}
