//! Statistics group handlers with Zephyr 4.4's rules (`stat_mgmt.c`) over the groups
//! `smp_svr` on native_sim has: `smp_svr_stats` (`ticks`, one a second since boot), the flash
//! simulator's thresholds, and its statistics.

use std::time::Duration;

use ciborium::Value;

use crate::smp::request::{field, map, Fail, Handled, Request};
use smpflash_core::rc::{group, stat as rc, MGMT_ERR_EINVAL};

/// `CONFIG_MCUMGR_GRP_STAT_MAX_NAME_LEN` (default 32, the terminating NUL included).
const MAX_NAME_LEN: usize = 32;

/// What the device counts.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    /// Requests handled.
    pub requests: u64,
    /// Bytes written to flash by the groups (files, settings).
    pub bytes_written: u64,
    /// Erases (storage erase).
    pub erases: u64,
}

/// The groups and their counters, in registration order.
fn groups(c: &Counters, uptime: Duration) -> Vec<(&'static str, Vec<(&'static str, u64)>)> {
    let mut flash_stats: Vec<(&'static str, u64)> = vec![
        ("bytes_read", 0),
        ("bytes_written", c.bytes_written),
        ("double_writes", 0),
        ("flash_read_calls", 0),
        ("flash_read_time_us", 0),
        ("flash_write_calls", c.requests),
        ("flash_write_time_us", 0),
        ("flash_erase_calls", c.erases),
        ("flash_erase_time_us", 0),
    ];
    // The flash simulator counts erases per unit: too many fields for a 384-byte buffer, as
    // on the real server.
    const UNITS: [&str; 16] = [
        "erase_cycles_unit0",
        "erase_cycles_unit1",
        "erase_cycles_unit2",
        "erase_cycles_unit3",
        "erase_cycles_unit4",
        "erase_cycles_unit5",
        "erase_cycles_unit6",
        "erase_cycles_unit7",
        "erase_cycles_unit8",
        "erase_cycles_unit9",
        "erase_cycles_unit10",
        "erase_cycles_unit11",
        "erase_cycles_unit12",
        "erase_cycles_unit13",
        "erase_cycles_unit14",
        "erase_cycles_unit15",
    ];
    flash_stats.extend(UNITS.iter().map(|u| (*u, c.erases)));
    vec![
        ("flash_sim_stats", flash_stats),
        ("flash_sim_thresholds", vec![("max_erase_calls", 0), ("max_len", 0), ("max_write_calls", 0)]),
        ("smp_svr_stats", vec![("ticks", uptime.as_secs())]),
    ]
}

/// `stat_mgmt_show`.
pub fn show(c: &Counters, uptime: Duration, r: &mut Request<'_>) -> Handled {
    let name = match field(r.body, "name").and_then(Value::as_text) {
        Some(n) if !n.is_empty() && n.len() < MAX_NAME_LEN => n.to_string(),
        _ => return Err(Fail::Smp(MGMT_ERR_EINVAL)),
    };
    let Some((_, fields)) = groups(c, uptime).into_iter().find(|(g, _)| *g == name) else {
        return Err(Fail::Group { group: group::STAT, rc: rc::INVALID_STAT_NAME, reason: None });
    };
    let fields = fields.into_iter().map(|(k, v)| (k, Value::Integer(v.into()))).collect();
    Ok(vec![("name", Value::Text(name)), ("fields", map(fields))])
}

/// `stat_mgmt_list`.
pub fn list(c: &Counters, uptime: Duration) -> Handled {
    let names = groups(c, uptime).into_iter().map(|(g, _)| Value::Text(g.into())).collect();
    Ok(vec![("stat_list", Value::Array(names))])
}
