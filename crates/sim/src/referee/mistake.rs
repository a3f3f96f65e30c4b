//! The mistakes a client can make that the virtual device recognises, each with the sentence
//! that names it and says what to do instead.
//!
//! They are the ones people make when they write their own SMP client (a Bleak script, a
//! serial loop): a header laid out wrong, JSON instead of CBOR, an upload without `len`,
//! answers never waited for, a confirm without the image's hash. Zephyr answers most of them
//! with a bare `{"rc": 3}` or nothing at all; the virtual device says what went wrong.

use std::fmt;

/// Where a misplaced field in a header most likely came from, judged from its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupHint {
    /// The group read little-endian is a known group: the header was packed little-endian.
    ByteOrder {
        /// The group the bytes hold when read little-endian.
        meant: u16,
    },
    /// The group field holds (about) the packet's body length: the length was written into
    /// the group field.
    LengthInGroup {
        /// The value the group field holds, read little-endian.
        little_endian: u16,
    },
}

/// One kind of client mistake, with the facts that show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mistake {
    /// The header's length field does not match the bytes that came with it.
    HeaderLength {
        /// Body bytes the header announces.
        said: usize,
        /// Body bytes that arrived after the header.
        got: usize,
        /// What the group field suggests about the header's layout.
        hint: Option<GroupHint>,
        /// What came after the header is JSON.
        json: bool,
    },
    /// A BLE write that starts a packet is shorter than the 8-byte header.
    TooShort {
        /// The write's length.
        len: usize,
    },
    /// The body is not a CBOR map.
    NotCbor {
        /// The command the request addressed.
        command: &'static str,
        /// The body parses as JSON.
        json: bool,
    },
    /// The group number is not one the device has.
    UnknownGroup {
        /// The group asked for.
        group: u16,
        /// What its bytes suggest.
        hint: Option<GroupHint>,
    },
    /// The group exists but has no such command.
    UnknownCommand {
        /// The group.
        group: u16,
        /// The command id asked for.
        id: u8,
        /// The group's commands, id and name.
        known: Vec<(u8, &'static str)>,
    },
    /// A read (op 0) to a command that only writes, or the reverse.
    WrongOp {
        /// The command.
        command: &'static str,
        /// The request was a read (op 0); otherwise a write (op 2).
        sent_read: bool,
    },
    /// A response op (1 or 3) or an op that does not exist (4-7), sent as a request.
    NotARequestOp {
        /// The op field.
        op: u8,
    },
    /// A write to MCUmgr params (group 0, command 6), which only reads: the common misreading
    /// of "confirm".
    ConfirmAsParams,
    /// An image state write with neither a hash nor `confirm`: a test of nothing, often meant
    /// as a reset.
    StateWriteOfNothing,
    /// The first upload chunk (`off` 0) carries no `len`.
    UploadWithoutLen,
    /// The first upload chunk does not start with MCUboot's header magic.
    UploadNotAnImage {
        /// The first bytes of `data`.
        first: Vec<u8>,
    },
    /// An upload chunk starts past where the last one ended.
    OffsetSkips {
        /// Where the client's last chunk ended.
        expected: u64,
        /// The chunk's `off`.
        got: u64,
    },
    /// An upload chunk repeats data already sent, without the device having asked for it.
    OffsetRepeats {
        /// Where the client's last chunk ended.
        expected: u64,
        /// The chunk's `off`.
        got: u64,
    },
    /// Requests arrived while every SMP buffer was busy.
    TooManyInFlight {
        /// Requests the device can hold at once from this link.
        buffers: usize,
    },
    /// A BLE write longer than the ATT MTU allows.
    WriteTooLong {
        /// The write's length.
        len: usize,
        /// The ATT MTU.
        mtu: usize,
    },
    /// A packet larger than the device's SMP buffer.
    FrameTooLarge {
        /// The packet's length.
        len: usize,
        /// The device's `buf_size`.
        buf_size: usize,
    },
    /// A confirm without a hash, while the running image is already confirmed and another
    /// image waits unmarked: it confirms the running image, not the uploaded one.
    ConfirmWithoutHash {
        /// The running, already confirmed version.
        running: String,
        /// The version that waits in the other slot.
        waiting: String,
    },
    /// A reset with no image marked while a new image waits: nothing will change.
    ResetNothingMarked {
        /// The running version, which boots again.
        running: String,
        /// The unmarked version that waits.
        waiting: String,
    },
    /// A reset while an image runs under test, never confirmed: MCUboot reverts it.
    ResetRevertsTest {
        /// The version under test.
        test: String,
        /// The version MCUboot goes back to.
        back_to: String,
    },
    /// The device answered over BLE, but nobody had enabled notifications: the answer was
    /// lost.
    AnswerUnheard,
    /// When the device stops: an image runs under test and was never confirmed.
    NeverConfirmed {
        /// The version under test.
        test: String,
        /// The version MCUboot goes back to at the next reset.
        back_to: String,
    },
}

