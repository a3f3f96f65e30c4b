//! Every device command of the CLI, against the virtual device running as its own process
//! (`smpflash sim`) and reached over a real UDP socket, plus the in-process `--sim` paths.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command as Std, Stdio};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// `smpflash sim` in the background; killed on drop.
struct Sim {
    child: Child,
    addr: String,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sim(profile: &str) -> Sim {
    sim_with(profile, &[]).0
}

/// Starts `smpflash sim` and returns it with the pty path when `--pty` is among `extra`.
fn sim_with(profile: &str, extra: &[&str]) -> (Sim, Option<String>) {
    sim_timed(profile, "0", extra)
}

/// [`sim_with`] with the flash time scaled by `time_scale` ("1": the profile's real timing).
fn sim_timed(profile: &str, time_scale: &str, extra: &[&str]) -> (Sim, Option<String>) {
    let mut child = Std::new(assert_cmd::cargo::cargo_bin("smpflash"))
        .args(["sim", "--profile", profile, "--udp", "127.0.0.1:0", "--time-scale", time_scale])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let want_pty = extra.contains(&"--pty");
    let (mut addr, mut pty) = (None, None);
    while addr.is_none() || (want_pty && pty.is_none()) {
        let line = lines.next().expect("sim printed where to connect").unwrap();
        if let Some(rest) = line.strip_prefix("SMP over UDP: ") {
            addr = Some(rest.split_whitespace().next().unwrap().to_string());
        }
        if let Some(rest) = line.strip_prefix("SMP over serial: ") {
            pty = Some(rest.split_whitespace().next().unwrap().to_string());
        }
    }
    // Keep draining its output so it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (Sim { child, addr: addr.unwrap() }, pty)
}

fn cli(sim: &Sim) -> Command {
    let mut c = Command::cargo_bin("smpflash").unwrap();
    c.args(["--udp", &sim.addr]).current_dir(root());
    c
}

fn json(c: &mut Command) -> Value {
    let out = c.arg("--json").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn os_commands() {
    let s = sim("nrf5340");
    cli(&s).args(["echo", "hello there"]).assert().success().stdout("hello there\n");
    assert_eq!(json(cli(&s).args(["echo", "x"]))["echo"], "x");
    cli(&s)
        .arg("params")
        .assert()
        .success()
        .stdout(predicate::str::contains("buf_size 2475 bytes, buf_count 4"));
    let p = json(cli(&s).arg("params"));
    assert_eq!((p["buf_size"].as_u64(), p["buf_count"].as_u64()), (Some(2475), Some(4)));
    cli(&s).arg("info").assert().success().stdout(predicate::str::contains("bootloader:  MCUboot"));
    let i = json(cli(&s).arg("info"));
    assert_eq!(i["mode"], "swap-without-scratch");
    assert!(i["application"].as_str().unwrap().contains("Zephyr"));
}

#[test]
fn image_commands_step_by_step() {
    let s = sim("zephyr-default");
    let list = json(cli(&s).args(["image", "list"]));
    assert_eq!(list["images"].as_array().unwrap().len(), 1);
    cli(&s).args(["image", "list"]).assert().success().stdout(predicate::str::contains("active confirmed"));

    cli(&s).args(["image", "upload", "tests/fixtures/images/ecdsa-p256.bin"]).assert().success();
    let list = json(cli(&s).args(["image", "list"]));
    let new = list["images"][1]["hash"].as_str().unwrap().to_string();
    assert_eq!(list["images"][1]["version"], "1.2.3.4");

    // a prefix with separators is enough when unambiguous
    let prefix = format!("{}:{}", &new[..4], &new[4..10]);
    let marked = json(cli(&s).args(["image", "test", &prefix]));
    assert_eq!(marked["images"][1]["pending"], true);
    // erasing a pending slot is refused with the device's own words
    cli(&s).args(["image", "erase"]).assert().code(4).stderr(predicate::str::contains("MGMT_ERR_EBADSTATE"));
    cli(&s).arg("reset").assert().success();
    // the device comes back after its boot; the next command reaches it
    std::thread::sleep(std::time::Duration::from_millis(500));
    let list = json(cli(&s).args(["image", "list"]));
    assert_eq!(list["images"][0]["hash"], new.as_str());
    assert_eq!(list["images"][0]["confirmed"], false);
    let confirmed = json(cli(&s).args(["image", "confirm"]));
    assert_eq!(confirmed["images"][0]["confirmed"], true);
    cli(&s).args(["image", "erase"]).assert().success().stdout("slot 1 erased\n");
    assert_eq!(json(cli(&s).args(["image", "list"]))["images"].as_array().unwrap().len(), 1);
}

#[test]
fn dfu_then_dfu_again_is_a_no_op() {
    let s = sim("zephyr-default");
    let report = json(cli(&s).args(["dfu", "examples/app-update-v1.1.0.bin"]));
    assert_eq!(report["mode"], "test-and-confirm");
    assert_eq!(report["reset"], true);
    assert_eq!(report["uploads"][0]["matched"], true);
    let after = &report["after"][0];
    assert_eq!(
        (after["version"].as_str(), after["active"].as_bool(), after["confirmed"].as_bool()),
        (Some("1.1.0"), Some(true), Some(true))
    );
    let again = json(cli(&s).args(["dfu", "examples/app-update-v1.1.0.bin"]));
    assert_eq!(again["reset"], false);
    let skip = &again["skipped"][0];
    assert_eq!(
        (skip["reason"].as_str(), skip["version"].as_str()),
        (Some("already_running"), Some("1.1.0")),
        "{skip}"
    );
}

#[test]
fn wrong_image_number_is_refused_before_anything_is_written() {
    let s = sim("zephyr-default");
    cli(&s)
        .args(["dfu", "--image", "1", "examples/app-update-v1.1.0.bin"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("refusing to update"))
        .stderr(predicate::str::contains("is for image 1, but the device has image(s) [0]"));
}

#[test]
fn in_process_virtual_device_over_each_simulated_medium() {
    for link in ["udp", "ble-phone-fast", "ble-legacy", "serial-1000000"] {
        let mut c = Command::cargo_bin("smpflash").unwrap();
        c.current_dir(root()).args(["--sim", "--sim-time-scale", "0", "--sim-link", link]);
        if link == "ble-legacy" {
            // 1.6 kB/s: keep this one short
            c.args(["echo", "legacy"]).assert().success().stdout("legacy\n");
            continue;
        }
        c.args(["dfu", "examples/dfu_application.zip"]);
        let report = json(&mut c);
        assert_eq!(report["mode"], "confirm-only", "{link}");
        let after = report["after"].as_array().unwrap();
        for image in [0, 1] {
            let running = after.iter().find(|s| s["image"] == image && s["active"] == true).unwrap();
            assert_eq!(running["version"], "1.1.0", "{link}: image {image}");
        }
    }
}

#[test]
fn connection_errors_are_one_clear_sentence() {
    let mut c = Command::cargo_bin("smpflash").unwrap();
    c.args(["image", "list"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("say how to reach the device"));
    let mut c = Command::cargo_bin("smpflash").unwrap();
    c.args(["--ble", "nrf-blinky", "image", "list"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("no Bluetooth adapter found"));
    let mut c = Command::cargo_bin("smpflash").unwrap();
    c.args(["--serial", "/dev/does-not-exist", "echo", "x"]).assert().code(3);
    // nobody listens on this port: the request times out
    let mut c = Command::cargo_bin("smpflash").unwrap();
    c.args(["--udp", "127.0.0.1:9", "--timeout", "0.3", "echo", "x"])
        .assert()
        .code(6)
        .stderr(predicate::str::contains("no response from the device"));
}

#[test]
fn every_device_command_over_serial_to_smpflash_sim() {
    let (s, pty) = sim_with("zephyr-default", &["--pty"]);
    let pty = pty.unwrap();
    let serial = || {
        let mut c = Command::cargo_bin("smpflash").unwrap();
        c.args(["--serial", &pty]).current_dir(root());
        c
    };
    serial().args(["echo", "hi"]).assert().success().stdout("hi\n");
    assert_eq!(json(serial().arg("params"))["buf_size"], 384);
    assert_eq!(json(serial().arg("info"))["bootloader"], "MCUboot");
    let report = json(serial().args(["dfu", "examples/app-update-v1.1.0.bin"]));
    assert_eq!(report["after"][0]["version"], "1.1.0");
    // the same device, seen over its other front end
    assert_eq!(json(cli(&s).args(["image", "list"]))["images"][0]["version"], "1.1.0");
    serial().args(["image", "upload", "tests/fixtures/images/hash-only.bin"]).assert().success();
    serial().args(["image", "erase"]).assert().success();
    serial().arg("reset").assert().success();
}

/// `smpflash sim --pty --pty-framing raw` speaks Zephyr's raw UART SMP: smpflash detects it
/// (`-v` says so), takes it with `--framing raw`, and a whole DFU (with its reset and
/// reconnection) goes through it.
#[test]
fn raw_serial_framing_detected_or_given() {
    let (_s, pty) = sim_with("zephyr-default", &["--pty", "--pty-framing", "raw"]);
    let pty = pty.unwrap();
    let serial = || {
        let mut c = Command::cargo_bin("smpflash").unwrap();
        c.args(["--serial", &pty]).current_dir(root());
        c
    };
    serial()
        .args(["-v", "echo", "hi"])
        .assert()
        .success()
        .stdout("hi\n")
        .stderr(predicate::str::contains("serial framing detected: raw"));
    serial().args(["--framing", "raw", "echo", "given"]).assert().success().stdout("given\n");
    assert_eq!(json(serial().args(["--framing", "raw", "params"]))["buf_size"], 384);
    let report = json(serial().args(["dfu", "examples/app-update-v1.1.0.bin"]));
    assert_eq!(report["after"][0]["version"], "1.1.0");
    serial().args(["--framing", "bogus", "echo", "x"]).assert().code(2);
}

#[test]
fn a_terminal_shows_the_progress_bar() {
    // `script` gives the command a real pty as its terminal, as a user's shell would.
    let bin = assert_cmd::cargo::cargo_bin("smpflash");
    let cmd = format!(
        "{} --sim --sim-time-scale 0 --sim-link ble-phone-slow image upload examples/app-update-v1.1.0.bin",
        bin.display()
    );
    let out = Std::new("script").args(["-qefc", &cmd, "/dev/null"]).current_dir(root()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    // indicatif redraws the bar in place with carriage returns / cursor moves, and shows the
    // bar characters and a byte rate; the plain-line fallback does not
    assert!(text.contains("=>") || text.contains("=="), "no bar drawn: {text}");
    assert!(text.contains("KiB/s"), "{text}");
    assert!(text.contains('\u{1b}') || text.contains('\r'), "no in-place redraw: {text}");
}

#[test]
fn json_mode_keeps_progress_as_json_lines_on_stderr() {
    let s = sim("zephyr-default");
    let out = cli(&s).args(["--json", "dfu", "examples/app-update-v1.1.0.bin"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // stdout: exactly the one result document
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["route"], "application");
    // stderr: an event object per line, in the order the flow ran (a `tracing` warning, had
    // there been one, is the only other kind of line, as docs/cli.md says)
    let events: Vec<Value> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?} is not JSON: {e}")))
        .collect();
    let steps: Vec<&str> =
        events.iter().filter(|e| e["event"] == "step").filter_map(|e| e["step"]["step"].as_str()).collect();
    assert_eq!(
        steps,
        ["inspect", "upload", "verify_upload", "mark", "reset", "verify_running", "confirm"],
        "{events:?}"
    );
    let progress: Vec<u64> =
        events.iter().filter(|e| e["event"] == "progress").filter_map(|e| e["acked"].as_u64()).collect();
    assert!(progress.len() > 2 && progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    let finished = events.iter().find(|e| e["event"] == "upload_finished").expect("upload_finished");
    assert_eq!(finished["bytes"], *progress.last().unwrap());
}

#[test]
fn a_failed_update_in_json_mode_says_why_and_exits_with_its_code() {
    let s = sim("zephyr-default");
    let out = cli(&s).args(["--json", "dfu", "tests/fixtures/images/encrypted.bin"]).output().unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((doc["exit_code"].as_u64(), doc["verdict"].as_str()), (Some(5), Some("invalid")));
    assert!(doc["error"].as_str().unwrap().contains("MCUboot rejected it at boot"), "{doc}");
}

#[test]
fn one_link_at_most_and_names_from_one_list() {
    // two links: clap refuses the pair before anything is opened
    let mut c = Command::cargo_bin("smpflash").unwrap();
    c.args(["--udp", "127.0.0.1:9", "--serial", "/dev/null", "echo", "x"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot be used with"));
    // an unknown link or profile: the message lists the names, taken from the enums
    let mut c = Command::cargo_bin("smpflash").unwrap();
    c.args(["--sim", "--sim-link", "carrier-pigeon", "echo", "x"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("ble-phone-fast").and(predicate::str::contains("serial-115200")));
    let mut c = Command::cargo_bin("smpflash").unwrap();
    c.args(["--sim=nrf9160", "echo", "x"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("zephyr-default").and(predicate::str::contains("mcuboot-recovery")));
    let mut c = Command::cargo_bin("smpflash").unwrap();
    c.args(["--sim", "dfu", "--mode", "yolo", "examples/app-update-v1.1.0.bin"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("test-and-confirm").and(predicate::str::contains("upload-only")));
}

#[test]
fn image_erase_after_an_upload_waits_for_the_erase_with_default_options() {
    // Real flash timing: the nRF5340 profile erases a sector in 85 ms and Zephyr erases the
    // whole slot before it answers. With 0x48000-byte slots (72 sectors) that is 6.1 s, past
    // the ordinary 5 s timeout ("no response ... to image erase" before); image erase has
    // its own 60 s. (The profile's own 0xF0000-byte slots would take 20.4 s.)
    let (s, _) = sim_timed("nrf5340", "1", &["--set", "slot_size=0x48000"]);
    cli(&s).args(["image", "upload", "tests/fixtures/images/ecdsa-p256.bin"]).assert().success();
    let images = |s: &Sim| json(cli(s).args(["image", "list"]))["images"].as_array().unwrap().len();
    let before = images(&s);
    let started = std::time::Instant::now();
    cli(&s).args(["image", "erase"]).assert().success().stdout("slot 1 erased\n");
    let took = started.elapsed();
    assert!(
        took > std::time::Duration::from_secs(5),
        "the erase took {took:?}: the test no longer shows the point"
    );
    assert_eq!(images(&s), before - 1, "the uploaded image is gone");
}

#[test]
fn verbose_logs_into_a_pipe_have_no_colour_codes() {
    let s = sim("zephyr-default");
    let out = cli(&s).args(["-v", "echo", "hi"]).output().unwrap();
    assert!(out.status.success());
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("echo") && log.contains("DEBUG"), "-v logs every frame: {log}");
    assert!(!out.stderr.contains(&0x1B), "ANSI escapes in a pipe: {log:?}");
}

#[test]
fn buf_size_sizes_recovery_uploads_and_refuses_requests_that_do_not_fit() {
    // MCUboot's serial recovery reports no buffers: 512-byte ones given, chunks fill them
    // (before: 384 assumed, 304-byte chunks whatever --chunk said).
    let upload = |extra: &[&str]| {
        let mut c = Command::cargo_bin("smpflash").unwrap();
        c.current_dir(root()).args(["--sim=mcuboot-recovery", "--sim-time-scale", "0", "--sim-link", "udp"]);
        c.args(extra).args(["image", "upload", "tests/fixtures/images/ecdsa-p256.bin"]);
        json(&mut c)["uploads"][0]["chunk"].as_u64().unwrap()
    };
    assert!(upload(&[]) < 384);
    let chunk = upload(&["--buf-size", "512"]);
    assert!((480..512).contains(&chunk), "{chunk}");
    assert_eq!(upload(&["--chunk", "450"]), 450);
    // A request larger than the given buffer fails at once, naming both sizes.
    let s = sim("zephyr-default");
    cli(&s)
        .args(["--buf-size", "128", "echo", &"x".repeat(200)])
        .assert()
        .failure()
        .stderr(predicate::str::contains("213 bytes").and(predicate::str::contains("128-byte buffer")));
    cli(&s).args(["--buf-size", "12x"]).arg("params").assert().code(2);
}

#[test]
fn reset_with_boot_mode_and_dfu_in_recovery_on_a_ram_load_device() {
    let s = sim("ram-load");
    // RAM_LOAD inferred from the image, no marks, the new image runs, and the note says why.
    let out = cli(&s).args(["--json", "dfu", "examples/app-update-v1.2.0-ram-load.bin"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(r#""note":"newest_valid_boots","evidence":"ram-load-image""#), "{stderr}");
    assert!(!stderr.contains(r#""step":"mark""#), "{stderr}");

    // `reset --boot-mode 1`: the bootloader answers (echo rc 8), and a dfu goes through it.
    assert_eq!(json(cli(&s).args(["reset", "--boot-mode", "1"]))["reset"], true);
    std::thread::sleep(std::time::Duration::from_millis(500));
    cli(&s).args(["echo", "x"]).assert().code(4).stderr(predicate::str::contains("rc 8"));
    // 1.1.0 written into the primary slot is older than the 1.2.0 in the secondary: RAM_LOAD
    // boots 1.2.0, which the check after leaving recovery must report, not "done".
    cli(&s)
        .args(["dfu", "examples/app-update-v1.1.0.bin"])
        .assert()
        .code(5)
        .stderr(predicate::str::contains("serial recovery"))
        .stderr(predicate::str::contains("runs version 1.2.0, not the image written to its primary slot"));

    // `dfu --recovery` in one command on a fresh device: enter, update, reset, verified.
    let s = sim("ram-load");
    let out =
        cli(&s).args(["--json", "dfu", "--recovery", "examples/app-update-v1.1.0.bin"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["route"], "serial-recovery");
    let running = report["after"].as_array().unwrap().iter().find(|s| s["active"] == true).unwrap().clone();
    assert_eq!((running["slot"].as_u64(), running["version"].as_str()), (Some(0), Some("1.1.0")));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(r#""step":"enter_recovery""#) && stderr.contains(r#""step":"verify_booted""#),
        "{stderr}"
    );
}

#[test]
fn line_delay_paces_a_multi_line_packet() {
    let (_s, pty) = sim_with("zephyr-default", &["--pty"]);
    let pty = pty.unwrap();
    // A 300-character echo is a packet of 4 console lines: 3 pauses after the first lines.
    let text = "p".repeat(300);
    let started = std::time::Instant::now();
    Command::cargo_bin("smpflash")
        .unwrap()
        .args(["--serial", &pty, "--framing", "console", "--line-delay", "200", "echo", &text])
        .assert()
        .success()
        .stdout(format!("{text}\n"));
    // A lower bound only: the pauses happened (an upper bound would time the machine).
    assert!(started.elapsed() >= std::time::Duration::from_millis(600), "{:?}", started.elapsed());
    let mut c = Command::cargo_bin("smpflash").unwrap();
    c.args(["--serial", &pty, "--line-delay", "soon", "echo", "x"]).assert().code(2);
}
