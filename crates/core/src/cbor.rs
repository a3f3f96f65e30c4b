//! CBOR encoding and decoding of message bodies, and exact encoded sizes.
//!
//! Sizes are measured by serializing into a byte counter rather than estimated, so chunk sizing
//! can fill a device buffer to the last byte without a guessed margin.

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::error::{DeviceError, Error, Result};

/// Encodes `value` as CBOR.
pub fn to_vec<T: Serialize>(value: &T, what: &'static str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).map_err(|source| Error::Encode { what, source })?;
    Ok(out)
}

/// Decodes a CBOR body (definite or indefinite-length maps alike).
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8], what: &'static str) -> Result<T> {
    ciborium::from_reader(bytes).map_err(|source| Error::Decode { what, source })
}

/// A writer that only counts what it is given.
#[derive(Debug, Default)]
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The exact number of bytes `value` encodes to.
pub fn encoded_len<T: Serialize>(value: &T) -> Result<usize> {
    let mut counter = Counter::default();
    ciborium::into_writer(value, &mut counter).map_err(|source| Error::Encode { what: "message", source })?;
    Ok(counter.0)
}

/// The error keys any response may carry.
#[derive(Debug, Default, Deserialize)]
struct ErrorKeys {
    #[serde(default)]
    rc: Option<i64>,
    #[serde(default)]
    rsn: Option<String>,
    #[serde(default)]
    err: Option<GroupErr>,
}

#[derive(Debug, Deserialize)]
struct GroupErr {
    group: u16,
    rc: i64,
}

/// Finds an error in a response body: v2 `{"err": {"group", "rc"}}` or v1 `{"rc": N}`.
///
/// `rc: 0` and `err.rc: 0` mean success, as Zephyr defines.
pub fn device_error(body: &[u8], request_group: u16) -> Result<Option<DeviceError>> {
    let keys: ErrorKeys = from_slice(body, "response")?;
    if let Some(err) = keys.err.filter(|e| e.rc != 0) {
        return Ok(Some(DeviceError { group: Some(err.group), rc: err.rc, reason: keys.rsn, request_group }));
    }
    Ok(keys.rc.filter(|&rc| rc != 0).map(|rc| DeviceError {
        group: None,
        rc,
        reason: keys.rsn,
        request_group,
    }))
}

/// A compact CBOR diagnostic rendering of a body for `-v` traces: maps and arrays in full, byte
/// strings as hex (long ones, and long text, shortened with their length).
pub fn diagnostic(body: &[u8]) -> String {
    match ciborium::from_reader::<ciborium::Value, _>(body) {
        Ok(v) => render(&v),
        Err(e) => format!("<undecodable CBOR, {} bytes: {e}>", body.len()),
    }
}

/// One CBOR value in the diagnostic rendering of [`diagnostic`] (`smpflash decode` shows bodies
/// the same way).
pub(crate) fn render(v: &ciborium::Value) -> String {
    let mut out = String::new();
    render_into(v, &mut out);
    out
}

fn render_into(v: &ciborium::Value, out: &mut String) {
    use ciborium::Value;
    use std::fmt::Write;
    match v {
        Value::Map(entries) => {
            out.push('{');
            for (i, (k, val)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                render_into(k, out);
                out.push_str(": ");
                render_into(val, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                render_into(item, out);
            }
            out.push(']');
        }
        Value::Bytes(b) if b.len() > 16 => {
            let _ = write!(out, "h'{}…' ({} bytes)", hex::encode(&b[..16]), b.len());
        }
        Value::Bytes(b) => {
            let _ = write!(out, "h'{}'", hex::encode(b));
        }
        Value::Text(t) if t.chars().count() > 64 => {
            let head: String = t.chars().take(32).collect();
            let _ = write!(out, "{head:?}… ({} characters)", t.chars().count());
        }
        Value::Text(t) => {
            let _ = write!(out, "{t:?}");
        }
        Value::Integer(i) => {
            let _ = write!(out, "{}", i128::from(*i));
        }
        Value::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Value::Null => out.push_str("null"),
        other => {
            let _ = write!(out, "{other:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_matches_real_encoding() {
        let v = serde_bytes::ByteBuf::from(vec![0u8; 300]);
        assert_eq!(encoded_len(&v).unwrap(), to_vec(&v, "t").unwrap().len());
        assert_eq!(encoded_len(&v).unwrap(), 303);
    }

    #[test]
    fn errors_in_both_formats() {
        // {"rc": 8}
        let v1 = device_error(&[0xA1, 0x62, b'r', b'c', 0x08], 0).unwrap().unwrap();
        assert_eq!((v1.group, v1.rc), (None, 8));
        // {"err": {"group": 1, "rc": 23}}
        let body = [
            0xA1, 0x63, b'e', b'r', b'r', 0xA2, 0x65, b'g', b'r', b'o', b'u', b'p', 0x01, 0x62, b'r', b'c',
            0x17,
        ];
        let v2 = device_error(&body, 1).unwrap().unwrap();
        assert_eq!((v2.group, v2.rc), (Some(1), 23));
        assert_eq!(
            v2.to_string(),
            "device rejected the image: invalid header magic \
             (image group rc 23, IMG_MGMT_ERR_INVALID_IMAGE_HEADER_MAGIC)"
        );
        // {"rc": 0} is success
        assert!(device_error(&[0xA1, 0x62, b'r', b'c', 0x00], 0).unwrap().is_none());
        // indefinite-length map {_ "rc": 1, "rsn": "x"}
        let indef = [0xBF, 0x62, b'r', b'c', 0x01, 0x63, b'r', b's', b'n', 0x61, b'x', 0xFF];
        let e = device_error(&indef, 1).unwrap().unwrap();
        assert_eq!(e.reason.as_deref(), Some("x"));
        assert!(e.to_string().ends_with("device says: x"));
    }
}
