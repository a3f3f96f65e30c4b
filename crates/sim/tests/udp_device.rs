//! The virtual device over a real UDP socket, driven by smpflash's own request layer: every
//! command, Zephyr's upload and state rules, and every MCUboot boot outcome.

use std::sync::Arc;
use std::time::Duration;

use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};
use smpflash_core::client::Client;
use smpflash_core::command::image::*;
use smpflash_core::command::os::*;
use smpflash_core::frame::Version;
use smpflash_core::{DeviceError, Error};
use smpflash_sim::faults::DeviceFaults;
use smpflash_sim::front::udp::{self, UdpOptions};
use smpflash_sim::{Device, DeviceOptions, Profile};
use smpflash_udp::UdpTransport;

mod support;
use support::{connect, fixture, hash_of, instant, reset, state, upload, Rig};

async fn rig(profile: &str) -> Rig {
    Rig::start(Profile::by_name(profile).unwrap(), instant()).await
}

/// The device's error, or a panic naming what came instead.
fn device_error<T: std::fmt::Debug>(r: Result<T, Error>) -> DeviceError {
    match r {
        Err(Error::Device(d)) => d,
        other => panic!("expected a device error, got {other:?}"),
    }
}

fn slot(images: &[SlotState], image: u32, slot: u32) -> Option<&SlotState> {
    images.iter().find(|s| s.image == image && s.slot == slot)
}

#[tokio::test]
async fn os_group_commands() {
    let r = rig("nrf5340").await;
    let c = &r.client;
    assert_eq!(c.request(&Echo { d: "hello".into() }).await.unwrap().r, "hello");
    let p = c.request(&McumgrParams {}).await.unwrap();
    assert_eq!((p.buf_size, p.buf_count), (2475, 4));
    assert_eq!(c.request(&BootloaderInfo {}).await.unwrap().bootloader, "MCUboot");
    let m = c.request(&BootloaderMode::default()).await.unwrap();
    assert_eq!((m.mode(), m.no_downgrade), (McubootMode::SwapWithoutScratch, false));
    let info = c.request(&AppInfo { format: Some("sv".into()) }).await.unwrap();
    assert!(info.output.starts_with("Zephyr v3"), "{}", info.output);
    let e = device_error(c.request(&AppInfo { format: Some("q".into()) }).await);
    assert_eq!(e.name(), Some("OS_MGMT_ERR_INVALID_FORMAT"));
}

#[tokio::test]
async fn factory_state_and_slot_info() {
    let r = rig("nrf5340").await;
    let images = state(&r.client).await;
    assert_eq!(images.len(), 2, "{images:?}");
    for (i, s) in images.iter().enumerate() {
        assert_eq!((s.image, s.slot), (i as u32, 0));
        assert!(s.active && s.confirmed && s.bootable && !s.pending && !s.permanent);
        assert_eq!(s.hash.as_ref().unwrap().len(), 32);
    }
    let info = r.client.request(&SlotInfo {}).await.unwrap();
    assert_eq!(info.images.len(), 2);
    assert_eq!(info.images[0].slots[1].size, 0xF_0000);
    assert_eq!(info.images[1].max_image_size, Some(0x4_0000 - 4096));
}

#[tokio::test]
async fn test_then_revert_when_not_confirmed() {
    let r = rig("zephyr-default").await;
    let new = fixture("ecdsa-p256.bin");
    let hash = hash_of(&new);
    let up = upload(&r.client, 0, &new).await.unwrap();
    assert_eq!((up.off, up.matched), (new.len() as u64, Some(true)));
    let s = state(&r.client).await;
    let secondary = slot(&s, 0, 1).unwrap();
    assert_eq!(secondary.hash.as_deref(), Some(&hash[..]));
    assert_eq!(secondary.version, "1.2.3.4");
    assert!(!secondary.pending && !secondary.active);

    let s =
        r.client.request(&ImageStateWrite { hash: Some(hash.clone()), confirm: false }).await.unwrap().images;
    let secondary = slot(&s, 0, 1).unwrap();
    assert!(secondary.pending && !secondary.permanent);

    reset(&r).await;
    let s = state(&r.client).await;
    let running = slot(&s, 0, 0).unwrap();
    assert_eq!(running.hash.as_deref(), Some(&hash[..]));
    assert!(running.active && !running.confirmed, "{s:?}");
    let old = slot(&s, 0, 1).unwrap();
    assert!(old.confirmed && !old.active, "the old image is what a revert goes back to: {s:?}");

    reset(&r).await;
    let s = state(&r.client).await;
    let running = slot(&s, 0, 0).unwrap();
    assert_ne!(running.hash.as_deref(), Some(&hash[..]), "unconfirmed test image must revert");
    assert!(running.active && running.confirmed);
    assert_eq!(slot(&s, 0, 1).unwrap().hash.as_deref(), Some(&hash[..]));
    assert!(!slot(&s, 0, 1).unwrap().pending);
}

