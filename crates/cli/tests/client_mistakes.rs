//! The virtual device as the referee of a hand-written client: `tests/mistakes/bad_client.py`
//! makes the mistakes people make when they write their own SMP client (the Bleak script this
//! project started from), one scenario each and all at once, against `smpflash sim --udp` and
//! `smpflash sim --bluez`. For each, the sim's output must name the mistake (its kind, in
//! brackets), and `smpflash status` must describe what the client left on the device. The
//! script itself always "completes", as the original did.
//!
//! And the other way round: smpflash's own traffic (here over UDP and the sim's pty; over BLE in
//! `bleak_interop.rs`), smpclient's and mcumgr-toolkit's (in their interop tests) draw no
//! warning.
//!
//! Needs `pip install -r tests/requirements.txt` (cbor2; bleak for BLE) and dbus-daemon; without
//! them these tests fail rather than skip.

mod support;

use std::process::Command;
use std::time::Duration;

use support::{client_mistakes, require_python, root, run_with_timeout, SimProcess};

const SCRIPT: &str = "tests/mistakes/bad_client.py";
const IMAGE: &str = "tests/fixtures/images/ecdsa-p256.bin";
/// The address the BlueZ emulation gives the virtual device.
const SIM_ADDRESS: &str = "C0:53:4D:50:00:01";

/// What a scenario leaves on the device, as `smpflash status` must put it.
#[derive(Debug, Clone, Copy)]
enum Left {
    /// Nothing reached the secondary slot.
    Nothing,
    /// The new image sits in slot 1, unmarked.
    Unmarked,
    /// The new image runs under test, unconfirmed.
    UnderTest,
}

impl Left {
    /// Words `smpflash status` must say for image 0.
    fn status_words(self) -> &'static [&'static str] {
        match self {
            Left::Nothing => &["nothing has been uploaded"],
            Left::Unmarked => &["1.2.3.4", "not marked", "a reset changes nothing"],
            Left::UnderTest => &["1.2.3.4", "under test", "reverts"],
        }
    }
}

/// One scenario: the mistake kinds the sim must name over UDP and over BLE (empty: the
/// scenario does not apply to that link), and what it leaves on the device.
struct Case {
    scenario: &'static str,
    udp: &'static [&'static str],
    ble: &'static [&'static str],
    left: Left,
}

/// What a scenario leaves when it differs by link: a client that does not wait loses its
/// requests over UDP (the device drops what it has no buffer for), while the BLE link holds
/// them back (the radio's flow control) and the upload goes through.
fn left_on(link: Link, case: &Case) -> Left {
    match (link, case.scenario) {
        (Link::Ble, "no-wait") => Left::Unmarked,
        _ => case.left,
    }
}

const CASES: &[Case] = &[
    Case {
        scenario: "swapped-header",
        udp: &["header-length"],
        ble: &["header-length"],
        left: Left::Nothing,
    },
    Case {
        scenario: "little-endian-group",
        udp: &["unknown-group"],
        ble: &["unknown-group"],
        left: Left::Nothing,
    },
    Case { scenario: "wrong-op", udp: &["wrong-op"], ble: &["wrong-op"], left: Left::Nothing },
    Case { scenario: "json-body", udp: &["body-not-cbor"], ble: &["body-not-cbor"], left: Left::Nothing },
    Case {
        scenario: "no-wait",
        udp: &["too-many-in-flight"],
        ble: &["too-many-in-flight"],
        left: Left::Nothing,
    },
    Case {
        scenario: "confirm-as-params",
        udp: &["confirm-as-params"],
        ble: &["confirm-as-params"],
        left: Left::Unmarked,
    },
    Case {
        scenario: "reset-as-state-write",
        udp: &["state-write-of-nothing"],
        ble: &["state-write-of-nothing"],
        left: Left::Unmarked,
    },
    Case {
        scenario: "mtu-chunk",
        udp: &["frame-larger-than-buffer"],
        ble: &["write-longer-than-mtu"],
        left: Left::Nothing,
    },
    Case {
        scenario: "no-len",
        udp: &["upload-without-len"],
        ble: &["upload-without-len"],
        left: Left::Nothing,
    },
    Case {
        scenario: "not-an-image",
        udp: &["upload-not-an-image"],
        ble: &["upload-not-an-image"],
        left: Left::Nothing,
    },
    Case { scenario: "offset-skip", udp: &["offset-skips"], ble: &["offset-skips"], left: Left::Nothing },
    Case {
        scenario: "offset-repeat",
        udp: &["offset-repeats"],
        ble: &["offset-repeats"],
        left: Left::Nothing,
    },
    Case {
        scenario: "confirm-without-hash",
        udp: &["confirm-without-hash"],
        ble: &["confirm-without-hash"],
        left: Left::Unmarked,
    },
    Case {
        scenario: "reset-unmarked",
        udp: &["reset-nothing-marked"],
        ble: &["reset-nothing-marked"],
        left: Left::Unmarked,
    },
    Case {
        scenario: "test-no-confirm",
        udp: &["test-never-confirmed"],
        ble: &["test-never-confirmed"],
        left: Left::UnderTest,
    },
    Case { scenario: "no-notify", udp: &[], ble: &["answer-unheard"], left: Left::Nothing },
    Case {
        scenario: "all",
        udp: &["header-length", "unknown-group"],
        ble: &["header-length"],
        left: Left::Nothing,
    },
];

