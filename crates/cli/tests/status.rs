//! `smpflash status` and the empty-slot line of `image list`, against the virtual device
//! running as its own process (`smpflash sim`) over a real UDP socket, through a test-and-confirm
//! update step by step.

mod support;

use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;
use support::SimProcess;

fn sim(profile: &str) -> SimProcess {
    SimProcess::start(&["--profile", profile, "--udp", "127.0.0.1:0", "--time-scale", "0"])
}

fn cli(sim: &SimProcess) -> Command {
    let mut c = Command::cargo_bin("smpflash").unwrap();
    c.args(["--udp", &sim.udp, "--timeout", "2"]).current_dir(support::root());
    c
}

fn stdout(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn json(c: &mut Command) -> Value {
    serde_json::from_str(&stdout(c.arg("--json"))).unwrap()
}

/// `status` once the device answers again (after a reset it boots first).
fn status_after_reset(sim: &SimProcess) -> String {
    let start = Instant::now();
    loop {
        let out = cli(sim).arg("status").output().unwrap();
        if out.status.success() {
            return String::from_utf8(out.stdout).unwrap();
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{}", String::from_utf8_lossy(&out.stderr));
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn status_through_a_test_and_confirm_update() {
    let s = sim("zephyr-default");

    // fresh: nothing uploaded, and image list says the secondary slot is empty
    assert_eq!(
        stdout(cli(&s).arg("status")),
        "image 0 runs 1.0.0, confirmed; slot 1 is empty — nothing has been uploaded\n"
    );
    let list = stdout(cli(&s).args(["image", "list"]));
    assert!(list.ends_with("image 0 slot 1 is empty: nothing has been uploaded to it\n"), "{list}");
    let list = json(cli(&s).args(["image", "list"]));
    assert_eq!(list["empty_slots"], serde_json::json!([{"image": 0, "slot": 1}]));
    let doc = json(cli(&s).arg("status"));
    assert_eq!(doc["images"][0]["situation"], "nothing_uploaded");

    // uploaded, not marked: a reset would change nothing
    cli(&s).args(["image", "upload", "examples/app-update-v1.1.0.bin"]).assert().success();
    let hash = json(cli(&s).args(["image", "list"]))["images"][1]["hash"].as_str().unwrap().to_string();
    assert_eq!(
        stdout(cli(&s).arg("status")),
        format!(
            "image 0 runs 1.0.0, confirmed; slot 1 holds 1.1.0, not marked: a reset changes nothing — \
             mark it with `smpflash image test {}`\n",
            &hash[..8]
        )
    );
    assert_eq!(json(cli(&s).args(["image", "list"]))["empty_slots"], serde_json::json!([]));

    // marked for test, with the prefix the sentence gave
    cli(&s).args(["image", "test", &hash[..8]]).assert().success();
    assert_eq!(
        stdout(cli(&s).arg("status")),
        "image 0 runs 1.0.0; 1.1.0 in slot 1 is marked for test: the next reset boots it once, and \
         the reset after reverts to 1.0.0 unless it is confirmed — after the reset, `smpflash image confirm`\n"
    );

    // after the reset it runs under test
    cli(&s).arg("reset").assert().success();
    assert_eq!(
        status_after_reset(&s),
        "image 0 runs 1.1.0 under test (not confirmed): the next reset reverts to 1.0.0 unless you \
         confirm it — `smpflash image confirm`\n"
    );
    let doc = json(cli(&s).arg("status"));
    assert_eq!(doc["images"][0]["situation"], "testing");
    assert_eq!(doc["images"][0]["fallback"]["version"], "1.0.0");

    // confirmed: the old image stays in slot 1, unmarked
    cli(&s).args(["image", "confirm"]).assert().success();
    let old = json(cli(&s).args(["image", "list"]))["images"][1]["hash"].as_str().unwrap().to_string();
    assert_eq!(
        stdout(cli(&s).arg("status")),
        "image 0 runs 1.1.0, confirmed; slot 1 holds 1.0.0, older than the running image, not marked: \
         a reset changes nothing\n"
    );

    // marked permanent (a downgrade back to 1.0.0)
    cli(&s).args(["image", "confirm", &old[..8]]).assert().success();
    assert_eq!(
        stdout(cli(&s).arg("status")),
        "image 0 runs 1.1.0; 1.0.0 in slot 1 is marked permanent: the next reset boots it and keeps it\n"
    );
}

#[test]
fn status_of_other_boot_modes() {
    // MCUboot's serial recovery answers instead of the application
    let s = sim("mcuboot-recovery");
    assert_eq!(
        stdout(cli(&s).arg("status")),
        "image 0: the device answers as MCUboot's serial recovery; slot 0 holds 1.0.0: uploads go \
         into the primary slot, and a reset boots what is there\n"
    );
    drop(s);

    // direct-XIP: the newest valid slot runs, nothing is marked
    let s = sim("direct-xip");
    assert_eq!(
        stdout(cli(&s).arg("status")),
        "image 0 runs 1.0.0; slot 1 is empty — nothing has been uploaded\n"
    );
    cli(&s).args(["image", "upload", "examples/app-update-v1.1.0.bin"]).assert().success();
    assert_eq!(
        stdout(cli(&s).arg("status")),
        "image 0 runs 1.0.0 from slot 0; slot 1 holds 1.1.0, newer: direct-XIP boots the newest valid \
         image, so the next reset runs it — nothing to mark\n"
    );
}

#[test]
fn status_when_the_device_does_not_report_its_mode() {
    // RAM load without bootloader info, as the mps2 fixtures are: smpflash cannot tell the mode,
    // so the advice for an unmarked image says for which modes it holds.
    let s = sim("ram-load");
    cli(&s).args(["image", "upload", "examples/app-update-v1.2.0-ram-load.bin"]).assert().success();
    let said = stdout(cli(&s).arg("status"));
    assert!(
        said.starts_with(
            "image 0 runs 1.0.0, confirmed; slot 1 holds 1.2.0, not marked: a reset changes nothing"
        ),
        "{said}"
    );
    assert!(
        said.ends_with(
            "(so in MCUboot's swap and overwrite modes; the device does not report its mode, and under \
             direct-XIP or RAM load the next reset runs the newest valid image without a mark)\n"
        ),
        "{said}"
    );
    assert_eq!(json(cli(&s).arg("status"))["images"][0]["mode_reported"], false);
    // …and it does: the newer image runs after a reset, unmarked.
    cli(&s).arg("reset").assert().success();
    let after = status_after_reset(&s);
    assert!(after.starts_with("image 0 runs 1.2.0"), "{after}");
}
