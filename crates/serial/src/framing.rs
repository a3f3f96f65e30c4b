//! Which framing a serial link speaks, and how to find out.

use std::fmt;
use std::str::FromStr;

use smpflash_core::command::encode_request;
use smpflash_core::command::os::Echo;
use smpflash_core::frame::{Header, Op, Version, HEADER_LEN};

use crate::codec::encode_frame;

/// The SMP framing of a serial link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Framing {
    /// SMP over console: base64 lines with a length and CRC16 ([`crate::codec`]). Zephyr's
    /// `CONFIG_MCUMGR_TRANSPORT_UART`, MCUboot's serial recovery.
    #[default]
    Console,
    /// Bare frames delimited by the header's length ([`crate::raw`]). Zephyr 4.4's
    /// `CONFIG_MCUMGR_TRANSPORT_RAW_UART`, MCUboot's `CONFIG_BOOT_SERIAL_RAW_PROTOCOL`.
    Raw,
    /// Zephyr's shell transport (`CONFIG_MCUMGR_TRANSPORT_SHELL`): the console framing inside
    /// the shell's input (`smp_shell.c` collects the `06 09`/`04 14` lines and hands them to
    /// `mcumgr_serial_process_frag`, the console decoder; answers go out through
    /// `mcumgr_serial_tx_pkt`). On the wire it is the console framing.
    Shell,
}

impl Framing {
    /// Every framing, in the order `--framing` lists them.
    pub const ALL: [Framing; 3] = [Framing::Console, Framing::Raw, Framing::Shell];

    /// The name on the command line and in logs.
    pub fn name(self) -> &'static str {
        match self {
            Framing::Console => "console",
            Framing::Raw => "raw",
            Framing::Shell => "shell",
        }
    }

    /// Whether frames travel bare ([`Framing::Raw`]) rather than as console lines.
    pub fn is_raw(self) -> bool {
        self == Framing::Raw
    }
}

impl fmt::Display for Framing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Framing {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Framing::ALL.into_iter().find(|f| f.name().eq_ignore_ascii_case(s)).ok_or_else(|| {
            format!(
                "unknown framing {s:?}; one of {}",
                Framing::ALL.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")
            )
        })
    }
}

/// Sequence numbers of the two probes, so their answers are told apart.
pub(crate) const CONSOLE_PROBE_SEQ: u8 = 0xC5;
pub(crate) const RAW_PROBE_SEQ: u8 = 0x5A;

/// The echo request frame used as a probe.
fn probe_frame(text_len: usize, seq: u8) -> Vec<u8> {
    encode_request(&Echo { d: "p".repeat(text_len) }, Version::V1, seq)
        .map(|f| f.encode())
        .unwrap_or_default()
}

/// The console probe as it goes on the wire: one echo packet line plus one more `\n`, sized so
/// that a raw-framing device cannot be left holding part of it.
///
/// A raw Zephyr device (`mcumgr_serial_process_frag`, raw branch) reads the bytes 8 at a time
/// as candidate headers and drops each: the first 8 start with `06`, op 6, refused
/// (`nh_op >= MGMT_OP_COUNT`); every later 8 hold base64 text in the length bytes, so the
/// length is at least `0x2B2B` and over any `CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE` in use. A
/// probe whose length is a multiple of 8 therefore leaves nothing behind that could prefix the
/// raw probe. MCUboot's raw reader (`boot_serial_input_raw`) discards all it holds at the first
/// refused header. A console device takes the packet line and ignores the empty line
/// (`mcumgr_serial_process_frag` returns on a fragment shorter than its 2-byte marker).
pub(crate) fn console_probe() -> Vec<u8> {
    for text_len in 0..8 {
        let Ok(mut wire) = encode_frame(&probe_frame(text_len, CONSOLE_PROBE_SEQ)) else { continue };
        wire.push(b'\n');
        if wire.len() % HEADER_LEN == 0 {
            return wire;
        }
    }
    unreachable!("one of 8 text lengths gives a multiple of 8")
}

/// The raw probe: the bare echo request frame.
pub(crate) fn raw_probe() -> Vec<u8> {
    probe_frame(5, RAW_PROBE_SEQ)
}

/// Whether `frame` answers the probe with sequence number `seq`: an os-group echo response,
/// whatever its body (a device without echo answers an error, which still shows the framing).
pub(crate) fn answers_probe(frame: &[u8], seq: u8) -> bool {
    Header::decode(frame)
        .is_ok_and(|h| h.op == Op::WriteResponse && h.group == 0 && h.id == 0 && h.seq == seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in Framing::ALL {
            assert_eq!(f.name().parse::<Framing>(), Ok(f));
            assert_eq!(f.to_string(), f.name());
        }
        assert!("hdlc".parse::<Framing>().unwrap_err().contains("console, raw, shell"));
    }

    /// Zephyr's raw receive rule (`mcumgr_serial_process_frag`): every 8-byte block of the
    /// console probe is refused as a header, whatever the device's buffer size up to 8 KiB.
    #[test]
    fn the_console_probe_leaves_nothing_in_a_raw_device() {
        let wire = console_probe();
        assert_eq!(wire.len() % 8, 0, "{} bytes", wire.len());
        assert!(wire.len() <= 128, "one line");
        for block in wire.chunks(8) {
            let op = block[0] & 0x07;
            let total = 8 + u16::from_be_bytes([block[2], block[3]]) as usize;
            assert!(op >= 4 || total > 8192, "block {block:02x?} would be taken as a header");
            // MCUboot (`boot_serial_input_raw`): op neither read nor write, or too long.
            assert!((op != 0 && op != 2) || total > 8192);
        }
        // And a console decoder sees one packet with the echo.
        let mut codec = crate::codec::FrameCodec::new();
        let mut buf = bytes::BytesMut::from(&wire[..]);
        let frame = tokio_util::codec::Decoder::decode(&mut codec, &mut buf).unwrap().unwrap();
        assert_eq!(Header::decode(&frame).unwrap().seq, CONSOLE_PROBE_SEQ);
    }

    #[test]
    fn the_raw_probe_is_an_echo_request() {
        let f = raw_probe();
        let h = Header::decode(&f).unwrap();
        assert_eq!((h.op, h.group, h.id, h.seq), (Op::Write, 0, 0, RAW_PROBE_SEQ));
        assert!(!f.contains(&b'\n'), "no newline: a console device keeps it as one unfinished line");
    }
}
