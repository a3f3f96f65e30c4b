//! OS group handlers: echo, reset, MCUmgr parameters, OS/application info, bootloader info.

use ciborium::Value;

use smpflash_core::rc::{self, group};

use crate::profile::Profile;
use crate::smp::request::{field, Fail, Handled, Request};

/// Echo `d` back as `r`. Zephyr's `os_mgmt_echo` starts from an empty string and decodes `d`
/// only if it is there (`zcbor_map_decode_bulk` does not require a key), so an echo without
/// `d` is answered `{"r": ""}`; a `d` that is not text fails the decode (the server checks
/// that before calling this).
pub fn echo(r: &mut Request<'_>) -> Handled {
    match field(r.body, "d") {
        Some(Value::Text(t)) => Ok(vec![("r", Value::Text(t.clone()))]),
        None => Ok(vec![("r", Value::Text(String::new()))]),
        Some(_) => Err(Fail::Smp(rc::MGMT_ERR_EINVAL)),
    }
}

/// Accept the reset; the device reboots once the answer is out. `boot_mode` 1 (Zephyr's
/// `BOOT_MODE_TYPE_BOOTLOADER`, with `CONFIG_MCUMGR_GRP_OS_RESET_BOOT_MODE`) asks for the
/// bootloader at the next boot; the profile decides whether MCUboot honours it.
pub fn reset(r: &mut Request<'_>) -> Handled {
    r.reply.reset = true;
    r.reply.boot_mode_bootloader =
        matches!(field(r.body, "boot_mode"), Some(Value::Integer(n)) if i128::from(*n) == 1);
    Ok(vec![])
}

/// Report the SMP buffer parameters.
pub fn params(profile: &Profile) -> Handled {
    Ok(vec![
        ("buf_size", Value::Integer((profile.buf_size as u64).into())),
        ("buf_count", Value::Integer((profile.buf_count as u64).into())),
    ])
}

/// `uname`-like information, Zephyr's format letters.
pub fn info(profile: &Profile, r: &mut Request<'_>) -> Handled {
    let format = match field(r.body, "format") {
        None => "s".to_string(),
        Some(Value::Text(t)) => t.clone(),
        Some(_) => return Err(Fail::Smp(rc::MGMT_ERR_EINVAL)),
    };
    let board = format!("smpflash-sim/{}", profile.name);
    let all = [
        "Zephyr",
        "smpflash-sim",
        "3.7.99",
        "v3.7.99",
        "Nov 24 2026 00:00:00",
        "arm",
        "cortex-m33",
        &board,
        "Zephyr",
    ];
    let mut parts = Vec::new();
    for c in format.chars() {
        let i = match c {
            's' => 0,
            'n' => 1,
            'r' => 2,
            'v' => 3,
            'b' => 4,
            'm' => 5,
            'p' => 6,
            'i' => 7,
            'o' => 8,
            'a' => {
                parts.extend(all.iter().map(|s| s.to_string()));
                continue;
            }
            _ => return Err(Fail::Group { group: group::OS, rc: rc::os::INVALID_FORMAT, reason: None }),
        };
        parts.push(all[i].to_string());
    }
    Ok(vec![("output", Value::Text(parts.join(" ")))])
}

/// `{"bootloader": "MCUboot"}`, or the mode for `{"query": "mode"}`.
pub fn bootloader_info(profile: &Profile, r: &mut Request<'_>) -> Handled {
    match field(r.body, "query") {
        None => Ok(vec![("bootloader", Value::Text("MCUboot".into()))]),
        Some(Value::Text(q)) if q == "mode" => {
            let mut out = vec![("mode", Value::Integer(profile.mode.mode_number().into()))];
            if profile.no_downgrade {
                out.push(("no-downgrade", Value::Bool(true)));
            }
            Ok(out)
        }
        Some(_) => Err(Fail::Group { group: group::OS, rc: rc::os::QUERY_YIELDS_NO_ANSWER, reason: None }),
    }
}
