//! The requests of the differential test, generated from a table of Zephyr's MCUmgr commands
//! (every command of every group a server has, in both ops) and a list of malformations.
//!
//! Group and command ids, which op each handler is registered for, and the field names are
//! Zephyr 4.4's: `include/zephyr/mgmt/mcumgr/grp/*/*_mgmt.h` and the handler tables
//! (`*_mgmt_handlers[]`) of `subsys/mgmt/mcumgr/grp/*/src/*.c` — os_mgmt.c
//! `os_mgmt_group_handlers` (echo read+write, taskstat read, datetime read+write, reset write,
//! params read, info read, bootloader info read; ids 1 and 3 have no handler), img_mgmt.c
//! (state read+write, upload write, erase write, slot info read), stat_mgmt.c (show, list:
//! read), settings_mgmt.c (read/write, delete write, commit write, load read / save write),
//! fs_mgmt.c (file download read / upload write, status read, hash read, supported hashes
//! read, opened-file close write), shell_mgmt.c (exec write), enum_mgmt.c (count, list,
//! single, details: read), basic_mgmt.c (erase storage write, group 63).

use ciborium::Value;
use sha2::{Digest, Sha256};

use super::fixtures::{Entry, Transport};

/// Request ops.
pub const READ: u8 = 0;
/// Request ops.
pub const WRITE: u8 = 2;

/// What a case exercises (the intended-differences list matches on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A command with a well-formed body, in one op (registered or not).
    Command,
    /// The same, as an SMP v1 request.
    V1,
    /// The first field the handler decodes left out.
    MissingField,
    /// An extra field no handler knows.
    ExtraField,
    /// The first field with a value of another CBOR type.
    MistypedField,
    /// A body that is not CBOR.
    NotCbor,
    /// A CBOR array instead of a map.
    ArrayBody,
    /// A group no server registers.
    UnknownGroup,
    /// A command id the group does not have.
    UnknownId,
    /// The header's length shorter than the body (the rest too short for a request).
    LenShort,
    /// The header's length longer than the body.
    LenLong,
    /// Fewer than 8 bytes.
    TruncatedHeader,
    /// Version bits 2.
    VersionTooNew,
    /// A response op (1) as a request.
    ResponseOp,
    /// A frame larger than the server's SMP buffer.
    Oversize,
    /// A frame over the native_sim UDP MTU but within the SMP buffer.
    OverMtu,
    /// A step of the image upload rules.
    Upload,
    /// An image state write (test / confirm).
    StateWrite,
    /// `os reset`, the last case.
    Reset,
}

/// What a case's body depends on that differs per target: the running image's hash.
#[derive(Debug, Clone, Default)]
pub struct Ctx {
    /// The hash of the image in slot 0, as the target's own state read reports it.
    pub running_hash: Option<Vec<u8>>,
}

/// A body, built for a target.
#[derive(Debug, Clone)]
pub enum Body {
    /// A CBOR map, keys in this order.
    Map(Vec<(String, Value)>),
    /// Any bytes.
    Raw(Vec<u8>),
    /// An image state write: the running image's hash (`true`) or a hash nobody has.
    StateWrite {
        /// Which hash (`None`: no `hash` key).
        existing_hash: Option<bool>,
        /// `confirm`.
        confirm: bool,
    },
}

/// One request of the differential test.
#[derive(Debug, Clone)]
pub struct Case {
    /// A readable name, e.g. `os echo (write)`.
    pub name: String,
    /// Group.
    pub group: u16,
    /// Command id.
    pub id: u8,
    /// Op.
    pub op: u8,
    /// SMP version bits (0 = v1, 1 = v2, 2 = too new).
    pub version: u8,
    /// What it exercises.
    pub kind: Kind,
    /// The body.
    pub body: Body,
    /// Added to the header's length (shorter / longer than the body).
    pub len_delta: i32,
    /// Send only this many bytes of the frame.
    pub truncate: Option<usize>,
    /// May take long on a slow server (flash erase).
    pub slow: bool,
}

impl Case {
    fn new(name: impl Into<String>, group: u16, id: u8, op: u8, kind: Kind, body: Body) -> Case {
        Case {
            name: name.into(),
            group,
            id,
            op,
            version: 1,
            kind,
            body,
            len_delta: 0,
            truncate: None,
            slow: false,
        }
    }

