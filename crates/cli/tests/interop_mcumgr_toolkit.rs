//! `smpflash sim` updated by Finomnis' mcumgr-toolkit (its Python binding), a client written
//! independently of smpflash: `tests/interop/mcumgr_toolkit_dfu.py` runs the toolkit's own
//! `firmware_update` (bootloader detection, upload, mark for test, reset) over UDP and over
//! the sim's pty, and `smpflash image list --json` then checks the device's view: the new image
//! runs under test, the previous one waits in slot 1.
//!
//! The toolkit sends echo as a read, which Zephyr answers (os_mgmt registers echo for read and
//! write); a device that refuses it cannot be updated by the toolkit at all.
//!
//! Needs `pip install -r tests/requirements.txt`; without it these tests fail rather than
//! skip, so a missing tool cannot pass for a working device.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{client_mistakes, require_python, root, SimProcess};

const SCRIPT: &str = "tests/interop/mcumgr_toolkit_dfu.py";
const IMAGE: &str = "examples/app-update-v1.1.0.bin";

fn require_toolkit() {
    require_python("mcumgr_toolkit");
}

/// `smpflash sim --profile zephyr-default --time-scale 0 --pty` in the background.
fn start_sim() -> SimProcess {
    SimProcess::start(&["--profile", "zephyr-default", "--udp", "127.0.0.1:0", "--time-scale", "0", "--pty"])
}

/// Runs the update script against `target` (`--udp HOST:PORT` or `--serial PATH`).
fn run_dfu(target: [&str; 2]) {
    require_toolkit();
    let mut child = Command::new("python3")
        .arg(root().join(SCRIPT))
        .args(target)
        .arg("--image")
        .arg(root().join(IMAGE))
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3");
    let deadline = Instant::now() + Duration::from_secs(180);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Shown with --nocapture: what the toolkit saw at each step.
    println!("{stdout}{stderr}");
    assert!(
        out.status.success() && stdout.contains("==> update complete"),
        "mcumgr_toolkit_dfu.py {} failed ({}):\n--- stdout\n{stdout}--- stderr\n{stderr}",
        target.join(" "),
        out.status
    );
}

/// smpflash's own view afterwards: the new image runs in slot 0 under test (active, not
/// confirmed: `firmware_update` marks for test and resets, and leaves confirming to the
/// application), the factory image in slot 1, still confirmed, ready for MCUboot's revert.
fn assert_testing_new_image(sim: &SimProcess) {
    let out = Command::new(env!("CARGO_BIN_EXE_smpflash"))
        .args(["--udp", &sim.udp, "image", "list", "--json"])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let state: Value = serde_json::from_slice(&out.stdout).unwrap();
    let bytes = std::fs::read(root().join(IMAGE)).unwrap();
    let new_hash = smpflash_core::mcuboot::Image::parse(bytes).unwrap().hash().to_vec();
    let slot = |n: u64| {
        state["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["image"] == 0 && s["slot"] == n)
            .unwrap_or_else(|| panic!("no slot {n} in {state}"))
            .clone()
    };
    let (primary, secondary) = (slot(0), slot(1));
    assert_eq!(primary["hash"], hex::encode(&new_hash), "{state}");
    assert_eq!(
        (primary["active"].as_bool(), primary["confirmed"].as_bool()),
        (Some(true), Some(false)),
        "{state}"
    );
    assert_eq!(primary["version"], "1.1.0", "{state}");
    assert_eq!(secondary["version"], "1.0.0", "{state}");
    assert_eq!(secondary["confirmed"].as_bool(), Some(true), "{state}");
}

/// The toolkit's traffic is correct: the virtual device finds no mistake in it.
fn assert_no_client_mistakes(sim: SimProcess) {
    let output = sim.stop();
    let found = client_mistakes(&output);
    assert!(found.is_empty(), "the sim warned about mcumgr-toolkit's traffic:\n{}", found.join("\n"));
}

#[test]
fn mcumgr_toolkit_updates_the_sim_over_udp() {
    let sim = start_sim();
    run_dfu(["--udp", &sim.udp]);
    assert_testing_new_image(&sim);
    assert_no_client_mistakes(sim);
}

#[test]
fn mcumgr_toolkit_updates_the_sim_over_its_pty() {
    let sim = start_sim();
    run_dfu(["--serial", sim.pty.as_deref().expect("a pty")]);
    assert_testing_new_image(&sim);
    assert_no_client_mistakes(sim);
}
