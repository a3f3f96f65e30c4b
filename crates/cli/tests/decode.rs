//! `smpflash decode`: offline, from arguments, a file and stdin; text and `--json`.

mod support;

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn smpflash() -> Command {
    let mut c = Command::cargo_bin("smpflash").unwrap();
    c.current_dir(support::root());
    c
}

#[test]
fn an_error_answer_from_arguments() {
    // the answer the hand-written client printed and never decoded
    smpflash()
        .args(["decode", "01 00 00 05 00 01 00 00 a1 62 72 63 03"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "fields    version 0 (SMP v1), op 1 (read-rsp), flags 0, length 5, group 1 (image), seq 0, id 0 (image state read)",
        ))
        .stdout(predicate::str::contains("body      {\"rc\": 3}"))
        .stdout(predicate::str::contains("result    rc 3 = MGMT_ERR_EINVAL: invalid argument in the request"));
    // split by the shell into one byte per argument: still one frame
    smpflash()
        .args(["decode", "0x02", "0x00", "0x00", "0x02", "0x00", "0x00", "0x00", "0x05", "0xbf", "0xff"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("arguments 1-10 (10 bytes):\n"))
        .stdout(predicate::str::contains("id 5 (reset)"));
}

#[test]
fn the_golden_file_as_text_and_json() {
    let out = smpflash().args(["decode", "--file", "tests/fixtures/frames/golden.txt"]).assert().success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(text.contains(
        "the group field holds 0x2d01, not a known MCUmgr group; read little-endian it is 301, the body's length: \
         looks like the body length written into the group field"
    ));
    assert!(text.contains("this is JSON ({\"image\": 0, \"len\": 4759"));
    assert!(text.contains("MCUmgr parameters is a read (op 0); this frame is a write (op 2)"));
    assert!(text.contains("err {group 1, rc 28} = IMG_MGMT_ERR_IMAGE_ALREADY_PENDING"));
    assert!(text.contains(", frame 2 of 2 (bytes 32-40):"));

    let out =
        smpflash().args(["--json", "decode", "--file", "tests/fixtures/frames/golden.txt"]).output().unwrap();
    assert!(out.status.success());
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let inputs = doc["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 29);
    let swapped =
        inputs.iter().find(|i| i["frames"][0]["header"]["group"] == 0x2d01 && i["bytes"] == 309).unwrap();
    let problems: Vec<&str> = swapped["frames"][0]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(problems, ["length_mismatch", "length_in_group", "key_of_another_command"]);
    let upload = &inputs[6]["frames"][0];
    assert_eq!(upload["header"]["command"], "image upload");
    assert_eq!(upload["body"]["cbor"]["len"], 4759);
    assert_eq!(upload["body"]["cbor"]["sha"].as_str().unwrap().len(), 64, "bytes as hex");
}

#[test]
fn stdin_with_labels_and_comments_and_a_direction() {
    smpflash()
        .args(["decode", "--request", "-"])
        .write_stdin("# a capture\n\n12:00:01.5 tx: 0b 00 00 01 00 00 00 05 a0\n")
        .assert()
        .success()
        .stdout(predicate::str::starts_with("stdin line 3 (9 bytes):\n"))
        .stdout(predicate::str::contains("op 3 is a write-rsp: a client sends read (0) or write (2)"));
}

#[test]
fn bad_input_is_a_usage_error() {
    smpflash()
        .args(["decode", "a1 6z"])
        .assert()
        .code(2)
        .stderr("error: argument 1: 'z' at position 4 is not a hex digit\n");
    smpflash().arg("decode").assert().code(2).stderr(predicate::str::contains("no frames to decode"));
    smpflash()
        .args(["decode", "--file", "no/such/file"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("cannot read no/such/file"));
}

#[test]
fn a_raw_serial_capture_in_the_console_framing() {
    // what `cat /dev/ttyACM0 > capture` saves: log text, packets, one corrupted packet line
    let mut capture = b"*** Booting Zephyr OS ***\r\nuart:~$ ".to_vec();
    capture.extend(smpflash_serial::encode_frame(&[0x0a, 0, 0, 1, 0, 0, 0, 5, 0xa0]).unwrap());
    capture.extend_from_slice(b"\x06\x09AAAA!!\n");
    let answer = vec![0x0b, 0, 0, 5, 0, 0, 0, 5, 0xa1, 0x62, b'r', b'c', 0x0a];
    capture.extend(smpflash_serial::encode_frame(&answer).unwrap());
    smpflash()
        .args(["decode", "-"])
        .write_stdin(capture.clone())
        .assert()
        .success()
        .stdout(predicate::str::starts_with("console packet 1 (9 bytes):\n"))
        .stdout(predicate::str::contains(
            "console packet 2: dropped by the console framing: packet line is not valid base64\n",
        ))
        .stdout(predicate::str::contains("result    rc 10 = MGMT_ERR_EBUSY: the device is busy"));
    // log text and a bare marker: nothing to decode
    smpflash()
        .args(["decode", "-"])
        .write_stdin(b"boot log\n\x06\x09".to_vec())
        .assert()
        .code(2)
        .stderr("error: the console capture holds no SMP packet\n");
}
