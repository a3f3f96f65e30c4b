//! Settings group handlers with Zephyr's rules (`settings_mgmt.c`) over a settings store with
//! one registered root key, `app`: values written at run time, saved to storage (the state
//! file), loaded back at boot. A name under any other root key answers "root key not found".

use std::collections::BTreeMap;

use ciborium::Value;
use serde::{Deserialize, Serialize};

use crate::smp::request::{field, Fail, Handled, Request};
use smpflash_core::rc::{group, settings as rc, MGMT_ERR_EINVAL};

/// The root key the device registers a handler for.
pub const ROOT: &str = "app";

/// `CONFIG_MCUMGR_GRP_SETTINGS_NAME_LEN` (a name of this length or more is too long).
const NAME_LEN: usize = 32;

/// `CONFIG_MCUMGR_GRP_SETTINGS_VALUE_LEN`.
pub const VALUE_LEN: usize = 32;

/// The settings: what the handler holds now, and what storage holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// Values the handler holds (RAM).
    pub runtime: BTreeMap<String, Vec<u8>>,
    /// Values in storage (flash: the state file).
    pub stored: Stored,
}

/// Values in storage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    /// Name to value.
    pub values: BTreeMap<String, Vec<u8>>,
}

impl Settings {
    /// At boot the application runs `settings_load`.
    pub fn boot(&mut self) {
        self.runtime = self.stored.values.clone();
    }
}

fn err(code: i64) -> Fail {
    Fail::Group { group: group::SETTINGS, rc: code, reason: None }
}

/// The name, checked as every settings handler checks it.
fn name(r: &Request<'_>) -> Result<String, Fail> {
    let n = match field(r.body, "name").and_then(Value::as_text) {
        Some(n) if !n.is_empty() => n,
        _ => return Err(Fail::Smp(MGMT_ERR_EINVAL)),
    };
    if n.len() >= NAME_LEN {
        return Err(err(rc::KEY_TOO_LONG));
    }
    Ok(n.to_string())
}

/// `settings_parse_and_lookup`: the handler is found by the name's first component.
fn registered(name: &str) -> bool {
    name.split('/').next() == Some(ROOT)
}

/// `settings_mgmt_read`.
pub fn read(s: &Settings, r: &mut Request<'_>) -> Handled {
    let name = name(r)?;
    let asked = field(r.body, "max_size").and_then(Value::as_integer).and_then(|i| usize::try_from(i).ok());
    let limited = asked.is_some_and(|m| m > VALUE_LEN);
    let max = asked.unwrap_or(VALUE_LEN).min(VALUE_LEN);
    if !registered(&name) {
        return Err(err(rc::ROOT_KEY_NOT_FOUND));
    }
    let Some(v) = s.runtime.get(&name) else { return Err(err(rc::KEY_NOT_FOUND)) };
    let mut out = vec![("val", Value::Bytes(v[..v.len().min(max)].to_vec()))];
    if limited {
        out.push(("max_size", Value::Integer((VALUE_LEN as u64).into())));
    }
    Ok(out)
}

/// `settings_mgmt_write` (`settings_runtime_set`).
pub fn write(s: &mut Settings, r: &mut Request<'_>) -> Handled {
    let name = name(r)?;
    let Some(Value::Bytes(val)) = field(r.body, "val") else { return Err(Fail::Smp(MGMT_ERR_EINVAL)) };
    if !registered(&name) {
        return Err(err(rc::ROOT_KEY_NOT_FOUND));
    }
    s.runtime.insert(name, val.clone());
    Ok(vec![])
}

/// `settings_mgmt_delete` (`settings_delete`: storage only).
pub fn delete(s: &mut Settings, r: &mut Request<'_>) -> Handled {
    let name = name(r)?;
    if s.stored.values.remove(&name).is_none() {
        return Err(err(rc::KEY_NOT_FOUND));
    }
    r.reply.flash_changed = true;
    Ok(vec![])
}

/// `settings_mgmt_load`.
pub fn load(s: &mut Settings) -> Handled {
    s.runtime.extend(s.stored.values.clone());
    Ok(vec![])
}

/// `settings_mgmt_save`: everything, or the subtree `name` (`settings_save_subtree`).
pub fn save(s: &mut Settings, r: &mut Request<'_>) -> Handled {
    let subtree = field(r.body, "name").and_then(Value::as_text).map(str::to_string);
    let under = |k: &str| subtree.as_deref().is_none_or(|t| k == t || k.starts_with(&format!("{t}/")));
    let chosen: Vec<(String, Vec<u8>)> =
        s.runtime.iter().filter(|(k, _)| under(k)).map(|(k, v)| (k.clone(), v.clone())).collect();
    s.stored.values.extend(chosen);
    r.reply.flash_changed = true;
    Ok(vec![])
}
