//! The simulator against a client nobody here wrote: intercreate's smpclient (Python) runs a
//! whole update (upload, test, reset, confirm) over the UDP and the serial front ends.
//!
//! Needs `pip install -r tests/requirements.txt`; without it these tests fail rather than
//! skip, so a missing tool cannot pass for a working device.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use smpflash_core::cbor;
use smpflash_core::command::image::{ImageStateRead, ImageStateResponse};
use smpflash_core::command::Command as _;
use smpflash_core::frame::{Frame, Header, Version};
use smpflash_sim::front::pty::{self, PtyOptions};
use smpflash_sim::front::udp::{self, UdpOptions};
use smpflash_sim::{Device, DeviceOptions, Profile};
use tokio::process::Command;

const SCRIPT: &str = "tests/interop/smpclient_dfu.py";
const IMAGE: &str = "tests/fixtures/images/ecdsa-p256.bin";
const INSTALL: &str = "install the interop tools: pip install -r tests/requirements.txt";

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn device() -> Arc<Device> {
    let options = DeviceOptions { time_scale: 0.0, ..Default::default() };
    Device::new(Profile::by_name("zephyr-default").unwrap(), options).unwrap()
}

async fn require_smpclient() {
    // The serial transport needs pyserial, which only smpclient's serial extra brings.
    let check =
        Command::new("python3").args(["-c", "import smpclient, smpclient.transport.serial"]).output().await;
    match check {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!("{INSTALL}\n{}", String::from_utf8_lossy(&out.stderr)),
        Err(e) => panic!("{INSTALL} (cannot run python3: {e})"),
    }
}

/// Runs the update script against `target` (`--udp HOST:PORT` or `--serial PATH`).
async fn run_dfu(target: [&str; 2]) {
    require_smpclient().await;
    let root = workspace_root();
    let run = Command::new("python3")
        .arg(root.join(SCRIPT))
        .args(target)
        .arg("--image")
        .arg(root.join(IMAGE))
        .current_dir(&root)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("smpclient_dfu.py finishes within two minutes")
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Shown with --nocapture: what smpclient saw at each step.
    println!("{stdout}{stderr}");
    assert!(
        out.status.success() && stdout.contains("==> update complete"),
        "smpclient_dfu.py {} failed ({}):\n--- stdout\n{stdout}--- stderr\n{stderr}",
        target.join(" "),
        out.status
    );
}

/// The device's own view after the script: the new image runs, confirmed, in the primary slot.
async fn assert_updated(device: &Device) {
    let bytes = std::fs::read(workspace_root().join(IMAGE)).unwrap();
    let image = smpflash_core::mcuboot::Image::parse(bytes).unwrap();
    let header = Header {
        version: Version::V2,
        op: ImageStateRead::OP,
        flags: 0,
        len: 0,
        group: ImageStateRead::GROUP,
        seq: 0,
        id: ImageStateRead::ID,
    };
    let body = cbor::to_vec(&ImageStateRead {}, "state").unwrap();
    let request = Frame::new(header, body).unwrap().encode();
    let answer = device
        .handle(&smpflash_sim::referee::Client::Direct, &request)
        .await
        .responses
        .pop()
        .expect("an answer");
    let answer = Frame::decode(&answer).unwrap();
    let state: ImageStateResponse = cbor::from_slice(&answer.body, "state").unwrap();
    let primary = state.images.iter().find(|s| s.image == 0 && s.slot == 0).expect("slot 0");
    assert_eq!(primary.hash.as_deref(), Some(image.hash()), "{state:?}");
    assert!(primary.active && primary.confirmed, "{state:?}");
    // A correct client: the device's referee found no mistake in its traffic.
    let summary = device.summary().await;
    for (client, log) in &summary.clients {
        assert!(
            log.mistakes.is_empty(),
            "the sim found mistakes in smpclient's traffic ({client}):\n{summary}"
        );
    }
    assert!(summary.left_undone.is_empty(), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smpclient_updates_the_device_over_udp() {
    let device = device();
    let server =
        udp::serve(device.clone(), "127.0.0.1:0".parse().unwrap(), UdpOptions::default()).await.unwrap();
    let target = format!("127.0.0.1:{}", server.local_addr().port());
    run_dfu(["--udp", &target]).await;
    assert_updated(&device).await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smpclient_updates_the_device_over_a_paced_pty() {
    let device = device();
    // A real board's rate, with its console chatter, for a client that has never seen the sim.
    let options = PtyOptions { baud: Some(115_200), ..Default::default() };
    let server = pty::serve(device.clone(), options).await.unwrap();
    run_dfu(["--serial", server.path()]).await;
    assert_updated(&device).await;
}
