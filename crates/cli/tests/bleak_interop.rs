//! `smpflash sim --bluez` against Bleak, a BlueZ client written independently of smpflash (and
//! of btleplug): `tests/interop/bleak_smp.py` scans, connects, subscribes, echoes and uploads
//! an image through the emulated `org.bluez` on the private bus the sim starts.
//!
//! Needs dbus-daemon (`.ci/run` installs it) and `pip install -r tests/requirements.txt`;
//! without them these tests fail rather than skip, so a missing tool cannot pass for a working
//! emulation.

mod support;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::{client_mistakes, require_python, root, run_with_timeout, SimProcess};

const SCRIPT: &str = "tests/interop/bleak_smp.py";
const IMAGE: &str = "tests/fixtures/images/ecdsa-p256.bin";

fn require_bleak() {
    require_python("bleak, cbor2");
}

/// `smpflash sim --bluez` on a private bus.
struct Sim {
    process: SimProcess,
    address: String,
}

impl Sim {
    fn start(extra: &[&str]) -> Sim {
        let mut args =
            vec!["--bluez", "--profile", "zephyr-default", "--udp", "127.0.0.1:0", "--time-scale", "0"];
        args.extend_from_slice(extra);
        let process = SimProcess::start(&args);
        let address = process.bus.clone().expect("the sim's bus");
        Sim { process, address }
    }

    /// Stops it as SIGTERM does (so it stops its bus, prints its summary and lists the calls)
    /// and returns all it printed.
    fn stop(self) -> String {
        self.process.stop()
    }
}

/// Runs the Bleak script against a fresh sim; returns what the sim printed.
fn bleak(sim_args: &[&str], script_args: &[&str]) -> String {
    require_bleak();
    let sim = Sim::start(sim_args);
    let root = root();
    let out = run_with_timeout(
        Command::new("python3")
            .arg(root.join(SCRIPT))
            .args(script_args)
            .arg("--image")
            .arg(root.join(IMAGE))
            .env("DBUS_SYSTEM_BUS_ADDRESS", &sim.address)
            .current_dir(&root),
        Duration::from_secs(90),
    );
    let sim_output = sim.stop();
    assert_no_client_mistakes("bleak_smp.py", &sim_output);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Shown with --nocapture: what Bleak did, and the D-Bus calls the sim saw.
    println!("{stdout}{stderr}--- smpflash sim\n{sim_output}");
    assert!(
        out.status.success() && stdout.contains("==> bleak: scan, connect, echo and upload done"),
        "bleak_smp.py {} failed ({}):\n--- stdout\n{stdout}--- stderr\n{stderr}--- sim\n{sim_output}",
        script_args.join(" "),
        out.status
    );
    sim_output
}

#[test]
fn bleak_echoes_and_uploads_over_a_fragmenting_link() {
    // MTU 247: the 384-byte frames of zephyr-default go out in two writes.
    let log = bleak(&["--bluez-link", "ble-phone-slow"], &[]);
    for call in [
        "Adapter1.SetDiscoveryFilter",
        "Adapter1.StartDiscovery",
        "Device1.Connect",
        "GattCharacteristic1.StartNotify",
        "GattCharacteristic1.WriteValue",
    ] {
        assert!(log.contains(call), "Bleak never called {call}:\n{log}");
    }
}

/// The SMP traffic through BlueZ's sockets: notifications as packets of the AcquireNotify
/// socket, writes as packets on the AcquireWrite socket, over the fragmenting link.
#[test]
fn bleak_echoes_and_uploads_through_acquired_sockets() {
    let log = bleak(&["--bluez-link", "ble-phone-slow"], &["--acquire"]);
    for call in ["GattCharacteristic1.AcquireNotify", "GattCharacteristic1.AcquireWrite"] {
        assert!(log.contains(call), "Bleak never called {call}:\n{log}");
    }
    assert!(!log.contains("StartNotify"), "{log}");
}

#[test]
fn bleak_pairs_when_the_device_requires_it() {
    let log = bleak(&["--bluez-require-pairing"], &["--pair"]);
    assert!(log.contains("Device1.Pair"), "{log}");
}

/// intercreate smpclient's BLE transport (`SMPBLETransport`, Bleak underneath) learns the MTU
/// with `AcquireWrite` while connecting, then does a whole update: upload, test, reset,
/// reconnect, confirm (`tests/interop/smpclient_dfu.py --ble`).
#[test]
fn smpclient_updates_over_bluez_after_acquire_write() {
    require_python("smpclient.transport.ble, bleak");
    // MTU 247: smpclient must write 244-byte values, which it only knows from AcquireWrite.
    let sim = Sim::start(&["--bluez-link", "ble-phone-slow"]);
    let root = root();
    let out = run_with_timeout(
        Command::new("python3")
            .arg(root.join("tests/interop/smpclient_dfu.py"))
            .args(["--ble", "C0:53:4D:50:00:01", "--expect-mtu", "247", "--image"])
            .arg(root.join(IMAGE))
            .env("DBUS_SYSTEM_BUS_ADDRESS", &sim.address)
            .current_dir(&root),
        Duration::from_secs(120),
    );
    let log = sim.stop();
    assert_no_client_mistakes("smpclient over BLE", &log);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}{stderr}--- smpflash sim\n{log}");
    assert!(
        out.status.success() && stdout.contains("==> update complete"),
        "smpclient_dfu.py --ble failed ({}):\n--- stdout\n{stdout}--- stderr\n{stderr}--- sim\n{log}",
        out.status
    );
    for call in ["GattCharacteristic1.AcquireWrite", "GattCharacteristic1.StartNotify", "Device1.Disconnect"]
    {
        assert!(log.contains(call), "smpclient never called {call}:\n{log}");
    }
    // It reconnected after the reset: two connections, each asking for the MTU.
    assert!(
        log.contains("2  Device1.Connect") && log.contains("2  GattCharacteristic1.AcquireWrite"),
        "{log}"
    );
}