#[tokio::test]
async fn test_then_confirm_stays() {
    let r = rig("zephyr-default").await;
    let new = fixture("ed25519.bin");
    let hash = hash_of(&new);
    upload(&r.client, 0, &new).await.unwrap();
    r.client.request(&ImageStateWrite { hash: Some(hash.clone()), confirm: false }).await.unwrap();
    reset(&r).await;
    // confirm the running image, without a hash, as an application does after self-test
    let s = r.client.request(&ImageStateWrite { hash: None, confirm: true }).await.unwrap().images;
    assert!(slot(&s, 0, 0).unwrap().confirmed);
    reset(&r).await;
    let s = state(&r.client).await;
    let running = slot(&s, 0, 0).unwrap();
    assert_eq!(running.hash.as_deref(), Some(&hash[..]));
    assert!(running.active && running.confirmed);
}

#[tokio::test]
async fn permanent_mark_needs_no_confirm() {
    let r = rig("zephyr-default").await;
    let new = fixture("hash-only.bin");
    let hash = hash_of(&new);
    upload(&r.client, 0, &new).await.unwrap();
    let s =
        r.client.request(&ImageStateWrite { hash: Some(hash.clone()), confirm: true }).await.unwrap().images;
    let secondary = slot(&s, 0, 1).unwrap();
    assert!(secondary.pending && secondary.permanent);
    reset(&r).await;
    reset(&r).await;
    let running = state(&r.client).await.into_iter().find(|s| s.slot == 0).unwrap();
    assert_eq!(running.hash.as_deref(), Some(&hash[..]));
    assert!(running.confirmed);
}

#[tokio::test]
async fn invalid_image_is_erased_at_boot_and_the_old_one_kept() {
    let r = rig("zephyr-default").await;
    let before = state(&r.client).await;
    let mut bad = fixture("hash-only.bin");
    bad[0x400] ^= 0xFF; // body byte: header magic intact, hash wrong
    upload(&r.client, 0, &bad).await.unwrap();
    let bad_hash = ByteBuf::from(bad[bad.len() - 32..].to_vec()); // SHA256 TLV is last here
    assert_eq!(slot(&state(&r.client).await, 0, 1).unwrap().hash.as_deref(), Some(&bad_hash[..]));
    r.client.request(&ImageStateWrite { hash: Some(bad_hash), confirm: false }).await.unwrap();
    reset(&r).await;
    let after = state(&r.client).await;
    assert_eq!(after.len(), 1, "secondary erased: {after:?}");
    assert_eq!(after[0].hash, before[0].hash);
    let log = r.device.snapshot().await.boot_log;
    assert!(log.iter().any(|e| e.what.contains("hash TLV does not match")), "{log:?}");
}

