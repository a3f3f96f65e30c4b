//! Enumeration group handlers with Zephyr's rules (`enum_mgmt.c`): the groups in registration
//! order (Zephyr's handler sections, sorted by name: enum, fs, img, os, settings, shell, stat,
//! zephyr basic), their names and handler counts (`CONFIG_MCUMGR_GRP_ENUM_DETAILS_NAME`,
//! `_HANDLERS`, as `smp_svr` has them).

use ciborium::Value;

use crate::smp::request::{field, map, Fail, Handled, Request};
use smpflash_core::rc::{enumeration as rc, group, MGMT_ERR_EINVAL};

/// One registered group: id, name, handler count.
pub type Group = (u16, &'static str, u32);

/// `MAX_MCUMGR_GROUPS`.
const MAX_GROUPS: u64 = 65535;

/// `enum_mgmt_count`.
pub fn count(groups: &[Group]) -> Handled {
    Ok(vec![("count", Value::Integer((groups.len() as u64).into()))])
}

/// `enum_mgmt_list`.
pub fn list(groups: &[Group]) -> Handled {
    Ok(vec![("groups", Value::Array(groups.iter().map(|g| Value::Integer(g.0.into())).collect()))])
}

/// `enum_mgmt_single`.
pub fn single(groups: &[Group], r: &mut Request<'_>) -> Handled {
    let index = match field(r.body, "index") {
        None => 0,
        Some(v) => v.as_integer().and_then(|i| u64::try_from(i).ok()).ok_or(Fail::Smp(MGMT_ERR_EINVAL))?,
    };
    if index > MAX_GROUPS {
        return Err(Fail::Smp(MGMT_ERR_EINVAL));
    }
    let Some(g) = groups.get(index as usize) else {
        return Err(Fail::Group { group: group::ENUM, rc: rc::INDEX_TOO_LARGE, reason: None });
    };
    let mut out = vec![("group", Value::Integer(g.0.into()))];
    if index as usize + 1 == groups.len() {
        out.push(("end", Value::Bool(true)));
    }
    Ok(out)
}

/// `enum_mgmt_details`: all groups, or those listed in `groups`.
pub fn details(groups: &[Group], r: &mut Request<'_>) -> Handled {
    let wanted: Option<Vec<u16>> = match field(r.body, "groups") {
        None => None,
        Some(Value::Array(ids)) => {
            let ids: Option<Vec<u16>> =
                ids.iter().map(|v| v.as_integer().and_then(|i| u16::try_from(i).ok())).collect();
            Some(ids.ok_or(Fail::Smp(MGMT_ERR_EINVAL))?).filter(|ids| !ids.is_empty())
        }
        Some(_) => None,
    };
    let entries = groups
        .iter()
        .filter(|g| wanted.as_ref().is_none_or(|w| w.contains(&g.0)))
        .map(|(id, name, handlers)| {
            map(vec![
                ("group", Value::Integer((*id).into())),
                ("name", Value::Text((*name).into())),
                ("handlers", Value::Integer((*handlers).into())),
            ])
        })
        .collect();
    Ok(vec![("groups", Value::Array(entries))])
}
