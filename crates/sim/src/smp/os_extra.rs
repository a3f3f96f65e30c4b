//! OS group handlers beside echo/reset/params/info: task statistics and the date and time
//! (`os_mgmt.c`), as `smp_svr` has them (no memory pool command: Zephyr has none).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ciborium::Value;

use crate::smp::request::{field, map, Fail, Handled, Request};
use smpflash_core::rc::{group, MGMT_ERR_EINVAL};

/// `OS_MGMT_ERR_RTC_NOT_SET`.
const RTC_NOT_SET: i64 = 4;

/// `os_mgmt_taskstat_read`: `smp_svr`'s threads on native_sim.
pub fn taskstat() -> Handled {
    let threads: [(&str, i64, u64, u64, u64); 6] = [
        ("", -16, 4, 6, 6),
        ("mcumgr smp", 3, 128, 512, 6),
        ("sysworkq", -1, 2, 576, 6),
        ("shell_dummy", 14, 2, 512, 6),
        ("idle", 15, 0, 64, 5),
        ("main", 0, 4, 544, 6),
    ];
    let tasks = threads
        .iter()
        .enumerate()
        .map(|(tid, (name, prio, state, stksiz, stkuse))| {
            (
                Value::Text((*name).into()),
                map(vec![
                    ("prio", Value::Integer((*prio).into())),
                    ("tid", Value::Integer((tid as u64).into())),
                    ("state", Value::Integer((*state).into())),
                    ("stksiz", Value::Integer((*stksiz).into())),
                    ("stkuse", Value::Integer((*stkuse).into())),
                ]),
            )
        })
        .collect();
    Ok(vec![("tasks", Value::Map(tasks))])
}

/// The RTC: the time set, as an offset from the host's clock; `None` until set.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rtc {
    offset: Option<i64>,
}

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs() as i64
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The civil date of a day count (`civil_from_days`).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `os_mgmt_datetime_read`.
pub fn datetime_read(rtc: &Rtc) -> Handled {
    let Some(offset) = rtc.offset else {
        return Err(Fail::Group { group: group::OS, rc: RTC_NOT_SET, reason: None });
    };
    let t = now_secs() + offset;
    let (y, mo, d) = civil_from_days(t.div_euclid(86400));
    let s = t.rem_euclid(86400);
    let text = format!("{y:4}-{mo:02}-{d:02}T{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
    Ok(vec![("datetime", Value::Text(text))])
}

/// `strtol` in base 10 from the start of `s`: the value and the rest, `None` with no digits.
fn strtol(s: &str) -> Option<(i64, &str)> {
    let t = s.trim_start();
    let (sign, digits) = match t.strip_prefix('-') {
        Some(r) => (-1, r),
        None => (1, t.strip_prefix('+').unwrap_or(t)),
    };
    let n = digits.bytes().take_while(u8::is_ascii_digit).count();
    if n == 0 {
        return None;
    }
    Some((sign * digits[..n].parse::<i64>().ok()?, &digits[n..]))
}

/// `os_mgmt_datetime_write`: six numbers with one delimiter after each, in bounds.
pub fn datetime_write(rtc: &mut Rtc, r: &mut Request<'_>) -> Handled {
    let Some(text) = field(r.body, "datetime").and_then(Value::as_text) else {
        return Err(Fail::Smp(MGMT_ERR_EINVAL));
    };
    if !(19..26).contains(&text.len()) {
        return Err(Fail::Smp(MGMT_ERR_EINVAL));
    }
    let bounds = [(1900, 11899), (1, 12), (1, 31), (0, 23), (0, 59), (0, 59)];
    let mut v = [0i64; 6];
    let mut pos = text;
    for (i, (lo, hi)) in bounds.iter().enumerate() {
        if pos.is_empty() {
            return Err(Fail::Smp(MGMT_ERR_EINVAL));
        }
        let (n, rest) = strtol(pos).ok_or(Fail::Smp(MGMT_ERR_EINVAL))?;
        if n < *lo || n > *hi {
            return Err(Fail::Smp(MGMT_ERR_EINVAL));
        }
        v[i] = n;
        // One delimiter after each field.
        pos = rest.get(1..).unwrap_or("");
    }
    let t = days_from_civil(v[0], v[1], v[2]) * 86400 + v[3] * 3600 + v[4] * 60 + v[5];
    rtc.offset = Some(t - now_secs());
    Ok(vec![])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip() {
        for (y, m, d) in [(1970, 1, 1), (2000, 2, 29), (2026, 12, 2), (1900, 3, 1)] {
            assert_eq!(civil_from_days(days_from_civil(y, m, d)), (y, m, d));
        }
        assert_eq!(days_from_civil(1970, 1, 2), 1);
    }
}
