//! The vocabulary the SMP server and its group handlers share: what a handler is given
//! ([`Request`]), what it returns ([`Handled`], [`Fail`]), what the server makes of a request
//! ([`Reply`]), and the CBOR map helpers. It lives apart from the dispatcher so the handlers
//! ([`super::os`], [`super::img`]) and the dispatcher ([`super::server`]) both import it and
//! neither imports the other's caller.

use std::time::Duration;

use ciborium::Value;

/// A failed request, as the handler reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum Fail {
    /// An SMP-level `MGMT_ERR_*` code: always sent as `{"rc": N}`.
    Smp(i64),
    /// A group's own code: `{"err": {...}}` in v2, translated to `MGMT_ERR_*` in v1.
    Group {
        /// Group.
        group: u16,
        /// Code.
        rc: i64,
        /// `rsn` text (sent when the profile has verbose errors).
        reason: Option<&'static str>,
    },
    /// A group's own code with more of the answer beside it (fs upload's
    /// `FS_MGMT_ERR_FILE_OFFSET_NOT_VALID` with the file's `len`): in v1 the extra entries are
    /// lost with the translation, as in Zephyr.
    GroupWith {
        /// Group.
        group: u16,
        /// Code.
        rc: i64,
        /// Entries after `err`.
        extra: Vec<(&'static str, Value)>,
    },
}

/// What a handler produced.
pub type Handled = Result<Vec<(&'static str, Value)>, Fail>;

/// What the server does with one packet (one datagram, one serial packet, one reassembled
/// BLE write).
#[derive(Debug, Default)]
pub struct Reply {
    /// The answer frames, in order: Zephyr handles every request a packet holds and answers
    /// each in its own frame; empty when Zephyr sends nothing (fewer than 8 bytes).
    pub frames: Vec<Vec<u8>>,
    /// The device resets after sending the answer.
    pub reset: bool,
    /// The reset asked for the bootloader (`boot_mode` 1).
    pub boot_mode_bootloader: bool,
    /// Flash time the request took.
    pub cost: Duration,
    /// Flash changed in a way worth saving.
    pub flash_changed: bool,
}

/// Builds a CBOR map from text keys.
pub fn map(entries: Vec<(&'static str, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (Value::Text(k.into()), v)).collect())
}

/// Looks up a text key in a decoded request map.
pub fn field<'a>(body: &'a Value, key: &str) -> Option<&'a Value> {
    body.as_map()?.iter().find(|(k, _)| k.as_text() == Some(key)).map(|(_, v)| v)
}

/// A handler's view of the request.
pub struct Request<'a> {
    /// The decoded body.
    pub body: &'a Value,
    /// Extra results the handler reports to the server.
    pub reply: &'a mut Reply,
}

/// The CBOR type a handler's key decoder accepts (`zcbor_tstr_decode`, `zcbor_bstr_decode`,
/// `zcbor_bool_decode`, `zcbor_uint32_decode` / `zcbor_size_decode` on a 32-bit MCU).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A text string.
    Text,
    /// A byte string.
    Bytes,
    /// A boolean.
    Bool,
    /// An unsigned integer that fits 32 bits.
    Uint,
    /// An unsigned integer that fits 64 bits (`zcbor_uint64_decode`).
    Uint64,
    /// A signed integer that fits 32 bits (`zcbor_int32_decode`).
    Int,
    /// A list (decoded by the handler itself, e.g. shell's `argv`).
    Array,
}

impl Kind {
    fn accepts(self, v: &Value) -> bool {
        match self {
            Kind::Text => v.is_text(),
            Kind::Bytes => v.is_bytes(),
            Kind::Bool => v.is_bool(),
            Kind::Uint => v.as_integer().is_some_and(|i| u32::try_from(i).is_ok()),
            Kind::Uint64 => v.as_integer().is_some_and(|i| u64::try_from(i).is_ok()),
            Kind::Int => v.as_integer().is_some_and(|i| i32::try_from(i).is_ok()),
            Kind::Array => v.is_array(),
        }
    }
}

/// Zephyr's `zcbor_map_decode_bulk` (`subsys/mgmt/mcumgr/util/src/zcbor_bulk.c`), which every
/// handler that reads its request runs first and answers `MGMT_ERR_EINVAL` when it fails: the
/// body must be a map (`zcbor_map_start_decode`); decoding stops at the first key that is not
/// a text string, and the map then does not end where it should (`zcbor_map_end_decode`
/// fails); a known key seen twice is `-EADDRINUSE`; a known key whose value its decoder
/// refuses is `-ENOMSG`. Unknown text keys are skipped whatever their value.
pub fn decode_bulk(body: Option<&Value>, keys: &[(&str, Kind)]) -> Result<(), Fail> {
    let einval = Fail::Smp(smpflash_core::rc::MGMT_ERR_EINVAL);
    let Some(Value::Map(entries)) = body else {
        return Err(einval);
    };
    let mut seen = vec![false; keys.len()];
    for (k, v) in entries {
        let Some(k) = k.as_text() else {
            return Err(einval);
        };
        if let Some(i) = keys.iter().position(|(name, _)| *name == k) {
            if seen[i] || !keys[i].1.accepts(v) {
                return Err(einval);
            }
            seen[i] = true;
        }
    }
    Ok(())
}
