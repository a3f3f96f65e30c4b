//! The management groups a device has: the enum group's list joined with its details, so the
//! CLI's `enum` and the Python package give the same answer.

use serde::Serialize;

use crate::client::Client;
use crate::command::enumeration::{GroupDetail, GroupDetails, GroupList};
use crate::{rc, Error, Result};

/// One management group of a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupSummary {
    /// Group id.
    pub group: u16,
    /// Its name: the device's, or smpflash's for a known id (`rc::group_name`).
    pub name: String,
    /// Number of command ids, when the device says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handlers: Option<u32>,
}

/// Joins the device's group list with its details (pure: the order is the list's; a group the
/// details leave out keeps smpflash's name for it).
pub fn join(list: &[u16], details: &[GroupDetail]) -> Vec<GroupSummary> {
    list.iter()
        .map(|&id| {
            let d = details.iter().find(|d| d.group == id);
            GroupSummary {
                group: id,
                name: d.and_then(|d| d.name.clone()).unwrap_or_else(|| rc::group_name(id)),
                handlers: d.and_then(|d| d.handlers),
            }
        })
        .collect()
}

/// Asks the device for its groups (enum list), then for their details; a device built
/// without `CONFIG_MCUMGR_GRP_ENUM_DETAILS` answers "not supported", and the list alone is
/// returned then.
pub async fn list(client: &Client) -> Result<Vec<GroupSummary>> {
    let list = client.request(&GroupList {}).await?.groups;
    let details = match client.request(&GroupDetails::default()).await {
        Ok(d) => d.groups,
        Err(Error::Device(e)) if e.is_not_supported() => Vec::new(),
        Err(e) => return Err(e),
    };
    Ok(join(&list, &details))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_name_groups_and_the_rest_keep_smpflash_names() {
        let details = vec![GroupDetail { group: 9, name: Some("shell mgmt".into()), handlers: Some(1) }];
        let joined = join(&[0, 9], &details);
        assert_eq!(joined[0], GroupSummary { group: 0, name: rc::group_name(0), handlers: None });
        assert_eq!(joined[1], GroupSummary { group: 9, name: "shell mgmt".into(), handlers: Some(1) });
    }
}
