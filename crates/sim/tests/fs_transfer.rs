//! File transfers (fs group) against the virtual device over real UDP sockets: pipelined upload
//! and download checked by the device's hash, a lossy link (the device's "offset not valid"
//! answers with its file length are the truth the engine resyncs from), and Zephyr's fs errors.

use std::sync::Arc;
use std::time::Duration;

use smpflash_core::command::fs::{FileHash, FileStatus, FileUpload};
use smpflash_core::fs::{self, HashKind};
use smpflash_core::loopback::noise;
use smpflash_core::rc;
use smpflash_core::session::Session;
use smpflash_core::upload::{Limits, UploadOptions};
use smpflash_core::Error;
use smpflash_sim::faults::LinkFaults;
use smpflash_sim::front::udp::{self, UdpOptions, UdpServer};
use smpflash_sim::{Device, DeviceOptions, Profile};
use smpflash_udp::UdpConnector;

async fn serve(link: LinkFaults) -> (Arc<Device>, UdpServer) {
    let device = Device::new(
        Profile::by_name("nrf5340").unwrap(),
        DeviceOptions { time_scale: 0.0, ..Default::default() },
    )
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

async fn open(server: &UdpServer) -> (Session, Limits) {
    let connector = UdpConnector::new(server.local_addr().to_string());
    let session = Session::open(Box::new(connector), Duration::from_millis(300)).await.unwrap();
    let limits = Limits::query(session.client()).await.unwrap();
    (session, limits)
}

fn opts() -> UploadOptions {
    UploadOptions { timeout: Duration::from_millis(300), max_attempts: 20, ..Default::default() }
}

fn group_rc(e: &Error) -> Option<(u16, i64)> {
    match e {
        Error::Device(d) => d.group.map(|g| (g, d.rc)),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_upload_and_download_are_exact_and_checked() {
    let (device, server) = serve(LinkFaults::default()).await;
    let (mut session, limits) = open(&server).await;
    let bytes = noise(300_000, 7);
    let up = fs::upload_file(&mut session, "/lfs1/big.bin", &bytes, &limits, &opts(), &()).await.unwrap();
    assert_eq!(up.bytes, bytes.len() as u64);
    assert!(up.window > 1, "the upload was pipelined: {up:?}");
    assert_eq!(up.verified.as_ref().map(|v| v.kind), Some(HashKind::Sha256));
    // What the device holds is what was sent (read from its state, not through the protocol).
    assert_eq!(device.snapshot().await.groups.files.files["/lfs1/big.bin"], bytes);
    let (back, down) = fs::download_file(&mut session, "/lfs1/big.bin", &limits, &opts(), &()).await.unwrap();
    assert_eq!(back, bytes);
    assert!(down.window > 1, "the download was pipelined: {down:?}");
    assert_eq!(down.verified.as_ref().map(|v| v.value.clone()), up.verified.map(|v| v.value));
    // A second upload of a shorter file replaces the first (offset 0 truncates).
    let short = noise(1000, 9);
    fs::upload_file(&mut session, "/lfs1/big.bin", &short, &limits, &opts(), &()).await.unwrap();
    let s = session.client().request(&FileStatus { name: "/lfs1/big.bin".into() }).await.unwrap();
    assert_eq!(s.len, 1000);
    let crc = session
        .client()
        .request(&FileHash { name: "/lfs1/big.bin".into(), kind: None, off: None, len: None })
        .await
        .unwrap();
    assert_eq!(crc.kind, "crc32", "Zephyr's default type when crc32 is built in");
    assert_eq!(crc.output, HashKind::Crc32.of(&short));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lossy_link_still_moves_the_exact_file_both_ways() {
    let faults = LinkFaults { drop: 0.05, duplicate: 0.05, reorder: 0.05, seed: 11 };
    let (device, server) = serve(faults).await;
    let (mut session, limits) = open(&server).await;
    let bytes = noise(200_000, 3);
    let up = fs::upload_file(&mut session, "/lfs1/lossy.bin", &bytes, &limits, &opts(), &()).await.unwrap();
    assert!(up.retransmits > 0, "a 5 % loss costs retransmissions: {up:?}");
    assert_eq!(device.snapshot().await.groups.files.files["/lfs1/lossy.bin"], bytes);
    let (back, down) =
        fs::download_file(&mut session, "/lfs1/lossy.bin", &limits, &opts(), &()).await.unwrap();
    assert_eq!(back, bytes);
    assert!(down.retransmits > 0, "{down:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zephyr_fs_errors() {
    let (_device, server) = serve(LinkFaults::default()).await;
    let (mut session, limits) = open(&server).await;
    let client = session.client();
    let e = client.request(&FileStatus { name: "/lfs1/missing".into() }).await.unwrap_err();
    assert_eq!(group_rc(&e), Some((rc::group::FS, rc::fs::FILE_NOT_FOUND)));
    let e = client.request(&FileStatus { name: "/lfs1".into() }).await.unwrap_err();
    assert_eq!(group_rc(&e), Some((rc::group::FS, rc::fs::FILE_IS_DIRECTORY)));
    // Not under the mount point: littlefs's -ENOENT is "mount point not found" for an upload.
    let first = FileUpload { off: 0, data: vec![1, 2, 3].into(), name: "/nand/x".into(), len: Some(3) };
    let e = client.request(&first).await.unwrap_err();
    assert_eq!(group_rc(&e), Some((rc::group::FS, rc::fs::MOUNT_POINT_NOT_FOUND)));
    // A first chunk without `len` is MGMT_ERR_EINVAL.
    let e = client
        .request(&FileUpload { off: 0, data: vec![1].into(), name: "/lfs1/x".into(), len: None })
        .await
        .unwrap_err();
    assert!(matches!(&e, Error::Device(d) if d.group.is_none() && d.rc == rc::MGMT_ERR_EINVAL), "{e}");
    // A chunk at the wrong offset: the file's length comes back beside the error.
    client
        .request(&FileUpload { off: 0, data: vec![0; 10].into(), name: "/lfs1/x".into(), len: Some(20) })
        .await
        .unwrap();
    let e = client
        .request(&FileUpload { off: 15, data: vec![0; 5].into(), name: "/lfs1/x".into(), len: None })
        .await
        .unwrap_err();
    assert_eq!(group_rc(&e), Some((rc::group::FS, rc::fs::FILE_OFFSET_NOT_VALID)));
    // An unknown hash type, and an empty file.
    let e = client
        .request(&FileHash { name: "/lfs1/x".into(), kind: Some("md5".into()), off: None, len: None })
        .await
        .unwrap_err();
    assert_eq!(group_rc(&e), Some((rc::group::FS, rc::fs::CHECKSUM_HASH_NOT_FOUND)));
    fs::upload_file(&mut session, "/lfs1/empty", &[], &limits, &opts(), &()).await.unwrap();
    let e = session
        .client()
        .request(&FileHash { name: "/lfs1/empty".into(), kind: None, off: None, len: None })
        .await
        .unwrap_err();
    assert_eq!(group_rc(&e), Some((rc::group::FS, rc::fs::FILE_EMPTY)));
    // More than the file system holds: littlefs's -ENOSPC is "file write failed".
    let huge = noise(smpflash_sim::smp::fs::CAPACITY + 4096, 5);
    let e = fs::upload_file(&mut session, "/lfs1/huge", &huge, &limits, &opts(), &()).await.unwrap_err();
    assert_eq!(group_rc(&e), Some((rc::group::FS, rc::fs::FILE_WRITE_FAILED)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_profile_sets_the_file_system_size() {
    // The native_sim fixtures' 16 KiB littlefs.
    let mut profile = Profile::by_name("nrf5340").unwrap();
    profile.apply_override("fs_size=16384").unwrap();
    let device = Device::new(profile, DeviceOptions { time_scale: 0.0, ..Default::default() }).unwrap();
    let server =
        udp::serve(device.clone(), "127.0.0.1:0".parse().unwrap(), UdpOptions::default()).await.unwrap();
    let (mut session, limits) = open(&server).await;
    fs::upload_file(&mut session, "/lfs1/a", &noise(10_000, 1), &limits, &opts(), &()).await.unwrap();
    let e =
        fs::upload_file(&mut session, "/lfs1/b", &noise(10_000, 2), &limits, &opts(), &()).await.unwrap_err();
    assert_eq!(group_rc(&e), Some((rc::group::FS, rc::fs::FILE_WRITE_FAILED)));
    // What `b` got before the file system filled stays, as littlefs keeps it; replacing `a`
    // frees its old bytes first, so 8000 new ones fit beside `b`'s.
    let b = device.snapshot().await.groups.files.files["/lfs1/b"].len();
    assert!(b > 0 && 10_000 + b <= 16_384, "{b}");
    fs::upload_file(&mut session, "/lfs1/a", &noise(8_000, 3), &limits, &opts(), &()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_chunk_guess_for_the_first_reads_still_downloads_the_exact_file() {
    let (_device, server) = serve(LinkFaults::default()).await;
    let (mut session, limits) = open(&server).await;
    let bytes = noise(30_000, 21);
    fs::upload_file(&mut session, "/lfs1/g.bin", &bytes, &limits, &opts(), &()).await.unwrap();
    // The device answers 2428-byte chunks; buffers said to be 1000 bytes make the reads sent
    // with the first one land at 953 and 1906, inside the first answer's chunk.
    let wrong = Limits { buf_size: 1000, ..limits };
    let (back, report) = fs::download_file(&mut session, "/lfs1/g.bin", &wrong, &opts(), &()).await.unwrap();
    assert_eq!(back, bytes);
    assert_eq!(report.chunk, 2428, "{report:?}");
    // And a file shorter than the guessed offsets: the reads past its end bring nothing.
    fs::upload_file(&mut session, "/lfs1/s.bin", b"short", &limits, &opts(), &()).await.unwrap();
    let (back, _) = fs::download_file(&mut session, "/lfs1/s.bin", &limits, &opts(), &()).await.unwrap();
    assert_eq!(back, b"short");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_goes_on_where_the_file_ends_after_the_device_resets_mid_way() {
    // Real flash timing, so the 300 kB upload takes seconds and the reset lands inside it.
    let device = Device::new(
        Profile::by_name("nrf5340").unwrap(),
        DeviceOptions { time_scale: 1.0, ..Default::default() },
    )
    .unwrap();
    let server =
        udp::serve(device.clone(), "127.0.0.1:0".parse().unwrap(), UdpOptions::default()).await.unwrap();
    let (mut session, limits) = open(&server).await;
    let bytes = noise(300_000, 13);
    let resetter = {
        let device = device.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(800)).await;
            let at = device.snapshot().await.groups.files.files.get("/lfs1/r.bin").map_or(0, Vec::len);
            device.reset().await;
            at
        })
    };
    let report = fs::upload_file(&mut session, "/lfs1/r.bin", &bytes, &limits, &opts(), &()).await.unwrap();
    let reset_at = resetter.await.unwrap();
    assert!(reset_at > 0 && reset_at < bytes.len(), "the reset came mid-upload, at {reset_at}");
    assert!(report.retransmits > 0, "the requests lost to the reset were sent again: {report:?}");
    assert_eq!(report.verified.map(|v| v.kind), Some(HashKind::Sha256));
    assert_eq!(device.snapshot().await.groups.files.files["/lfs1/r.bin"], bytes);
}