    /// The frame for `seq` on a target with `ctx`.
    pub fn frame(&self, seq: u8, ctx: &Ctx) -> Vec<u8> {
        let body = match &self.body {
            Body::Map(entries) => cbor(&map(entries)),
            Body::Raw(b) => b.clone(),
            Body::StateWrite { existing_hash, confirm } => {
                let mut e = Vec::new();
                match existing_hash {
                    Some(true) => e.push((
                        "hash".to_string(),
                        Value::Bytes(ctx.running_hash.clone().unwrap_or_else(|| vec![0xee; 32])),
                    )),
                    Some(false) => e.push(("hash".to_string(), Value::Bytes(vec![0xab; 32]))),
                    None => {}
                }
                e.push(("confirm".to_string(), Value::Bool(*confirm)));
                cbor(&map(&e))
            }
        };
        let len = (body.len() as i64 + i64::from(self.len_delta)).clamp(0, 0xffff) as u16;
        let (l, g) = (len.to_be_bytes(), self.group.to_be_bytes());
        let mut out = vec![(self.version << 3) | self.op, 0, l[0], l[1], g[0], g[1], seq, self.id];
        out.extend_from_slice(&body);
        if let Some(n) = self.truncate {
            out.truncate(n);
        }
        out
    }
}

fn map(entries: &[(String, Value)]) -> Value {
    Value::Map(entries.iter().map(|(k, v)| (Value::Text(k.clone()), v.clone())).collect())
}

fn cbor(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).expect("CBOR into a Vec");
    out
}

fn t(s: &str) -> Value {
    Value::Text(s.into())
}

fn u(n: u64) -> Value {
    Value::Integer(n.into())
}

fn fields(list: &[(&str, Value)]) -> Vec<(String, Value)> {
    list.iter().map(|(k, v)| ((*k).to_string(), v.clone())).collect()
}

/// One command of Zephyr's tables: its body for each op, and whether Zephyr registers a
/// handler for that op.
struct Command {
    group: u16,
    group_name: &'static str,
    id: u8,
    name: &'static str,
    read: (bool, Vec<(String, Value)>),
    write: (bool, Vec<(String, Value)>),
    /// Malformed variants would do harm (reset) or nothing new (erase storage).
    no_variants: bool,
}

