//! The whole DFU flow of smpflash-core against the virtual device over real UDP sockets: every
//! mode, every bootloader mode of the profiles, the nRF5340 two-image package, and each
//! explanation of an update that did not apply, provoked for real.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smpflash_core::command::image::SlotState;
use smpflash_core::command::os::{Echo, Reset};
use smpflash_core::dfu::{self, DfuError, DfuOptions, DfuReport, Mode, NotApplied, Refusal};
use smpflash_core::mcuboot::{self, Package};
use smpflash_core::progress::{BootEvidence, Event, Note, Skip};
use smpflash_core::session::Session;
use smpflash_core::Error;
use smpflash_sim::faults::DeviceFaults;
use smpflash_sim::front::udp::{self, UdpOptions, UdpServer};
use smpflash_sim::{Device, DeviceOptions, Profile};
use smpflash_udp::UdpConnector;
use std::ops::Not;

fn file(rel: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join(rel)
}

fn package(rel: &str) -> Package {
    mcuboot::load(&file(rel)).unwrap()
}

struct Rig {
    device: Arc<Device>,
    server: UdpServer,
}

async fn rig(profile: Profile, faults: DeviceFaults) -> Rig {
    let device =
        Device::new(profile, DeviceOptions { time_scale: 0.0, faults, ..Default::default() }).unwrap();
    let server =
        udp::serve(device.clone(), "127.0.0.1:0".parse().unwrap(), UdpOptions::default()).await.unwrap();
    Rig { device, server }
}

fn profile(name: &str) -> Profile {
    Profile::by_name(name).unwrap()
}

async fn session(r: &Rig) -> Session {
    Session::open(Box::new(UdpConnector::new(r.server.local_addr().to_string())), Duration::from_millis(500))
        .await
        .unwrap()
}

async fn run(r: &Rig, pkg: &Package, mode: Option<Mode>) -> (Result<DfuReport, Error>, Vec<Event>) {
    let mut s = session(r).await;
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let progress = move |e: &Event| sink.lock().unwrap().push(e.clone());
    let opts = DfuOptions { mode, boot_timeout: Duration::from_secs(10), ..Default::default() };
    let result = dfu::dfu(&mut s, pkg, &opts, &progress).await;
    let events = events.lock().unwrap().clone();
    (result, events)
}

fn running(state: &[SlotState], image: u32) -> &SlotState {
    state.iter().find(|s| s.image == image && s.active).expect("an active slot")
}

fn hash(pkg: &Package, i: usize) -> Vec<u8> {
    pkg.images[i].image.hash().to_vec()
}

fn note_text(e: &Event) -> String {
    if let Event::Note { note } = e {
        note.to_string()
    } else {
        String::new()
    }
}