/// Which link a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Udp,
    Ble,
}

fn start(link: Link, scenario: &str) -> SimProcess {
    let mut args = match link {
        Link::Udp => vec!["--udp", "127.0.0.1:0", "--time-scale", "0"],
        // Zephyr's default 384-byte buffers over the default phone link (MTU 498), real time.
        Link::Ble => vec!["--bluez", "--profile", "zephyr-default", "--udp", "127.0.0.1:0"],
    };
    if link == Link::Ble && scenario == "no-wait" {
        // A slow flash (100 µs a byte, an external SPI part): the radio brings a request in
        // ~2 ms, the device takes ~25 ms to write one, so a client that does not wait for
        // answers surely finds every buffer busy (with fast flash it only may).
        args.extend(["--set", "program_ns_per_byte=100000"]);
    }
    SimProcess::start(&args)
}

/// Waits until the device is up after every reset it made (the summary and `status` need it).
fn wait_until_up(sim: &SimProcess) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let out = sim.output();
        if out.matches("device up").count() >= out.matches("device resetting").count()
            || std::time::Instant::now() > deadline
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `smpflash --udp <sim> status`: its text, or why it failed.
fn status(sim: &SimProcess) -> String {
    let out = run_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_smpflash")).args(["--udp", &sim.udp, "status"]).current_dir(root()),
        Duration::from_secs(60),
    );
    if out.status.success() {
        String::from_utf8_lossy(&out.stdout).into_owned()
    } else {
        format!("smpflash status failed: {}", String::from_utf8_lossy(&out.stderr))
    }
}

/// Runs one scenario on a fresh sim; returns a description of what went wrong, if anything.
fn run_case(link: Link, case: &Case) -> Option<String> {
    let expected = if link == Link::Udp { case.udp } else { case.ble };
    if expected.is_empty() {
        return None;
    }
    let sim = start(link, case.scenario);
    let mut cmd = Command::new("python3");
    cmd.arg(root().join(SCRIPT)).args(["--scenario", case.scenario, "--image"]).arg(root().join(IMAGE));
    match link {
        Link::Udp => cmd.args(["--udp", &sim.udp]),
        Link::Ble => {
            cmd.args(["--ble", SIM_ADDRESS]).env("DBUS_SYSTEM_BUS_ADDRESS", sim.bus.as_deref().unwrap())
        }
    };
    let out = run_with_timeout(cmd.current_dir(root()), Duration::from_secs(120));
    let script = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    wait_until_up(&sim);
    let state = status(&sim);
    let output = sim.stop();
    let mut wrong = Vec::new();
    if !script.contains("DFU process completed!") {
        wrong.push("the script did not run to its end".to_string());
    }
    for kind in expected {
        if !output.contains(&format!("mistake [{kind}]")) {
            wrong.push(format!("the sim did not name [{kind}]"));
        }
    }
    let image0 = state.lines().find(|l| l.contains("image 0")).unwrap_or_default().to_string();
    for words in left_on(link, case).status_words() {
        if !image0.contains(words) {
            wrong.push(format!("smpflash status does not say {words:?} of image 0"));
        }
    }
    println!("--- {link:?} {}\n{script}--- status\n{state}--- sim\n{output}", case.scenario);
    (!wrong.is_empty()).then(|| {
        format!(
            "{link:?} {}: {}\n--- script\n{script}--- smpflash status\n{state}--- sim\n{output}",
            case.scenario,
            wrong.join("; ")
        )
    })
}

fn run_all(link: Link) {
    require_python(if link == Link::Ble { "cbor2, bleak" } else { "cbor2" });
    let failures: Vec<String> = CASES.iter().filter_map(|c| run_case(link, c)).collect();
    assert!(failures.is_empty(), "{} scenario(s) failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn the_sim_names_each_mistake_of_a_hand_written_client_over_udp() {
    run_all(Link::Udp);
}

#[test]
fn the_sim_names_each_mistake_of_a_hand_written_client_over_bluez() {
    run_all(Link::Ble);
}

/// smpflash's own update, over UDP and over the sim's serial console, draws no warning, and the
/// summary says what the device will do next.
#[test]
fn smpflash_traffic_draws_no_warning() {
    let sim = SimProcess::start(&["--udp", "127.0.0.1:0", "--time-scale", "0", "--pty"]);
    let pty = sim.pty.clone().expect("a pty");
    for link in [["--udp", sim.udp.as_str()], ["--serial", pty.as_str()]] {
        for args in [&["dfu", IMAGE][..], &["image", "list"], &["echo", "hi"], &["params"], &["info"]] {
            let out = run_with_timeout(
                Command::new(env!("CARGO_BIN_EXE_smpflash")).args(link).args(args).current_dir(root()),
                Duration::from_secs(120),
            );
            assert!(
                out.status.success(),
                "smpflash {} {}: {}",
                link.join(" "),
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    let output = sim.stop();
    let found = client_mistakes(&output);
    assert!(found.is_empty(), "the sim warned about smpflash's traffic:\n{}\n{output}", found.join("\n"));
    assert!(output.contains("upload(s) completed"), "{output}");
    assert!(output.contains("next boot, image 0: 1.2.3.4 runs, confirmed"), "{output}");
}