fn cmd(
    group: (u16, &'static str),
    id: u8,
    name: &'static str,
    read: (bool, &[(&str, Value)]),
    write: (bool, &[(&str, Value)]),
) -> Command {
    Command {
        group: group.0,
        group_name: group.1,
        id,
        name,
        read: (read.0, fields(read.1)),
        write: (write.0, fields(write.1)),
        no_variants: false,
    }
}

const OS: (u16, &str) = (0, "os");
const IMG: (u16, &str) = (1, "img");
const STAT: (u16, &str) = (2, "stat");
const SETTINGS: (u16, &str) = (3, "settings");
const FS: (u16, &str) = (8, "fs");
const SHELL: (u16, &str) = (9, "shell");
const ENUM: (u16, &str) = (10, "enum");
const ZBASIC: (u16, &str) = (63, "zbasic");

/// The manifest's group names, with the group ids.
pub const GROUPS: [(&str, u16); 8] = [
    ("os", 0),
    ("img", 1),
    ("stat", 2),
    ("settings", 3),
    ("fs", 8),
    ("shell", 9),
    ("enum", 10),
    ("zbasic", 63),
];

const FS_FILE: &str = "/lfs1/diff.txt";

fn commands() -> Vec<Command> {
    let y = true;
    let n = false;
    let none: &[(&str, Value)] = &[];
    let mut list = vec![
        cmd(OS, 0, "echo", (y, &[("d", t("hi"))]), (y, &[("d", t("hi"))])),
        cmd(OS, 1, "console echo control", (n, none), (n, &[("echo", u(1))])),
        cmd(OS, 2, "taskstat", (y, none), (n, none)),
        cmd(OS, 3, "mpstat", (n, none), (n, none)),
        cmd(OS, 4, "datetime", (y, none), (y, &[("datetime", t("2026-01-02T03:04:05"))])),
        cmd(OS, 6, "params", (y, none), (n, none)),
        cmd(OS, 7, "info", (y, &[("format", t("s"))]), (n, none)),
        cmd(OS, 8, "bootloader info", (y, none), (n, none)),
        cmd(IMG, 0, "state", (y, none), (y, &[("confirm", Value::Bool(false))])),
        cmd(
            IMG,
            1,
            "upload",
            (n, none),
            (y, &[("image", u(0)), ("off", u(0)), ("len", u(64)), ("data", Value::Bytes(vec![0; 64]))]),
        ),
        cmd(IMG, 2, "file (no handler)", (n, none), (n, none)),
        cmd(IMG, 3, "corelist (no handler)", (n, none), (n, none)),
        cmd(IMG, 4, "coreload (no handler)", (n, none), (n, none)),
        cmd(IMG, 5, "erase", (n, none), (y, &[("slot", u(1))])),
        cmd(IMG, 6, "slot info", (y, none), (n, none)),
        cmd(STAT, 0, "group data", (y, &[("name", t("smp_svr_stats"))]), (n, none)),
        cmd(STAT, 1, "list", (y, none), (n, none)),
        cmd(
            SETTINGS,
            0,
            "read/write",
            (y, &[("name", t("diff/key"))]),
            (y, &[("name", t("diff/key")), ("val", Value::Bytes(vec![1, 2, 3]))]),
        ),
        cmd(SETTINGS, 1, "delete", (n, none), (y, &[("name", t("diff/key"))])),
        cmd(SETTINGS, 2, "commit", (n, none), (y, none)),
        cmd(SETTINGS, 3, "load/save", (y, none), (y, none)),
        cmd(
            FS,
            0,
            "file",
            (y, &[("name", t(FS_FILE)), ("off", u(0))]),
            (
                y,
                &[
                    ("name", t(FS_FILE)),
                    ("off", u(0)),
                    ("data", Value::Bytes(b"diff".to_vec())),
                    ("len", u(4)),
                ],
            ),
        ),
        cmd(FS, 1, "status", (y, &[("name", t(FS_FILE))]), (n, none)),
        cmd(FS, 2, "hash/checksum", (y, &[("name", t(FS_FILE)), ("type", t("sha256"))]), (n, none)),
        cmd(FS, 3, "supported hashes", (y, none), (n, none)),
        cmd(FS, 4, "opened file close", (n, none), (y, none)),
        cmd(SHELL, 0, "exec", (n, none), (y, &[("argv", Value::Array(vec![t("kernel"), t("version")]))])),
        cmd(ENUM, 0, "count", (y, none), (n, none)),
        cmd(ENUM, 1, "list", (y, none), (n, none)),
        cmd(ENUM, 2, "single", (y, &[("index", u(0))]), (n, none)),
        cmd(ENUM, 3, "details", (y, none), (n, none)),
        cmd(ZBASIC, 0, "erase storage", (n, none), (y, none)),
    ];
    for c in &mut list {
        // Erase storage is one case; its variants would erase again and show nothing new.
        c.no_variants = c.group == ZBASIC.0;
    }
    list
}

/// The value of another CBOR type than `v`'s.
fn mistyped(v: &Value) -> Value {
    match v {
        Value::Text(_) => u(7),
        Value::Integer(_) => t("7"),
        Value::Bytes(_) => t("bytes"),
        Value::Bool(_) => t("yes"),
        _ => u(1),
    }
}

/// Every case for `entry`, in the order both targets get them; `image` is the fixture's signed
/// image (for the upload rules of a server with the img group).
pub fn generate(entry: &Entry, image: Option<&[u8]>) -> Vec<Case> {
    let has = |g: u16| GROUPS.iter().any(|(name, id)| *id == g && entry.has_group(name));
    let mut cases = Vec::new();
    for c in commands().into_iter().filter(|c| has(c.group)) {
        for (op, (registered, body)) in [(READ, &c.read), (WRITE, &c.write)] {
            let opname = if op == READ { "read" } else { "write" };
            let base = format!("{} {} ({opname})", c.group_name, c.name);
            let mut case = Case::new(&base, c.group, c.id, op, Kind::Command, Body::Map(body.clone()));
            case.slow = c.group == IMG.0;
            cases.push(case.clone());
            if !registered || c.no_variants {
                continue;
            }
            let variant = |suffix: &str, kind: Kind, body: Body| {
                let mut v = case.clone();
                v.name = format!("{base}: {suffix}");
                v.kind = kind;
                v.body = body;
                v
            };
            if let Some((first, rest)) = body.split_first() {
                cases.push(variant(
                    &format!("without `{}`", first.0),
                    Kind::MissingField,
                    Body::Map(rest.to_vec()),
                ));
                let mut wrong = body.clone();
                wrong[0].1 = mistyped(&first.1);
                cases.push(variant(
                    &format!("`{}` mistyped", first.0),
                    Kind::MistypedField,
                    Body::Map(wrong),
                ));
            }
            let mut extra = body.clone();
            extra.push(("zz_unknown".into(), u(1)));
            cases.push(variant("an unknown field", Kind::ExtraField, Body::Map(extra)));
            cases.push(variant("a body that is not CBOR", Kind::NotCbor, Body::Raw(vec![0xff, 0x00, 0x41])));
            cases.push(variant(
                "a CBOR array body",
                Kind::ArrayBody,
                Body::Raw(cbor(&Value::Array(vec![u(1), u(2)]))),
            ));
        }
    }
    // v1 headers for a few commands, and a command error in both versions.
    let echo = || Body::Map(fields(&[("d", t("v1"))]));
    let mut v1 = vec![
        Case::new("os echo (write) v1", 0, 0, WRITE, Kind::V1, echo()),
        Case::new("os params (read) v1", 0, 6, READ, Kind::V1, Body::Map(vec![])),
        Case::new("os info (read) v1", 0, 7, READ, Kind::V1, Body::Map(fields(&[("format", t("s"))]))),
        Case::new(
            "os info (read) v1: unknown format",
            0,
            7,
            READ,
            Kind::V1,
            Body::Map(fields(&[("format", t("q"))])),
        ),
        Case::new("os reset (read) v1: no handler", 0, 5, READ, Kind::V1, Body::Map(vec![])),
        Case::new("os bootloader info (read) v1", 0, 8, READ, Kind::V1, Body::Map(vec![])),
    ];
    cases.push(Case::new(
        "os info (read): unknown format",
        0,
        7,
        READ,
        Kind::Command,
        Body::Map(fields(&[("format", t("q"))])),
    ));
    cases.push(Case::new(
        "os bootloader info (read): query mode",
        0,
        8,
        READ,
        Kind::Command,
        Body::Map(fields(&[("query", t("mode"))])),
    ));
    if has(IMG.0) {
        v1.push(Case::new("img state (read) v1", 1, 0, READ, Kind::V1, Body::Map(vec![])));
        v1.push(Case::new(
            "img erase (write) v1: slot 0",
            1,
            5,
            WRITE,
            Kind::V1,
            Body::Map(fields(&[("slot", u(0))])),
        ));
    }
    if has(SETTINGS.0) {
        v1.push(Case::new(
            "settings read/write (read) v1",
            3,
            0,
            READ,
            Kind::V1,
            Body::Map(fields(&[("name", t("diff/key"))])),
        ));
    }
    if has(ENUM.0) {
        v1.push(Case::new("enum count (read) v1", 10, 0, READ, Kind::V1, Body::Map(vec![])));
    }
    for c in &mut v1 {
        c.version = 0;
    }
    cases.extend(v1);

    // Malformed frames.
    let e = || Body::Map(fields(&[("d", t("malformed"))]));
    cases.push(Case::new("unknown group 100", 100, 0, READ, Kind::UnknownGroup, Body::Map(vec![])));
    cases.push(Case::new("unknown group 100 (write)", 100, 0, WRITE, Kind::UnknownGroup, e()));
    cases.push(Case::new("os unknown command id 50", 0, 50, READ, Kind::UnknownId, Body::Map(vec![])));
    cases.push(Case::new("img unknown command id 50", 1, 50, WRITE, Kind::UnknownId, Body::Map(vec![])));
    let mut short =
        Case::new("echo: header length 3 shorter than the body", 0, 0, WRITE, Kind::LenShort, e());
    short.len_delta = -3;
    cases.push(short);
    let mut long = Case::new("echo: header length 5 longer than the body", 0, 0, WRITE, Kind::LenLong, e());
    long.len_delta = 5;
    cases.push(long);
    let mut cut = Case::new("echo: 5 bytes (truncated header)", 0, 0, WRITE, Kind::TruncatedHeader, e());
    cut.truncate = Some(5);
    cases.push(cut);
    let mut newer = Case::new("echo: version bits 2", 0, 0, WRITE, Kind::VersionTooNew, e());
    newer.version = 2;
    cases.push(newer);
    let mut resp = Case::new("echo: op 1 (a read response)", 0, 0, 1, Kind::ResponseOp, e());
    resp.op = 1;
    cases.push(resp);
    let big = |n: usize| Body::Map(fields(&[("d", t(&"x".repeat(n)))]));
    // The echo frame is 8 + 1 + 2 + 3 + n bytes (map, key "d", a text header of 3 bytes).
    cases.push(Case::new(
        format!("echo: a {} B frame (buf_size {} + 64)", entry.buf_size + 64, entry.buf_size),
        0,
        0,
        WRITE,
        Kind::Oversize,
        big(entry.buf_size + 64 - 14),
    ));
    if entry.transport == Transport::Udp && entry.buf_size > 1600 {
        cases.push(Case::new(
            "echo: a 1600 B frame (over the 1500-byte UDP MTU, under buf_size)",
            0,
            0,
            WRITE,
            Kind::OverMtu,
            big(1600 - 14),
        ));
    }
    if let (true, Some(image)) = (has(IMG.0), image) {
        cases.extend(upload_rules(image));
    }
    // Last: reset (native_sim exits; mps2 and the virtual device come back).
    cases.push(Case::new("os reset (write)", 0, 5, WRITE, Kind::Reset, Body::Map(vec![])));
    cases
}

/// The image upload rules and state writes (img group servers), on the fixture's own image.
fn upload_rules(image: &[u8]) -> Vec<Case> {
    const CHUNK: usize = 256;
    let len = image.len() as u64;
    let sha = Sha256::digest(image).to_vec();
    let chunk = |off: usize| Value::Bytes(image[off..(off + CHUNK).min(image.len())].to_vec());
    let up = |name: &str, body: &[(&str, Value)]| {
        let mut c =
            Case::new(format!("img upload: {name}"), 1, 1, WRITE, Kind::Upload, Body::Map(fields(body)));
        c.slow = true;
        c
    };
    // The first chunk as a client that offers a hash sends it (the resume cases differ only in
    // the hash).
    let first_with_sha = |sha: Vec<u8>| {
        [("image", u(0)), ("off", u(0)), ("len", u(len)), ("sha", Value::Bytes(sha)), ("data", chunk(0))]
    };
    let sw = |name: &str, existing_hash: Option<bool>, confirm: bool| {
        Case::new(
            format!("img state (write): {name}"),
            1,
            0,
            WRITE,
            Kind::StateWrite,
            Body::StateWrite { existing_hash, confirm },
        )
    };
    let mut erase = Case::new(
        "img erase (write): slot 1, before the uploads",
        1,
        5,
        WRITE,
        Kind::Upload,
        Body::Map(fields(&[("slot", u(1))])),
    );
    erase.slow = true;
    let mut erase_after = erase.clone();
    erase_after.name = "img erase (write): slot 1, after the uploads".into();
    vec![
        erase,
        up("first chunk without `len`", &[("image", u(0)), ("off", u(0)), ("data", chunk(0))]),
        up(
            "first chunk with bad image magic",
            &[("image", u(0)), ("off", u(0)), ("len", u(len)), ("data", Value::Bytes(vec![0x5a; CHUNK]))],
        ),
        up("first chunk with `sha`", &first_with_sha(sha.clone())),
        up(
            "a later chunk at a wrong offset",
            &[("image", u(0)), ("off", u(4 * CHUNK as u64)), ("data", chunk(4 * CHUNK))],
        ),
        up("the next chunk", &[("image", u(0)), ("off", u(CHUNK as u64)), ("data", chunk(CHUNK))]),
        up("restart at 0 with the same `sha` (resume)", &first_with_sha(sha.clone())),
        up("restart at 0 with another `sha`", &first_with_sha(vec![0x11; 32])),
        up(
            "a chunk beyond `len`",
            &[
                ("image", u(0)),
                ("off", u(CHUNK as u64)),
                ("data", Value::Bytes(vec![0; CHUNK])),
                ("len", u(len)),
            ],
        ),
        erase_after,
        sw("test, a hash no slot has", Some(false), false),
        sw("test, the running image's hash", Some(true), false),
        sw("confirm, a hash no slot has", Some(false), true),
        sw("confirm, the running image's hash", Some(true), true),
        sw("confirm alone", None, true),
        sw("test without a hash", None, false),
    ]
}