#[tokio::test]
async fn power_loss_mid_swap_resumes_to_a_bootable_image() {
    let profile = Profile::by_name("zephyr-default").unwrap();
    let faults = DeviceFaults { power_loss_after_swap_sectors: Some(1), ..Default::default() };
    let r = Rig::start(profile, DeviceOptions { time_scale: 0.0, faults, ..Default::default() }).await;
    let new = fixture("rsa-2048.bin");
    let hash = hash_of(&new);
    upload(&r.client, 0, &new).await.unwrap();
    r.client.request(&ImageStateWrite { hash: Some(hash.clone()), confirm: false }).await.unwrap();
    let mut events = r.device.subscribe();
    r.client.request(&Reset::default()).await.unwrap();
    let mut saw_power_loss = false;
    loop {
        match events.recv().await.unwrap() {
            smpflash_sim::device::DeviceEvent::PowerLost => saw_power_loss = true,
            smpflash_sim::device::DeviceEvent::Booted(log) => {
                assert!(log.iter().any(|e| e.what.starts_with("resuming interrupted")), "{log:?}");
                break;
            }
            _ => {}
        }
    }
    assert!(saw_power_loss);
    let s = state(&r.client).await;
    let running = slot(&s, 0, 0).unwrap();
    assert_eq!(running.hash.as_deref(), Some(&hash[..]));
    assert!(smpflash_sim::image::slot::validate(r.device.snapshot().await.flash.slot(0), 0x5F000).is_ok());
    assert!(smpflash_sim::image::slot::validate(r.device.snapshot().await.flash.slot(1), 0x5F000).is_ok());
}

#[tokio::test]
async fn upload_rules_follow_zephyr() {
    let r = rig("zephyr-default").await;
    let c = &r.client;
    let img = fixture("hash-only.bin");
    let chunk = |off: usize, n: usize| ByteBuf::from(img[off..off + n].to_vec());

    // first chunk without len
    let e = device_error(c.request(&ImageUpload { off: 0, data: chunk(0, 64), ..Default::default() }).await);
    assert_eq!(e.name(), Some("IMG_MGMT_ERR_INVALID_LENGTH"));
    // raw binary: no header magic
    let raw = fixture("raw.bin");
    let e = device_error(
        c.request(&ImageUpload {
            len: Some(raw.len() as u64),
            off: 0,
            data: ByteBuf::from(raw[..64].to_vec()),
            ..Default::default()
        })
        .await,
    );
    assert_eq!(e.to_string(), "device rejected the image: invalid header magic (image group rc 23, IMG_MGMT_ERR_INVALID_IMAGE_HEADER_MAGIC)");
    // wrong image number
    let first = ImageUpload {
        image: Some(3),
        len: Some(img.len() as u64),
        off: 0,
        data: chunk(0, 64),
        ..Default::default()
    };
    assert_eq!(device_error(c.request(&first).await).name(), Some("IMG_MGMT_ERR_NO_FREE_SLOT"));
    // too large
    let huge = ImageUpload { len: Some(0x10_0000), off: 0, data: chunk(0, 64), ..Default::default() };
    assert_eq!(device_error(c.request(&huge).await).name(), Some("IMG_MGMT_ERR_INVALID_IMAGE_TOO_LARGE"));
    // a good start, then a chunk at the wrong offset is answered with the expected offset
    let first =
        ImageUpload { len: Some(img.len() as u64), off: 0, data: chunk(0, 100), ..Default::default() };
    assert_eq!(c.request(&first).await.unwrap().off, 100);
    let wrong = ImageUpload { off: 300, data: chunk(300, 50), ..Default::default() };
    assert_eq!(c.request(&wrong).await.unwrap().off, 100);
    // overrun: more data than the declared length
    let short = ImageUpload { len: Some(200), off: 0, data: chunk(0, 100), ..Default::default() };
    assert_eq!(c.request(&short).await.unwrap().off, 100);
    let over = ImageUpload { off: 100, data: chunk(100, 150), ..Default::default() };
    assert_eq!(device_error(c.request(&over).await).name(), Some("IMG_MGMT_ERR_INVALID_IMAGE_DATA_OVERRUN"));
    // upgrade-only refuses an image not newer than the running 1.0.0
    let mut old = img.clone();
    old[20] = 0; // major 0
    let e = device_error(
        c.request(&ImageUpload {
            len: Some(img.len() as u64),
            off: 0,
            data: ByteBuf::from(old[..64].to_vec()),
            upgrade: Some(true),
            ..Default::default()
        })
        .await,
    );
    assert_eq!(e.name(), Some("IMG_MGMT_ERR_CURRENT_VERSION_IS_NEWER"));
}

