//! The fs, shell, stat, settings, enum, os and storage commands of the CLI, against the virtual
//! device running as its own process (`smpflash sim`) over a real UDP socket: text, `--json`
//! and exit codes.

mod support;

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;
use support::SimProcess;

fn sim() -> SimProcess {
    SimProcess::start(&["--profile", "nrf5340", "--udp", "127.0.0.1:0", "--time-scale", "0"])
}

fn cli(sim: &SimProcess) -> Command {
    let mut c = Command::cargo_bin("smpflash").unwrap();
    c.args(["--udp", &sim.udp]);
    c
}

fn json(c: &mut Command) -> Value {
    let out = c.arg("--json").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn files_up_down_stat_hash_and_errors() {
    let s = sim();
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("in.bin");
    let back = dir.path().join("out.bin");
    let bytes: Vec<u8> = (0..50_000u32).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(&local, &bytes).unwrap();
    let up = json(cli(&s).args(["fs", "upload"]).arg(&local).arg("/lfs1/data.bin"));
    assert_eq!(up["upload"]["bytes"], 50_000);
    assert_eq!(up["upload"]["verified"]["kind"], "sha256");
    let sha = up["upload"]["verified"]["value"].as_str().unwrap().to_string();
    cli(&s).args(["fs", "stat", "/lfs1/data.bin"]).assert().success().stdout("/lfs1/data.bin: 50000 bytes\n");
    cli(&s)
        .args(["fs", "hash", "/lfs1/data.bin", "--type", "sha256"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with(format!("{sha}  /lfs1/data.bin (sha256, 50000 bytes)")));
    let crc = json(cli(&s).args(["fs", "hash", "/lfs1/data.bin"]));
    assert_eq!(crc["type"], "crc32");
    assert_eq!(crc["output"], format!("{:08x}", crc32fast::hash(&bytes)));
    cli(&s)
        .args(["fs", "download", "/lfs1/data.bin"])
        .arg(&back)
        .assert()
        .success()
        .stdout(predicate::str::starts_with("downloaded 50000 bytes from /lfs1/data.bin"));
    assert_eq!(std::fs::read(&back).unwrap(), bytes);
    // A missing file: the device's error, named, exit 4; no local file written.
    let missing = dir.path().join("missing.bin");
    cli(&s)
        .args(["fs", "download", "/lfs1/none"])
        .arg(&missing)
        .assert()
        .code(4)
        .stderr(predicate::str::contains("FS_MGMT_ERR_FILE_NOT_FOUND"));
    assert!(!missing.exists());
    cli(&s)
        .args(["fs", "upload"])
        .arg(&local)
        .arg("/elsewhere/x")
        .assert()
        .code(4)
        .stderr(predicate::str::contains("FS_MGMT_ERR_MOUNT_POINT_NOT_FOUND"));
    cli(&s).args(["fs", "upload"]).arg(dir.path().join("nope")).arg("/lfs1/x").assert().code(2);
    let types = json(cli(&s).args(["fs", "types"]));
    assert_eq!(types["types"]["sha256"]["size"], 32);
    cli(&s).args(["fs", "close"]).assert().success().stdout("open file closed\n");
}

#[test]
fn shell_output_and_exit_code_follow_the_command() {
    let s = sim();
    cli(&s)
        .args(["shell", "exec", "--", "kernel", "version"])
        .assert()
        .success()
        .stdout("Zephyr version 4.4.0\n");
    // `--json` before the command: after `--` it would be the shell command's own argument.
    let out = cli(&s).args(["--json", "shell", "exec", "--", "kernel", "version"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["output"].as_str(), v["ret"].as_i64()), (Some("\r\nZephyr version 4.4.0\r\n"), Some(0)));
    // -ENOEXEC for an unknown command: exit 8.
    cli(&s)
        .args(["shell", "exec", "--", "bogus", "--flag"])
        .assert()
        .code(8)
        .stdout(predicate::str::contains("bogus: command not found"))
        .stderr(predicate::str::contains("command returned -8"));
    // `kernel` alone prints its subcommands and returns 1.
    cli(&s).args(["shell", "exec", "kernel"]).assert().code(1).stdout(predicate::str::contains("version"));
    cli(&s).args(["shell", "exec"]).assert().code(2);
}

#[test]
fn stat_settings_enum_os_storage_and_slots() {
    let s = sim();
    let list = json(cli(&s).args(["stat", "list"]));
    assert!(list["groups"].as_array().unwrap().iter().any(|g| g == "smp_svr_stats"));
    let st = json(cli(&s).args(["stat", "read", "smp_svr_stats"]));
    assert!(st["fields"]["ticks"].is_u64());
    cli(&s).args(["stat", "read", "nope"]).assert().code(4).stderr(predicate::str::contains("STAT_MGMT_ERR"));

    cli(&s).args(["settings", "set", "app/level", "0x2a:01"]).assert().success().stdout("app/level set\n");
    let got = json(cli(&s).args(["settings", "get", "app/level"]));
    assert_eq!(got["hex"], "2a01");
    cli(&s).args(["settings", "set", "app/name", "6869"]).assert().success();
    cli(&s).args(["settings", "get", "app/name"]).assert().success().stdout("app/name = 6869 (\"hi\")\n");
    cli(&s).args(["settings", "save"]).assert().success().stdout("settings saved\n");
    cli(&s).args(["settings", "commit"]).assert().success();
    cli(&s).args(["settings", "load"]).assert().success();
    cli(&s).args(["settings", "delete", "app/level"]).assert().success();
    cli(&s)
        .args(["settings", "get", "foo/bar"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("SETTINGS_MGMT_ERR_ROOT_KEY_NOT_FOUND"));
    cli(&s)
        .args(["settings", "set", "app/x", "zz"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a hex"));

    let groups = json(cli(&s).arg("enum"));
    let ids: Vec<u64> =
        groups["groups"].as_array().unwrap().iter().map(|g| g["group"].as_u64().unwrap()).collect();
    assert_eq!(ids, [10, 8, 1, 0, 3, 9, 2, 63]);
    cli(&s).arg("enum").assert().success().stdout(predicate::str::contains("9     shell mgmt (1 commands)"));

    let tasks = json(cli(&s).args(["os", "tasks"]));
    assert!(tasks["tasks"]["main"]["stksiz"].is_u64());
    cli(&s).args(["os", "mempool"]).assert().code(4).stderr(predicate::str::contains("MGMT_ERR_ENOTSUP"));
    cli(&s)
        .args(["os", "datetime"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("OS_MGMT_ERR_RTC_NOT_SET"));
    cli(&s)
        .args(["os", "datetime", "set", "2030-01-02T03:04:05"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("2030-01-02T03:04:0"));
    cli(&s)
        .args(["os", "datetime", "set", "soon"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("MGMT_ERR_EINVAL"));

    let slots = json(cli(&s).args(["image", "slots"]));
    assert_eq!(slots["images"][0]["slots"][1]["size"], 983_040);
    assert_eq!(json(cli(&s).args(["storage", "erase"]))["erased"], true);
}