const SIM_ADDRESS: &str = "C0:53:4D:50:00:01";

/// `smpflash --ble <the sim> ARGS` against the sim's bus.
fn smpflash_ble(sim: &Sim, args: &[&str]) -> Output {
    run_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_smpflash"))
            .args(["--ble", SIM_ADDRESS])
            .args(args)
            .env("DBUS_SYSTEM_BUS_ADDRESS", &sim.address)
            .current_dir(root()),
        Duration::from_secs(90),
    )
}

/// What no user may see: a dependency's panic and its backtrace hint.
fn assert_no_panic_text(args: &[&str], out: &Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for text in ["panicked", "backtrace", "RUST_BACKTRACE", "messagestream"] {
        assert!(
            !stderr.contains(text) && !stdout.contains(text),
            "smpflash {} printed {text:?}:\n--- stdout\n{stdout}--- stderr\n{stderr}",
            args.join(" ")
        );
    }
}

/// Bleak scans for the sim's device; true if it saw it advertise.
fn bleak_finds_the_device(sim: &Sim) -> (bool, String) {
    let out = run_with_timeout(
        Command::new("python3")
            .arg(root().join("tests/interop/bleak_scan.py"))
            .args(["--address", SIM_ADDRESS, "--timeout", "5"])
            .env("DBUS_SYSTEM_BUS_ADDRESS", &sim.address)
            .current_dir(root()),
        Duration::from_secs(30),
    );
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success() && text.contains("==> found"), text)
}

/// smpflash disconnects before it exits, whatever the outcome, so a BlueZ scanner finds the
/// device right after: a connected Zephyr device does not advertise, and BlueZ keeps a
/// connection after its client exited.
#[test]
fn the_device_advertises_again_after_every_smpflash_command() {
    require_bleak();
    let sim = Sim::start(&[]);
    let commands: [(&[&str], bool); 4] = [
        (&["image", "list"], true),
        (&["info"], true),
        (&["echo", "still there?"], true),
        // A device error: the command fails, and must still disconnect.
        (&["image", "confirm", "deadbeef"], false),
    ];
    for round in 1..=4 {
        for (args, succeeds) in commands {
            let out = smpflash_ble(&sim, args);
            assert_eq!(
                out.status.success(),
                succeeds,
                "round {round}: smpflash {}: {}\n{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            assert_no_panic_text(args, &out);
            let (found, scan) = bleak_finds_the_device(&sim);
            assert!(
                found,
                "round {round}: after smpflash {} Bleak did not find the device (left connected?):\n{scan}",
                args.join(" ")
            );
        }
    }
    let log = sim.stop();
    assert!(log.contains("16  Device1.Disconnect"), "smpflash did not disconnect every time:\n{log}");
}

/// No panic text from a dependency (bluez-async's messagestream.rs) reaches the user, over
/// many BLE commands, a DFU with its reset and reconnection included.
#[test]
fn ble_commands_print_no_panic_text() {
    let sim = Sim::start(&[]);
    let images = [IMAGE, "tests/fixtures/images/hash-only.bin"];
    for round in 0..3 {
        let image = images[round % 2];
        let runs: [&[&str]; 4] = [&["dfu", image], &["info"], &["image", "list"], &["echo", "hello"]];
        for args in runs {
            let out = smpflash_ble(&sim, args);
            assert!(
                out.status.success(),
                "round {round}: smpflash {}: {}\n{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            assert_no_panic_text(args, &out);
        }
    }
    // smpflash's own BLE traffic, DFUs included, is what the device's referee calls correct.
    assert_no_client_mistakes("smpflash --ble", &sim.stop());
}

/// The virtual device found no mistake in a correct client's traffic.
fn assert_no_client_mistakes(client: &str, sim_output: &str) {
    let found = client_mistakes(sim_output);
    assert!(found.is_empty(), "the sim warned about {client}'s traffic:\n{}", found.join("\n"));
}

/// Ctrl-C in the middle of an upload: smpflash stops, says so (exit code 130), and still
/// disconnects first, so the device advertises for the next tool.
#[test]
fn ctrl_c_during_an_upload_disconnects_before_exiting() {
    require_bleak();
    // MTU 23: the upload takes long enough to be interrupted.
    let sim = Sim::start(&["--bluez-link", "ble-legacy"]);
    let child = Command::new(env!("CARGO_BIN_EXE_smpflash"))
        .args(["--ble", SIM_ADDRESS, "image", "upload", IMAGE])
        .env("DBUS_SYSTEM_BUS_ADDRESS", &sim.address)
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run smpflash");
    // Until the link is up and the upload under way.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !sim_is_busy(&sim) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("error: interrupted"), "{stderr}");
    assert_no_panic_text(&["image", "upload"], &out);
    let (found, scan) = bleak_finds_the_device(&sim);
    assert!(found, "after Ctrl-C Bleak did not find the device (left connected?):\n{scan}");
    let log = sim.stop();
    assert!(log.contains("Device1.Disconnect"), "{log}");
}

/// Whether the sim saw a connection (its log of D-Bus calls is printed only at the end, so
/// ask the bus: the device object reports Connected).
fn sim_is_busy(sim: &Sim) -> bool {
    Command::new("dbus-send")
        .args([
            &format!("--bus={}", sim.address),
            "--print-reply",
            "--dest=org.bluez",
            "/org/bluez/hci0/dev_C0_53_4D_50_00_01",
            "org.freedesktop.DBus.Properties.Get",
            "string:org.bluez.Device1",
            "string:ServicesResolved",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("boolean true"))
        .unwrap_or(false)
}