#[tokio::test]
async fn an_interrupted_upload_resumes_with_the_same_sha() {
    let r = rig("zephyr-default").await;
    let img = fixture("ecdsa-p384.bin");
    let sha = ByteBuf::from(Sha256::digest(&img).to_vec());
    let first = |n: usize| ImageUpload {
        len: Some(img.len() as u64),
        off: 0,
        sha: Some(sha.clone()),
        data: ByteBuf::from(img[..n].to_vec()),
        ..Default::default()
    };
    assert_eq!(r.client.request(&first(200)).await.unwrap().off, 200);
    let next = ImageUpload { off: 200, data: ByteBuf::from(img[200..500].to_vec()), ..Default::default() };
    assert_eq!(r.client.request(&next).await.unwrap().off, 500);
    // the link dropped; a new client starts over with the same sha and is told to go on at 500
    let again = connect(r._server.local_addr()).await;
    assert_eq!(again.request(&first(200)).await.unwrap().off, 500);
    // a different sha starts a new upload
    let other = ImageUpload { sha: Some(ByteBuf::from(vec![1; 32])), ..first(200) };
    assert_eq!(again.request(&other).await.unwrap().off, 200);
}

#[tokio::test]
async fn state_write_rules_follow_zephyr() {
    let r = rig("zephyr-default").await;
    let c = &r.client;
    let running = state(c).await[0].hash.clone().unwrap();
    let e = device_error(
        c.request(&ImageStateWrite { hash: Some(ByteBuf::from(running.to_vec())), confirm: false }).await,
    );
    assert_eq!(e.name(), Some("IMG_MGMT_ERR_IMAGE_SETTING_TEST_TO_ACTIVE_DENIED"));
    let e = device_error(c.request(&ImageStateWrite { hash: None, confirm: false }).await);
    assert_eq!(e.name(), Some("IMG_MGMT_ERR_INVALID_HASH"));
    let e = device_error(
        c.request(&ImageStateWrite { hash: Some(ByteBuf::from(vec![7; 32])), confirm: false }).await,
    );
    assert_eq!(e.name(), Some("IMG_MGMT_ERR_HASH_NOT_FOUND"));

    let new = fixture("hash-only.bin");
    upload(c, 0, &new).await.unwrap();
    c.request(&ImageStateWrite { hash: Some(hash_of(&new)), confirm: false }).await.unwrap();
    // confirming the running image while a test is pending is refused (28)
    let e = device_error(c.request(&ImageStateWrite { hash: None, confirm: true }).await);
    assert_eq!(e.name(), Some("IMG_MGMT_ERR_IMAGE_ALREADY_PENDING"));
    // the pending slot cannot be uploaded over or erased
    let first = ImageUpload {
        len: Some(new.len() as u64),
        off: 0,
        data: ByteBuf::from(new[..64].to_vec()),
        ..Default::default()
    };
    assert_eq!(device_error(c.request(&first).await).name(), Some("IMG_MGMT_ERR_NO_FREE_SLOT"));
    let e = device_error(c.request(&ImageErase::default()).await);
    assert_eq!(e.name(), Some("MGMT_ERR_EBADSTATE"));
    // nor the running slot
    assert_eq!(
        device_error(c.request(&ImageErase { slot: Some(0) }).await).name(),
        Some("MGMT_ERR_EBADSTATE")
    );
}

#[tokio::test]
async fn v1_requests_get_zephyrs_folded_error_codes() {
    let r = rig("zephyr-default").await;
    r.client.set_version(Version::V1);
    let raw = fixture("raw.bin");
    let e = device_error(
        r.client
            .request(&ImageUpload {
                len: Some(raw.len() as u64),
                off: 0,
                data: ByteBuf::from(raw[..64].to_vec()),
                ..Default::default()
            })
            .await,
    );
    assert_eq!((e.group, e.rc), (None, 1), "v1 folds invalid magic into EUNKNOWN");
}