fn steps(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| if let Event::Step { step } = e { Some(step.to_string()) } else { None })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_and_confirm_is_the_single_image_default() {
    let r = rig(profile("zephyr-default"), Default::default()).await;
    let pkg = package("examples/app-update-v1.1.0.bin");
    let (report, events) = run(&r, &pkg, None).await;
    let report = report.unwrap();
    assert_eq!(report.mode, Mode::TestAndConfirm);
    let now = running(&report.after, 0);
    assert_eq!((now.hash.as_deref().map(|h| h.to_vec()), now.confirmed), (Some(hash(&pkg, 0)), true));
    let s = steps(&events);
    assert!(s.iter().any(|w| w == "marking image 0 for test"), "{s:?}");
    assert!(s.iter().any(|w| w == "confirming the new image"), "{s:?}");
    // uploads used the pipeline: more than one request sat in the device's buffers at once
    assert!(r.device.peak_buffers_in_use() > 1, "peak {}", r.device.peak_buffers_in_use());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nrf5340_package_is_confirmed_network_core_first() {
    let r = rig(profile("nrf5340"), Default::default()).await;
    let pkg = package("examples/dfu_application.zip");
    let (report, events) = run(&r, &pkg, None).await;
    let report = report.unwrap();
    assert_eq!(report.mode, Mode::ConfirmOnly);
    assert_eq!(report.uploads.len(), 2);
    for (i, img) in pkg.images.iter().enumerate() {
        let now = running(&report.after, img.image_index);
        assert_eq!(now.hash.as_deref().map(|h| h.to_vec()), Some(hash(&pkg, i)));
    }
    let s = steps(&events);
    let net = s.iter().position(|w| w == "marking image 1 for permanent install").unwrap();
    let app = s.iter().position(|w| w == "marking image 0 for permanent install").unwrap();
    assert!(net < app, "{s:?}");
    assert_eq!(
        r.device.peak_buffers_in_use(),
        4,
        "buf_count 4: 3 requests in flight and the answer being built, every buffer used, none overrun"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_only_leaves_confirming_to_the_application() {
    let r = rig(profile("zephyr-default"), Default::default()).await;
    let pkg = package("examples/app-update-v1.1.0.bin");
    let report = run(&r, &pkg, Some(Mode::TestOnly)).await.0.unwrap();
    let now = running(&report.after, 0);
    assert_eq!((now.hash.as_deref().map(|h| h.to_vec()), now.confirmed), (Some(hash(&pkg, 0)), false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_only_stops_before_marking() {
    let r = rig(profile("zephyr-default"), Default::default()).await;
    let pkg = package("examples/app-update-v1.1.0.bin");
    let report = run(&r, &pkg, Some(Mode::UploadOnly)).await.0.unwrap();
    assert!(!report.reset);
    let slot1 = report.after.iter().find(|s| s.slot == 1).unwrap();
    assert_eq!((slot1.hash.as_deref().map(|h| h.to_vec()), slot1.pending), (Some(hash(&pkg, 0)), false));
    // running it again skips the upload: the slot already holds the image
    let (again, _) = run(&r, &pkg, Some(Mode::UploadOnly)).await;
    let again = again.unwrap();
    assert!(
        again.uploads.is_empty()
            && matches!(again.skipped[0], Skip::AlreadyInSlot { image: 0, slot: 1, .. })
            && again.skipped[0].to_string().contains("already holds"),
        "{:?}",
        again.skipped
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overwrite_only_and_direct_xip_bootloaders() {
    let pkg = package("examples/app-update-v1.1.0.bin");
    for name in ["overwrite-only", "direct-xip"] {
        let r = rig(profile(name), Default::default()).await;
        let report = run(&r, &pkg, None).await.0.unwrap_or_else(|e| panic!("{name}: {e}"));
        let now = running(&report.after, 0);
        assert_eq!(now.hash.as_deref().map(|h| h.to_vec()), Some(hash(&pkg, 0)), "{name}");
        if name == "direct-xip" {
            assert_eq!(now.slot, 1, "direct-XIP runs the new image where it was written");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcuboot_serial_recovery_is_detected_and_written_directly() {
    let r = rig(profile("mcuboot-recovery"), Default::default()).await;
    let pkg = package("examples/app-update-v1.1.0.bin");
    let (report, events) = run(&r, &pkg, None).await;
    let report = report.unwrap();
    assert!(events.iter().any(|e| matches!(e, Event::Note { note: Note::SerialRecovery } if note_text(e).contains("serial recovery"))));
    assert!(report.reset);
    let primary = report.after.iter().find(|s| s.slot == 0).unwrap();
    assert_eq!(primary.hash.as_deref().map(|h| h.to_vec()), Some(hash(&pkg, 0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_before_anything_is_written() {
    let r = rig(profile("zephyr-default"), Default::default()).await;
    // wrong image index
    let mut pkg = package("examples/app-update-v1.1.0.bin");
    pkg.images[0].image_index = 1;
    let e = run(&r, &pkg, None).await.0.unwrap_err();
    assert!(e.to_string().contains("is for image 1, but the device has image(s) [0]"), "{e}");
    // too large for the slot: an nRF5340 application slot image on a 0x60000 slot device
    let mut small = profile("zephyr-default");
    small.apply_override("slot_size=0x10000").unwrap();
    let r2 = rig(small, Default::default()).await;
    let e = run(&r2, &package("examples/app-update-v1.1.0.bin"), None).await.0.unwrap_err();
    assert!(
        matches!(e, Error::Dfu(DfuError::Refused(Refusal::TooLarge { .. })))
            && e.to_string().contains("takes at most"),
        "{e}"
    );
    // downgrade on a bootloader that refuses them: the factory image is 1.0.0, the fixture 1.2.3,
    // so make the running image newer first
    let mut strict = profile("zephyr-default");
    strict.apply_override("no_downgrade=true").unwrap();
    let r3 = rig(strict, Default::default()).await;
    run(&r3, &package("tests/fixtures/images/ecdsa-p256.bin"), None).await.0.unwrap();
    let e = run(&r3, &package("examples/app-update-v1.1.0.bin"), None).await.0.unwrap_err();
    assert!(
        e.to_string().contains("older than the running 1.2.3")
            && e.to_string().contains("refuses downgrades"),
        "{e}"
    );
    // nothing was uploaded for any refusal
    assert!(r.device.snapshot().await.flash.is_erased(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_image_twice_is_a_no_op() {
    let r = rig(profile("zephyr-default"), Default::default()).await;
    let pkg = package("examples/app-update-v1.1.0.bin");
    run(&r, &pkg, None).await.0.unwrap();
    let report = run(&r, &pkg, None).await.0.unwrap();
    assert!(!report.reset && report.uploads.is_empty());
    assert!(matches!(report.skipped[0], Skip::AlreadyRunning { image: 0, .. }));
    assert!(report.skipped[0].to_string().contains("already runs 1.1.0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_rejected_by_the_bootloader_is_explained() {
    // An encrypted image: the reader accepts it, the device takes the upload, but this
    // bootloader holds no decryption key, so MCUboot rejects and erases it at boot.
    let r = rig(profile("zephyr-default"), Default::default()).await;
    let pkg = package("tests/fixtures/images/encrypted.bin");
    let e = run(&r, &pkg, None).await.0.unwrap_err();
    let text = e.to_string();
    assert!(
        matches!(e, Error::Dfu(DfuError::NotApplied(NotApplied::RejectedAtBoot { image: 0, .. }))),
        "{text}"
    );
    assert!(text.contains("MCUboot rejected it at boot and erased it"), "{text}");
    assert!(text.contains("still runs version 1.0.0"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_image_that_crashes_is_reverted_and_explained() {
    let faults = DeviceFaults { test_image_crashes: true, ..Default::default() };
    let r = rig(profile("zephyr-default"), faults).await;
    let e = run(&r, &package("examples/app-update-v1.1.0.bin"), None).await.0.unwrap_err();
    let text = e.to_string();
    assert!(text.contains("it ran and was reverted"), "{text}");
    let log = r.device.snapshot().await.boot_log;
    assert!(log.iter().any(|l| l.what.contains("reverting")), "{log:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_signed_with_the_wrong_key_is_explained() {
    let mut p = profile("zephyr-default");
    let key = file("tests/fixtures/keys/ecdsa-p256.pem");
    p.apply_override(&format!("signing_key={}", key.display())).unwrap();
    let r = rig(p, Default::default()).await;
    let e = run(&r, &package("tests/fixtures/images/ed25519.bin"), None).await.0.unwrap_err();
    assert!(e.to_string().contains("not signed with the key this bootloader expects"), "{e}");
    let log = r.device.snapshot().await.boot_log;
    assert!(log.iter().any(|l| l.what.contains("does not hold")), "{log:?}");
    // the right key goes through
    let report = run(&r, &package("tests/fixtures/images/ecdsa-p256.bin"), None).await.0.unwrap();
    assert_eq!(running(&report.after, 0).version, "1.2.3.4");
}

async fn run_with(r: &Rig, pkg: &Package, opts: DfuOptions) -> (Result<DfuReport, Error>, Vec<Event>) {
    let mut s = session(r).await;
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let progress = move |e: &Event| sink.lock().unwrap().push(e.clone());
    let opts = DfuOptions { boot_timeout: Duration::from_secs(10), ..opts };
    let result = dfu::dfu(&mut s, pkg, &opts, &progress).await;
    let events = events.lock().unwrap().clone();
    (result, events)
}

fn boot_note(events: &[Event]) -> Option<BootEvidence> {
    events.iter().find_map(|e| match e {
        Event::Note { note: Note::NewestValidBoots { evidence } } => Some(*evidence),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ram_load_runs_the_new_image_without_marks_and_says_so() {
    // An image built for RAM_LOAD: the planner infers the mode (the profile, like the fixtures,
    // does not answer bootloader info) and neither marks nor confirms.
    let r = rig(profile("ram-load"), Default::default()).await;
    let pkg = package("examples/app-update-v1.2.0-ram-load.bin");
    let (report, events) = run(&r, &pkg, None).await;
    let report = report.unwrap();
    let now = running(&report.after, 0);
    assert_eq!((now.slot, now.hash.as_deref().map(|h| h.to_vec())), (1, Some(hash(&pkg, 0))));
    assert_eq!(boot_note(&events), Some(BootEvidence::RamLoadImage));
    let s = steps(&events);
    assert!(!s.iter().any(|w| w.starts_with("marking") || w.starts_with("confirming")), "{s:?}");
    assert!(s.iter().any(|w| w == "checking which images run now"), "{s:?}");

    // An image without the RAM_LOAD flag: the mark is refused with rc 8, which the plan takes
    // as "no marks here", and the check after the reset decides.
    let r = rig(profile("ram-load"), Default::default()).await;
    let pkg = package("examples/app-update-v1.1.0.bin");
    let (report, events) = run(&r, &pkg, None).await;
    let report = report.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(running(&report.after, 0).hash.as_deref().map(|h| h.to_vec()), Some(hash(&pkg, 0)));
    assert_eq!(boot_note(&events), Some(BootEvidence::MarkRefused));
    assert!(!steps(&events).iter().any(|w| w.starts_with("confirming")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reported_ram_load_needs_no_inference() {
    // With bootloader info the device reports mode 6 itself.
    let mut p = profile("ram-load");
    p.no_bootloader_info = false;
    let r = rig(p, Default::default()).await;
    let pkg = package("examples/app-update-v1.1.0.bin");
    let (report, events) = run(&r, &pkg, None).await;
    report.unwrap();
    assert_eq!(boot_note(&events), Some(BootEvidence::ReportedRamLoad));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_with_boot_mode_1_enters_recovery_and_a_dfu_there_ends_verified() {
    let r = rig(profile("ram-load"), Default::default()).await;
    let s = session(&r).await;
    s.client().request(&Reset { force: None, boot_mode: Some(1) }).await.unwrap();
    drop(s);
    // The device comes back as MCUboot's serial recovery.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = session(&r).await;
    let e = s.client().request(&Echo { d: "x".into() }).await.unwrap_err();
    assert!(matches!(&e, Error::Device(d) if d.rc == 8), "{e}");
    let facts = dfu::facts::inspect(&s).await.unwrap();
    assert!(facts.recovery, "{facts:?}");
    assert!(!facts.limits.reported, "no params in this recovery");
    drop(s);
    let pkg = package("examples/app-update-v1.2.0-ram-load.bin");
    let (report, events) = run(&r, &pkg, None).await;
    let report = report.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.route, dfu::Route::SerialRecovery);
    assert!(report.reset);
    // After the plain reset the application runs the image written in recovery.
    let now = running(&report.after, 0);
    assert_eq!((now.slot, now.hash.as_deref().map(|h| h.to_vec())), (0, Some(hash(&pkg, 0))));
    let s = steps(&events);
    assert_eq!(s.last().map(String::as_str), Some("checking which images run after leaving serial recovery"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dfu_recovery_enters_updates_and_checks_in_one_command() {
    let mut p = profile("ram-load");
    p.recovery_params = true;
    let r = rig(p, Default::default()).await;
    let pkg = package("examples/app-update-v1.2.0-ram-load.bin");
    let (report, events) =
        run_with(&r, &pkg, DfuOptions { enter_recovery: true, ..Default::default() }).await;
    let report = report.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.route, dfu::Route::SerialRecovery, "recognised although it reports params");
    assert_eq!(running(&report.after, 0).hash.as_deref().map(|h| h.to_vec()), Some(hash(&pkg, 0)));
    let s = steps(&events);
    assert!(s.iter().any(|w| w.contains("serial recovery (boot mode 1)")), "{s:?}");
    assert!(r.device.snapshot().await.boot.in_recovery.not(), "a plain reset left recovery");

    // A device that cannot enter recovery says so instead of updating the application.
    let r = rig(profile("zephyr-default"), Default::default()).await;
    let (report, _) = run_with(&r, &pkg, DfuOptions { enter_recovery: true, ..Default::default() }).await;
    assert!(
        matches!(report, Err(Error::Dfu(DfuError::NotApplied(NotApplied::DidNotEnterRecovery)))),
        "{report:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_with_params_is_recognised() {
    let mut p = profile("mcuboot-recovery");
    p.apply_override("params=true").unwrap();
    let r = rig(p, Default::default()).await;
    let s = session(&r).await;
    let facts = dfu::facts::inspect(&s).await.unwrap();
    assert!(facts.limits.reported && facts.recovery, "{facts:?}");
}
