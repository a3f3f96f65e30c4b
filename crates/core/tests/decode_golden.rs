//! Every frame of `tests/fixtures/frames/golden.txt` (real frames between smpflash or a raw
//! client and the virtual device) decoded, and its fields checked.

use std::collections::BTreeMap;

use ciborium::Value;
use smpflash_core::decode::{self, BodyProblem, Direction, FrameReport, Problem};

/// The fixture's frames by name, each with who sent it.
fn golden() -> BTreeMap<String, (Direction, Vec<u8>)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/frames/golden.txt");
    let text = std::fs::read_to_string(path).unwrap();
    let mut frames = BTreeMap::new();
    let mut name = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# [") {
            name = Some(rest.split(']').next().unwrap().to_string());
            continue;
        }
        let Some(hex) = decode::log_line(line) else { continue };
        let direction = if line.starts_with("request:") { Direction::Request } else { Direction::Response };
        let name = name.take().unwrap_or_else(|| panic!("a frame without a name: {line}"));
        frames.insert(name, (direction, decode::parse_hex(hex).unwrap()));
    }
    frames
}

/// The header fields that say what a frame is: (version, op, group, seq, id, command).
type Said = (u8, u8, u16, u8, u8, Option<&'static str>);

fn said(r: &FrameReport) -> Said {
    let h = r.header.as_ref().unwrap();
    (h.version, h.op, h.group, h.seq, h.id, h.command)
}

fn text<'a>(r: &'a FrameReport, key: &str) -> Option<&'a str> {
    r.body.as_ref().ok()?.get(key)?.as_text()
}

fn int(r: &FrameReport, key: &str) -> Option<i128> {
    r.body.as_ref().ok()?.get(key)?.as_integer().map(i128::from)
}

/// The `images` list of a state answer as (slot, version, pending, confirmed, active, permanent).
fn slots(r: &FrameReport) -> Vec<(i128, String, bool, bool, bool, bool)> {
    let Some(Value::Array(images)) = r.body.as_ref().unwrap().get("images") else { panic!("no images") };
    images
        .iter()
        .map(|i| {
            let field = |k: &str| {
                i.as_map().unwrap().iter().find(|(key, _)| key.as_text() == Some(k)).map(|(_, v)| v)
            };
            let flag = |k: &str| field(k).and_then(Value::as_bool).unwrap_or(false);
            (
                i128::from(field("slot").unwrap().as_integer().unwrap()),
                field("version").unwrap().as_text().unwrap().to_string(),
                flag("pending"),
                flag("confirmed"),
                flag("active"),
                flag("permanent"),
            )
        })
        .collect()
}

fn one(frames: &BTreeMap<String, (Direction, Vec<u8>)>, name: &str) -> FrameReport {
    let (direction, bytes) = &frames[name];
    let mut reports = decode::inspect(bytes, Some(*direction));
    assert_eq!(reports.len(), 1, "{name}");
    let r = reports.remove(0);
    assert_eq!(r.bytes, bytes.len(), "{name}");
    r
}