#[tokio::test]
async fn network_core_update_cannot_revert() {
    let r = rig("nrf5340").await;
    let net = fixture("ed25519.bin");
    let hash = hash_of(&net);
    upload(&r.client, 1, &net).await.unwrap();
    let s = state(&r.client).await;
    assert_eq!(slot(&s, 1, 1).unwrap().hash.as_deref(), Some(&hash[..]));
    r.client.request(&ImageStateWrite { hash: Some(hash.clone()), confirm: false }).await.unwrap();
    reset(&r).await;
    reset(&r).await;
    let s = state(&r.client).await;
    assert_eq!(
        slot(&s, 1, 0).unwrap().hash.as_deref(),
        Some(&hash[..]),
        "network core keeps the update: {s:?}"
    );
    assert!(slot(&s, 1, 1).is_none(), "secondary emptied by the copy");
}

#[tokio::test]
async fn overwrite_only_installs_without_revert() {
    let r = rig("overwrite-only").await;
    let new = fixture("hash-only.bin");
    let hash = hash_of(&new);
    upload(&r.client, 0, &new).await.unwrap();
    r.client.request(&ImageStateWrite { hash: Some(hash.clone()), confirm: false }).await.unwrap();
    reset(&r).await;
    reset(&r).await;
    let s = state(&r.client).await;
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].hash.as_deref(), Some(&hash[..]));
    assert!(s[0].active && s[0].confirmed);
}

#[tokio::test]
async fn direct_xip_runs_the_newest_slot() {
    let r = rig("direct-xip").await;
    let m = r.client.request(&BootloaderMode::default()).await.unwrap();
    assert_eq!(m.mode(), McubootMode::DirectXip);
    let new = fixture("hash-only.bin"); // 1.2.3+4 > factory 1.0.0
    let hash = hash_of(&new);
    upload(&r.client, 0, &new).await.unwrap();
    let s = state(&r.client).await;
    let candidate = slot(&s, 0, 1).unwrap();
    assert!(candidate.pending && candidate.permanent, "{s:?}");
    reset(&r).await;
    let s = state(&r.client).await;
    let active = s.iter().find(|s| s.active).unwrap();
    assert_eq!((active.slot, active.hash.as_deref()), (1, Some(&hash[..])));
    // the next upload goes to the other slot, now slot 0
    upload(&r.client, 0, &fixture("ecdsa-p256.bin")).await.unwrap();
    assert_eq!(
        slot(&state(&r.client).await, 0, 0).unwrap().hash.as_deref(),
        Some(&hash_of(&fixture("ecdsa-p256.bin"))[..])
    );
}

#[tokio::test]
async fn mcuboot_serial_recovery_writes_the_primary_directly() {
    let r = rig("mcuboot-recovery").await;
    let e = device_error(r.client.request(&McumgrParams {}).await);
    assert!(e.is_not_supported());
    let new = fixture("hash-only.bin");
    upload(&r.client, 0, &new).await.unwrap();
    let s = state(&r.client).await;
    assert_eq!((s.len(), s[0].slot), (1, 0));
    assert_eq!(s[0].hash.as_deref(), Some(&hash_of(&new)[..]));
    let e = device_error(r.client.request(&ImageStateWrite { hash: None, confirm: true }).await);
    assert!(e.is_not_supported(), "boot_serial has no state write");
}

#[tokio::test]
async fn state_file_keeps_flash_across_power_cycles() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("device.state");
    let opts = || DeviceOptions { time_scale: 0.0, state_file: Some(path.clone()), ..Default::default() };
    let new = fixture("hash-only.bin");
    {
        let r = Rig::start(Profile::by_name("zephyr-default").unwrap(), opts()).await;
        upload(&r.client, 0, &new).await.unwrap();
        r.client.request(&ImageStateWrite { hash: Some(hash_of(&new)), confirm: true }).await.unwrap();
    }
    // power back on: a new process would do exactly this
    let r = Rig::start(Profile::by_name("zephyr-default").unwrap(), opts()).await;
    let s = state(&r.client).await;
    assert_eq!(
        s[0].hash.as_deref(),
        Some(&hash_of(&new)[..]),
        "the permanent swap happened at power-on: {s:?}"
    );
    let e = Device::new(Profile::by_name("nrf5340").unwrap(), opts()).unwrap_err();
    assert!(e.to_string().contains("do not match profile nrf5340"), "{e}");
}