impl Mistake {
    /// A short stable name of the kind, used to warn once per kind and in the summary.
    pub fn kind(&self) -> &'static str {
        match self {
            Mistake::HeaderLength { .. } => "header-length",
            Mistake::TooShort { .. } => "write-shorter-than-header",
            Mistake::NotCbor { .. } => "body-not-cbor",
            Mistake::UnknownGroup { .. } => "unknown-group",
            Mistake::UnknownCommand { .. } => "unknown-command",
            Mistake::WrongOp { .. } => "wrong-op",
            Mistake::NotARequestOp { .. } => "not-a-request-op",
            Mistake::ConfirmAsParams => "confirm-as-params",
            Mistake::StateWriteOfNothing => "state-write-of-nothing",
            Mistake::UploadWithoutLen => "upload-without-len",
            Mistake::UploadNotAnImage { .. } => "upload-not-an-image",
            Mistake::OffsetSkips { .. } => "offset-skips",
            Mistake::OffsetRepeats { .. } => "offset-repeats",
            Mistake::TooManyInFlight { .. } => "too-many-in-flight",
            Mistake::WriteTooLong { .. } => "write-longer-than-mtu",
            Mistake::FrameTooLarge { .. } => "frame-larger-than-buffer",
            Mistake::ConfirmWithoutHash { .. } => "confirm-without-hash",
            Mistake::ResetNothingMarked { .. } => "reset-nothing-marked",
            Mistake::ResetRevertsTest { .. } => "reset-reverts-test",
            Mistake::AnswerUnheard => "answer-unheard",
            Mistake::NeverConfirmed { .. } => "test-never-confirmed",
        }
    }
}

fn hint_text(hint: &Option<GroupHint>) -> String {
    match hint {
        Some(GroupHint::ByteOrder { meant }) => format!(
            " (read little-endian it is {meant}, the {} group: SMP header fields are big-endian)",
            smpflash_core::rc::group_name(*meant)
        ),
        Some(GroupHint::LengthInGroup { little_endian }) => format!(
            " (read little-endian it is {little_endian}, about the length of the body: the body \
             length was written into the group field)"
        ),
        None => String::new(),
    }
}

/// The header layout every hint points to.
const LAYOUT: &str = "the header is op, flags, length (big-endian, 2 bytes), group (big-endian, \
                      2 bytes), sequence, command id";

