//! SMP over a serial link: the console framing of Zephyr's UART and shell MCUmgr transports and
//! of MCUboot's serial recovery, and the raw framing of Zephyr 4.4's raw UART transport and
//! MCUboot's raw serial recovery ([`raw`]). [`Framing`] names them; [`SerialTransport`] speaks
//! one of them, set with [`SerialTransport::with_framing`] or found with
//! [`SerialTransport::detect_framing`].
//!
//! Each SMP frame travels as a packet (2-byte big-endian length, the frame, CRC16-XMODEM),
//! base64-encoded in lines of at most 127 bytes: the first marked `06 09`, the others `04 14`,
//! each ending in `\n`. Anything else on the line (log output, a shell prompt) is skipped.
//! [`codec`] holds the framing, usable in both directions (host and device emulator);
//! [`SerialTransport`] runs it over a serial port, TCP or any byte stream.
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use smpflash_core::client::Client;
//! use smpflash_core::command::os::Echo;
//! use smpflash_serial::SerialTransport;
//!
//! # async fn run() -> smpflash_core::Result<()> {
//! let link = SerialTransport::open("/dev/ttyACM0", 115_200)?
//!     .with_line_delay(Duration::from_millis(5));
//! let client = Client::new(Arc::new(link));
//! let answer = client.request(&Echo { d: "hi".into() }).await?;
//! assert_eq!(answer.r, "hi");
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod codec;
pub mod connector;
pub mod framing;
pub mod raw;
pub mod transport;

pub use codec::{decode_all, encode_frame, ConsoleCodec, ConsoleItem, Discard, FrameCodec};
pub use connector::SerialConnector;
pub use framing::Framing;
pub use raw::{Accept, RawCodec};
pub use transport::{SerialTransport, DEFAULT_MAX_FRAME, DEFAULT_PROBE_WAIT, RAW_IDLE_RESYNC};
