//! Discovery filters (`Adapter1.SetDiscoveryFilter`): which clients' discoveries report the
//! device.

use std::collections::HashMap;

use smpflash_core::gatt::SMP_SERVICE_UUID;
use zbus::zvariant::{OwnedValue, Value};

use super::error::{BluezError, Result};

/// One client's discovery filter (`SetDiscoveryFilter`); what is not set does not filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct DiscoveryFilter {
    uuids: Vec<String>,
    rssi: Option<i16>,
    pattern: Option<String>,
    transport: Option<String>,
}

pub(crate) fn as_int(v: &OwnedValue) -> Option<i64> {
    match &**v {
        Value::I16(n) => Some(i64::from(*n)),
        Value::U16(n) => Some(i64::from(*n)),
        Value::I32(n) => Some(i64::from(*n)),
        Value::U32(n) => Some(i64::from(*n)),
        Value::I64(n) => Some(*n),
        Value::U64(n) => i64::try_from(*n).ok(),
        Value::U8(n) => Some(i64::from(*n)),
        _ => None,
    }
}

pub(crate) fn as_str(v: &OwnedValue) -> Option<String> {
    match &**v {
        Value::Str(s) => Some(s.to_string()),
        _ => None,
    }
}

impl DiscoveryFilter {
    /// Parses the dictionary of `SetDiscoveryFilter`, refusing what BlueZ refuses.
    pub(crate) fn parse(dict: &HashMap<String, OwnedValue>) -> Result<Self> {
        let bad =
            |key: &str| BluezError::InvalidArguments(format!("Invalid arguments in method call: {key}"));
        let mut f = DiscoveryFilter::default();
        for (key, value) in dict {
            match key.as_str() {
                "UUIDs" => {
                    let Value::Array(a) = &**value else { return Err(bad(key)) };
                    for item in a.iter() {
                        let Value::Str(s) = item else { return Err(bad(key)) };
                        f.uuids.push(s.to_ascii_lowercase());
                    }
                }
                "RSSI" => {
                    f.rssi = Some(as_int(value).and_then(|n| i16::try_from(n).ok()).ok_or_else(|| bad(key))?)
                }
                "Pathloss" => {
                    as_int(value).ok_or_else(|| bad(key))?;
                }
                "Transport" => {
                    let t = as_str(value).ok_or_else(|| bad(key))?;
                    if !["auto", "le", "bredr"].contains(&t.as_str()) {
                        return Err(bad(key));
                    }
                    f.transport = Some(t);
                }
                "DuplicateData" | "Discoverable" => {
                    if !matches!(&**value, Value::Bool(_)) {
                        return Err(bad(key));
                    }
                }
                "Pattern" => f.pattern = Some(as_str(value).ok_or_else(|| bad(key))?),
                _ => return Err(bad(key)),
            }
        }
        Ok(f)
    }

    /// Whether an advertisement of the device passes this filter.
    pub(crate) fn admits(&self, rssi: i16, address: &str, name: &str) -> bool {
        (self.uuids.is_empty() || self.uuids.iter().any(|u| u == SMP_SERVICE_UUID))
            && self.transport.as_deref() != Some("bredr")
            && self.rssi.is_none_or(|min| rssi >= min)
            && self.pattern.as_deref().is_none_or(|p| address.starts_with(p) || name.starts_with(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dict(entries: Vec<(&str, Value<'static>)>) -> HashMap<String, OwnedValue> {
        entries.into_iter().map(|(k, v)| (k.to_string(), OwnedValue::try_from(v).unwrap())).collect()
    }

    #[test]
    fn discovery_filters_parse_and_select() {
        let smp = DiscoveryFilter::parse(&dict(vec![
            ("UUIDs", Value::from(vec![SMP_SERVICE_UUID.to_ascii_uppercase()])),
            ("Transport", Value::from("le")),
            ("DuplicateData", Value::from(true)),
        ]))
        .unwrap();
        assert!(smp.admits(-50, "C0:53:4D:50:00:01", "smpflash-sim"));
        let other = DiscoveryFilter::parse(&dict(vec![(
            "UUIDs",
            Value::from(vec!["0000180d-0000-1000-8000-00805f9b34fb"]),
        )]))
        .unwrap();
        assert!(!other.admits(-50, "C0:53:4D:50:00:01", "smpflash-sim"));
        let far = DiscoveryFilter::parse(&dict(vec![("RSSI", Value::from(-40i16))])).unwrap();
        assert!(!far.admits(-50, "C0:53:4D:50:00:01", "smpflash-sim"));
        let named = DiscoveryFilter::parse(&dict(vec![("Pattern", Value::from("smp"))])).unwrap();
        assert!(named.admits(-50, "C0:53:4D:50:00:01", "smpflash-sim"));
        assert!(DiscoveryFilter::parse(&dict(vec![("Colour", Value::from("blue"))])).is_err());
        assert!(DiscoveryFilter::parse(&dict(vec![("Transport", Value::from("carrier-pigeon"))])).is_err());
        assert_eq!(DiscoveryFilter::parse(&HashMap::new()).unwrap(), DiscoveryFilter::default());
    }
}