impl fmt::Display for Mistake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mistake::HeaderLength { said, got, hint, json } => {
                let mut group = match hint {
                    Some(_) => format!("; its group field looks misplaced too{}", hint_text(hint)),
                    None => String::new(),
                };
                if *json {
                    group.push_str("; and the body is JSON, where SMP wants a CBOR map");
                }
                write!(
                    f,
                    "the header says the body is {said} byte{} but {got} came with it{group}: {LAYOUT}, \
                     and the length counts exactly the CBOR body after the 8-byte header",
                    if *said == 1 { "" } else { "s" }
                )
            }
            Mistake::TooShort { len } => write!(
                f,
                "a {len}-byte write cannot hold the 8-byte SMP header: the first write of each \
                 packet must hold the whole header"
            ),
            Mistake::NotCbor { command, json: true } => write!(
                f,
                "the {command} body is JSON, but SMP bodies are CBOR maps (the device answers \
                 rc 3, invalid value): encode it with a CBOR library (cbor2.dumps), with byte \
                 strings for data and hashes, not base64 text"
            ),
            Mistake::NotCbor { command, json: false } => write!(
                f,
                "the {command} body is not a CBOR map (the device answers rc 3, invalid value): \
                 send one CBOR map of the command's fields"
            ),
            Mistake::UnknownGroup { group, hint } => write!(
                f,
                "group {group} ({group:#06x}) is not an MCUmgr group this device has{}: {LAYOUT}; \
                 the groups are 0 (OS), 1 (image), 2 (statistics), 3 (settings), 8 (file system), \
                 9 (shell), 10 (enumeration), 63 (Zephyr basic)",
                hint_text(hint)
            ),
            Mistake::UnknownCommand { group, id, known } => {
                let list: Vec<String> = known.iter().map(|(i, n)| format!("{i} ({n})")).collect();
                write!(
                    f,
                    "the {} group has no command {id}: its commands are {}",
                    smpflash_core::rc::group_name(*group),
                    list.join(", ")
                )
            }
            Mistake::WrongOp { command, sent_read: true } => write!(
                f,
                "{command} was sent as a read (op 0), but it is a write: set op 2 in the first \
                 header byte"
            ),
            Mistake::WrongOp { command, sent_read: false } => write!(
                f,
                "{command} was sent as a write (op 2), but it is a read: set op 0 in the first \
                 header byte"
            ),
            Mistake::NotARequestOp { op } => write!(
                f,
                "op {op} is not a request (0 is read, 2 is write; 1 and 3 are the device's \
                 responses): set the low three bits of the first header byte to 0 or 2"
            ),
            Mistake::ConfirmAsParams => write!(
                f,
                "a write to group 0 command 6 is MCUmgr params, which only reads, not a confirm: \
                 to confirm an image send an image state write (group 1, command 0, op 2) with \
                 {{\"hash\": <the image's SHA-256>, \"confirm\": true}}"
            ),
            Mistake::StateWriteOfNothing => write!(
                f,
                "an image state write (group 1, command 0) without a hash tests nothing (the \
                 device answers 'invalid hash'): to test an image send its hash; to reset the \
                 device send group 0, command 5"
            ),
            Mistake::UploadWithoutLen => write!(
                f,
                "the first upload chunk (off 0) has no len: the device cannot know the image's \
                 size and refuses it; send \"len\" (the whole image's size) and \"sha\" with off 0"
            ),
            Mistake::UploadNotAnImage { first } => write!(
                f,
                "the first upload chunk starts with {} instead of MCUboot's header magic \
                 3d b8 f3 96: upload the signed image (zephyr.signed.bin), from its first byte",
                hex_bytes(first)
            ),
            Mistake::OffsetSkips { expected, got } => write!(
                f,
                "an upload chunk starts at {got}, past where the previous one ended ({expected}): \
                 the device ignores it and answers its own offset; send the next chunk from the \
                 \"off\" in the device's last answer"
            ),
            Mistake::OffsetRepeats { expected, got } => write!(
                f,
                "an upload chunk starts at {got}, before where the previous one ended ({expected}): \
                 data is sent twice; send the next chunk from the \"off\" in the device's last answer"
            ),
            Mistake::TooManyInFlight { buffers } => write!(
                f,
                "requests arrived while all the device's SMP buffers were busy, and a device \
                 drops what it has no buffer for: keep at most {buffers} request(s) in flight \
                 (MCUmgr params tells buf_count) and wait for answers before sending more"
            ),
            Mistake::WriteTooLong { len, mtu } => write!(
                f,
                "a {len}-byte BLE write does not fit ATT MTU {mtu} (at most {} bytes per write): \
                 split each SMP packet into writes of MTU - 3 bytes, and learn the MTU from the \
                 link (with Bleak on BlueZ, mtu_size is 23 until the MTU was acquired)",
                mtu.saturating_sub(3)
            ),
            Mistake::FrameTooLarge { len, buf_size } => write!(
                f,
                "a {len}-byte packet does not fit the device's {buf_size}-byte SMP buffer: size \
                 upload chunks so header, CBOR and data fit buf_size (MCUmgr params tells it)"
            ),
            Mistake::ConfirmWithoutHash { running, waiting } => write!(
                f,
                "a confirm without a hash confirms the running image ({running}, already \
                 confirmed), not the uploaded {waiting}: send the new image's hash with \
                 \"confirm\": true, or test it and confirm after the reset"
            ),
            Mistake::ResetNothingMarked { running, waiting } => write!(
                f,
                "reset with no image marked: the device boots {running} again and {waiting} stays \
                 unused; mark it first with an image state write of its hash (confirm false to \
                 test, true to keep)"
            ),
            Mistake::ResetRevertsTest { test, back_to } => write!(
                f,
                "reset while {test} runs under test and was never confirmed: MCUboot reverts to \
                 {back_to}; confirm it (image state write with \"confirm\": true) before any reset"
            ),
            Mistake::AnswerUnheard => write!(
                f,
                "the device answered, but no client had enabled notifications on the SMP \
                 characteristic, so the answer was lost: start notifications before writing, \
                 and wait for each answer"
            ),
            Mistake::NeverConfirmed { test, back_to } => write!(
                f,
                "{test} was booted for test and never confirmed: the next reset reverts to \
                 {back_to}; confirm it (image state write with \"confirm\": true) once it runs well"
            ),
        }
    }
}

fn hex_bytes(bytes: &[u8]) -> String {
    let parts: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if parts.is_empty() {
        "no data".into()
    } else {
        parts.join(" ")
    }
}