#[tokio::test]
async fn busy_device_drops_requests_beyond_its_buffers() {
    let mut profile = Profile::by_name("zephyr-default").unwrap();
    // The upload being handled holds two (its request and its answer), which leaves one.
    profile.apply_override("buf_count=3").unwrap();
    profile.apply_override("erase_ms=100").unwrap();
    let r = Rig::start(profile, DeviceOptions { time_scale: 1.0, ..Default::default() }).await;
    // dirty the secondary so the first upload chunk has to erase (24 sectors = 2.4 s busy)
    let img = fixture("hash-only.bin");
    upload(&r.client, 0, &img).await.unwrap();
    let c = r.client;
    let first = ImageUpload {
        len: Some(0x18000),
        off: 0,
        data: ByteBuf::from(img[..64].to_vec()),
        ..Default::default()
    };
    let echoes: Vec<Echo> = (0..4).map(|i| Echo { d: i.to_string() }).collect();
    let slow = c.request_with_timeout(&first, Duration::from_secs(10));
    let quick = futures_join(&c, &echoes);
    let (slow, quick) = tokio::join!(slow, quick);
    slow.unwrap();
    let answered = quick.iter().filter(|r| r.is_ok()).count();
    assert_eq!(answered, 1, "two buffers for the upload, one for an echo, the rest dropped: {quick:?}");
}

async fn futures_join(c: &Client, echoes: &[Echo]) -> Vec<Result<EchoResponse, Error>> {
    // Let the upload arrive first.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t = Duration::from_millis(3500);
    let (a, b, d, e) = tokio::join!(
        c.request_with_timeout(&echoes[0], t),
        c.request_with_timeout(&echoes[1], t),
        c.request_with_timeout(&echoes[2], t),
        c.request_with_timeout(&echoes[3], t)
    );
    vec![a, b, d, e]
}

#[tokio::test]
async fn udp_fault_knobs_apply() {
    use smpflash_sim::faults::LinkFaults;
    let serve_with = |faults: LinkFaults, added_rtt: Duration| async move {
        let device = Device::new(
            Profile::by_name("zephyr-default").unwrap(),
            DeviceOptions { time_scale: 0.0, ..Default::default() },
        )
        .unwrap();
        let server = udp::serve(device, "127.0.0.1:0".parse().unwrap(), UdpOptions { added_rtt, faults })
            .await
            .unwrap();
        let client = Client::new(Arc::new(UdpTransport::connect_addr(server.local_addr()).await.unwrap()))
            .with_timeout(Duration::from_millis(300));
        (server, client)
    };
    let echo = Echo { d: "x".into() };

    let (_s, c) =
        serve_with(LinkFaults { duplicate: 1.0, seed: 1, ..Default::default() }, Duration::ZERO).await;
    for _ in 0..5 {
        c.request(&echo).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(c.stats().duplicate >= 5, "{:?}", c.stats());

    let (_s, c) = serve_with(LinkFaults { drop: 1.0, seed: 1, ..Default::default() }, Duration::ZERO).await;
    assert!(matches!(c.request(&echo).await, Err(Error::Timeout { .. })));

    // 20 % loss: some requests go unanswered, and which ones repeats with the seed
    let lost = |seed| async move {
        let (_s, c) = serve_with(LinkFaults { drop: 0.2, seed, ..Default::default() }, Duration::ZERO).await;
        let mut pattern = Vec::new();
        for _ in 0..20 {
            pattern.push(c.request(&Echo { d: "x".into() }).await.is_ok());
        }
        pattern
    };
    let a = lost(42).await;
    assert!(a.iter().any(|ok| !ok) && a.iter().any(|ok| *ok), "{a:?}");
    assert_eq!(a, lost(42).await);

    let (_s, c) = serve_with(LinkFaults::default(), Duration::from_millis(120)).await;
    let start = std::time::Instant::now();
    c.request(&echo).await.unwrap();
    assert!(start.elapsed() >= Duration::from_millis(120));
}