#[test]
fn every_golden_frame_decodes_to_what_it_is() {
    let frames = golden();
    assert_eq!(frames.len(), 29, "the fixture's frame count");
    let clean = |name: &str| {
        let r = one(&frames, name);
        assert!(r.is_clean(), "{name}: {:?} {:?}", r.problems, r.body);
        r
    };

    let r = clean("echo-request");
    assert_eq!(said(&r), (1, 2, 0, 0, 0, Some("echo")));
    assert_eq!(text(&r, "d"), Some("hello"));
    let r = clean("echo-answer");
    assert_eq!(said(&r), (1, 3, 0, 0, 0, Some("echo")));
    assert_eq!((text(&r, "r"), r.outcome.as_ref()), (Some("hello"), None));

    assert_eq!(said(&clean("params-request")), (1, 0, 0, 0, 6, Some("MCUmgr parameters")));
    let r = clean("params-answer");
    assert_eq!((int(&r, "buf_size"), int(&r, "buf_count")), (Some(384), Some(4)));

    assert_eq!(said(&clean("state-request")), (1, 0, 1, 0, 0, Some("image state read")));
    let r = clean("state-answer");
    assert_eq!(
        slots(&r),
        [(0, "1.0.0".into(), false, true, true, false), (1, "1.2.3.4".into(), false, false, false, false)]
    );
    assert_eq!(int(&r, "splitStatus"), Some(0));

    let r = clean("upload-first-request");
    assert_eq!(said(&r), (1, 2, 1, 1, 1, Some("image upload")));
    assert_eq!((int(&r, "image"), int(&r, "len"), int(&r, "off")), (Some(0), Some(4759), Some(0)));
    let body = r.body.as_ref().unwrap();
    assert_eq!(body.get("sha").unwrap().as_bytes().unwrap().len(), 32);
    assert_eq!(body.get("data").unwrap().as_bytes().unwrap()[..4], [0x3d, 0xb8, 0xf3, 0x96], "MCUboot magic");
    assert_eq!(int(&clean("upload-first-answer"), "off"), Some(64));

    let r = clean("test-request");
    assert_eq!(said(&r).5, Some("image state write (test/confirm)"));
    assert_eq!(r.body.as_ref().unwrap().get("confirm"), Some(&Value::Bool(false)));
    assert_eq!(r.body.as_ref().unwrap().get("hash").unwrap().as_bytes().unwrap().len(), 32);
    assert_eq!(slots(&clean("test-answer"))[1], (1, "1.2.3.4".into(), true, false, false, false));
    let r = clean("confirm-request");
    assert_eq!(r.body.as_ref().unwrap().get("hash"), None);
    assert_eq!(r.body.as_ref().unwrap().get("confirm"), Some(&Value::Bool(true)));
    assert_eq!(slots(&clean("confirm-answer"))[0], (0, "1.2.3.4".into(), false, true, true, false));
    assert_eq!(clean("permanent-request").body.unwrap().get("confirm"), Some(&Value::Bool(true)));
    assert_eq!(slots(&clean("permanent-answer"))[1], (1, "1.0.0".into(), true, false, false, true));

    assert_eq!(said(&clean("reset-request")), (1, 2, 0, 0, 5, Some("reset")));
    assert_eq!(clean("reset-answer").body.unwrap().diagnostic(), "{}");

    let rc = clean("err-v2-answer").outcome.unwrap();
    assert_eq!((rc.rc, rc.group, rc.name), (28, Some(1), Some("IMG_MGMT_ERR_IMAGE_ALREADY_PENDING")));
    let rc = clean("rc-answer-ebadstate").outcome.unwrap();
    assert_eq!((rc.rc, rc.group, rc.name), (6, None, Some("MGMT_ERR_EBADSTATE")));
    let rc = clean("rc-answer-einval").outcome.unwrap();
    assert_eq!(
        (rc.rc, rc.name, rc.meaning),
        (3, Some("MGMT_ERR_EINVAL"), Some("invalid argument in the request"))
    );

    // The hand-written client's mistakes.
    let r = one(&frames, "upload-without-len-request");
    assert_eq!(r.problems, [Problem::UploadStartWithoutLen]);

    let r = one(&frames, "swapped-header-request");
    let h = r.header.as_ref().unwrap();
    assert_eq!((h.op, h.len, h.group, h.group_name, h.command), (0, 256, 0x2d01, None, None));
    assert_eq!(
        r.problems,
        [
            Problem::LengthMismatch { declared: 256, following: 301 },
            Problem::LengthInGroup { group: 0x2d01, swapped: 301 },
            Problem::KeyOfAnotherCommand { key: "data", belongs_to: "image upload", group: 1, id: 1, op: 2 },
        ]
    );
    assert!(r.problems[1].to_string().contains("looks like the body length written into the group field"));
    let r = one(&frames, "swapped-header-answer");
    assert_eq!((said(&r).2, r.outcome.unwrap().name), (0x2d01, Some("MGMT_ERR_ENOTSUP")));

    let r = one(&frames, "json-body-request");
    assert!(matches!(&r.body, Err(BodyProblem::Json { text }) if text.starts_with("{\"image\": 0")));
    assert_eq!(one(&frames, "json-body-answer").outcome.unwrap().rc, 3);

    let r = one(&frames, "confirm-as-os-6-request");
    assert_eq!(said(&r), (0, 2, 0, 2, 6, Some("MCUmgr parameters")));
    assert_eq!(r.problems, [Problem::WrongOp { command: "MCUmgr parameters", op: 2, expected: 0 }]);
    assert_eq!(one(&frames, "confirm-as-os-6-answer").outcome.unwrap().name, Some("MGMT_ERR_ENOTSUP"));

    let r = one(&frames, "confirm-as-read-request");
    assert_eq!(said(&r), (0, 0, 1, 5, 0, Some("image state read")));
    assert_eq!(
        r.problems,
        [Problem::WriteKeyInRead { key: "confirm", write: "image state write (test/confirm)" }]
    );

    let r = one(&frames, "short-length-request");
    assert_eq!(r.problems, [Problem::LengthMismatch { declared: 1, following: 301 }]);
    assert_eq!(r.problems[0].to_string(), "the header says 1 byte of body, 301 follow");

    let (direction, bytes) = &frames["joined-answers"];
    let reports = decode::inspect(bytes, Some(*direction));
    assert_eq!(
        reports.iter().map(said).collect::<Vec<_>>(),
        [(1, 1, 0, 0, 6, Some("MCUmgr parameters")), (1, 3, 0, 0, 5, Some("reset"))]
    );
    assert!(reports.iter().all(FrameReport::is_clean));
}
