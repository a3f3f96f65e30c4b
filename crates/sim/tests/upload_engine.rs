//! The pipelined upload engine against the virtual device over real UDP sockets: clean links,
//! lossy links (drop, duplicate, reorder), a device that resets mid-upload, and the device's
//! offset always the truth.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use smpflash_core::command::image::ImageStateRead;
use smpflash_core::mcuboot::{Image, ImageVersion};
use smpflash_core::progress::Event;
use smpflash_core::session::Session;
use smpflash_core::upload::{self, Limits, UploadOptions};
use smpflash_sim::faults::{DeviceFaults, LinkFaults};
use smpflash_sim::front::udp::{self, UdpOptions, UdpServer};
use smpflash_sim::image::slot;
use smpflash_sim::{Device, DeviceOptions, Profile};
use smpflash_udp::UdpConnector;

/// A 1 MiB hash-only MCUboot image with a pseudo-random body.
fn big_image() -> Vec<u8> {
    let mut x = 0x1234_5678u32;
    let body: Vec<u8> = (0..(1 << 20) - 64)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    slot::build(ImageVersion { major: 2, minor: 0, revision: 0, build_num: 0 }, &body)
}

async fn serve(profile: Profile, device_faults: DeviceFaults, link: LinkFaults) -> (Arc<Device>, UdpServer) {
    let device =
        Device::new(profile, DeviceOptions { time_scale: 0.0, faults: device_faults, ..Default::default() })
            .unwrap();
    let server = udp::serve(
        device.clone(),
        "127.0.0.1:0".parse().unwrap(),
        UdpOptions { faults: link, ..Default::default() },
    )
    .await
    .unwrap();
    (device, server)
}

fn roomy(name: &str) -> Profile {
    let mut p = Profile::by_name(name).unwrap();
    p.apply_override("slot_size=0x120000").unwrap();
    p
}

async fn run(
    server: &UdpServer,
    image: &[u8],
    opts: UploadOptions,
) -> (upload::UploadReport, Vec<Event>, Session) {
    let connector = UdpConnector::new(server.local_addr().to_string());
    let mut session = Session::open(Box::new(connector), Duration::from_millis(300)).await.unwrap();
    let limits = Limits::query(session.client()).await.unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let progress = move |e: &Event| sink.lock().unwrap().push(e.clone());
    let report = upload::upload(&mut session, image, &limits, &opts, &progress).await.unwrap();
    let events = events.lock().unwrap().clone();
    (report, events, session)
}

async fn assert_in_secondary(session: &Session, image: &[u8]) {
    let want = Image::parse(image.to_vec()).unwrap().hash().to_vec();
    let state = session.client().request(&ImageStateRead {}).await.unwrap();
    let slot1 = state.images.iter().find(|s| s.slot == 1).expect("secondary slot holds an image");
    assert_eq!(slot1.hash.as_ref().map(|h| h.to_vec()), Some(want));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_mebibyte_at_window_one_and_pipelined() {
    let image = big_image();
    for window in [Some(1), None] {
        let (_device, server) = serve(roomy("nrf5340"), Default::default(), Default::default()).await;
        let opts = UploadOptions { window, ..Default::default() };
        let (report, events, session) = run(&server, &image, opts).await;
        assert_eq!(report.bytes, image.len() as u64);
        assert_eq!(report.matched, Some(true));
        assert_eq!(report.retransmits, 0, "{report:?}");
        // UDP on a 1500-byte path carries 1472-byte frames, less than the device's 2475
        assert!(report.chunk > 1400 && report.chunk < 1472, "{report:?}");
        assert_eq!(report.window, window.unwrap_or(3), "buf_count 4 leaves 3 in flight: {report:?}");
        assert!(matches!(events.first(), Some(Event::UploadStarted { resumed_at: 0, .. })));
        assert!(matches!(events.last(), Some(Event::UploadFinished { .. })));
        assert_in_secondary(&session, &image).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lossy_duplicating_reordering_link_still_delivers_the_exact_image() {
    let image = big_image()[..].to_vec();
    let image = &image[..];
    let faults = LinkFaults { drop: 0.05, duplicate: 0.05, reorder: 0.05, seed: 7 };
    let (device, server) = serve(roomy("nrf5340"), Default::default(), faults).await;
    let (report, _, _) = run(
        &server,
        image,
        UploadOptions { timeout: Duration::from_millis(200), max_attempts: 20, ..Default::default() },
    )
    .await;
    assert_eq!(report.matched, Some(true));
    assert!(report.retransmits > 0, "5 % loss must cost retransmits: {report:?}");
    // check the bytes in flash themselves, not only the device's word
    let flash = device.snapshot().await.flash;
    assert_eq!(&flash.slot(1)[..image.len()], image);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_reset_mid_upload_restarts_and_completes() {
    let image = big_image();
    let faults = DeviceFaults { reset_after_upload_bytes: Some(300_000), ..Default::default() };
    let (_device, server) = serve(roomy("zephyr-default"), faults, Default::default()).await;
    let (report, events, session) =
        run(&server, &image, UploadOptions { timeout: Duration::from_millis(300), ..Default::default() })
            .await;
    assert_eq!(report.matched, Some(true));
    assert!(events.iter().any(|e| matches!(e, Event::Restarted { .. })), "the device lost its upload state");
    assert_in_secondary(&session, &image).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_devices_get_small_exact_chunks() {
    let image = big_image()[..200_000].to_vec();
    // Not a valid image any more, but the device only checks the header magic on upload.
    let (_device, server) =
        serve(Profile::by_name("zephyr-default").unwrap(), Default::default(), Default::default()).await;
    let (report, _, _) = run(&server, &image, UploadOptions { align: 8, ..Default::default() }).await;
    assert_eq!(report.matched, Some(true));
    assert!(report.chunk <= 384 - 8 && report.chunk % 8 == 0, "{report:?}");
}
