//! The vocabulary the SMP server and its group handlers share: what a handler is given
//! ([`Request`]), what it returns ([`Handled`], [`Fail`]), what the server makes of a request
//! ([`Reply`]), and the CBOR map helpers. It lives apart from the dispatcher so the handlers
//! ([`super::os`], [`super::img`]) and the dispatcher ([`super::server`]) both import it and
//! neither imports the other's caller.

use std::time::Duration;

use ciborium::Value;

/// A failed request, as the handler reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
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
}

/// What a handler produced.
pub type Handled = Result<Vec<(&'static str, Value)>, Fail>;

/// What the server does with one request.
#[derive(Debug, Default)]
pub struct Reply {
    /// The answer frame; `None` when Zephyr would send nothing (undecodable header, a
    /// response op).
    pub frame: Option<Vec<u8>>,
    /// The device resets after sending the answer.
    pub reset: bool,
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
