//! The image slots as a client sees them (the image state read), and what the next boot will
//! do with them, in one sentence per image.

use ciborium::Value;

use crate::profile::Profile;
use crate::smp::img;
use crate::smp::request::field;
use crate::state::State;

/// One slot's entry of the image state read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotView {
    /// Image number.
    pub image: u64,
    /// Slot within the image (0 primary, 1 secondary).
    pub slot: u64,
    /// Version text.
    pub version: String,
    /// Running now.
    pub active: bool,
    /// Marked to boot at the next reset.
    pub pending: bool,
    /// Confirmed.
    pub confirmed: bool,
    /// Marked for good.
    pub permanent: bool,
}

/// The slots as the image state read reports them.
pub fn read(state: &State, profile: &Profile) -> Vec<SlotView> {
    let entries = img::state_read(state, profile);
    let Some((_, Value::Array(list))) = entries.iter().find(|(k, _)| *k == "images") else {
        return Vec::new();
    };
    list.iter()
        .map(|e| {
            let flag = |k: &str| matches!(field(e, k), Some(Value::Bool(true)));
            let num = |k: &str| field(e, k).and_then(|v| v.as_integer()).and_then(|i| u64::try_from(i).ok());
            SlotView {
                image: num("image").unwrap_or(0),
                slot: num("slot").unwrap_or(0),
                version: field(e, "version").and_then(|v| v.as_text()).unwrap_or("?").to_string(),
                active: flag("active"),
                pending: flag("pending"),
                confirmed: flag("confirmed"),
                permanent: flag("permanent"),
            }
        })
        .collect()
}

/// The situation of one image, from its slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSituation {
    /// The running slot.
    pub running: Option<SlotView>,
    /// The other slot, when it holds an image.
    pub other: Option<SlotView>,
}

/// Groups the slots by image.
pub fn situations(slots: &[SlotView]) -> Vec<(u64, ImageSituation)> {
    let mut images: Vec<u64> = slots.iter().map(|s| s.image).collect();
    images.dedup();
    images
        .into_iter()
        .map(|i| {
            let mine = slots.iter().filter(|s| s.image == i);
            let running = mine.clone().find(|s| s.active).cloned();
            let other = mine.clone().find(|s| !s.active).cloned();
            (i, ImageSituation { running, other })
        })
        .collect()
}

impl ImageSituation {
    /// An image runs under test: active and not confirmed (MCUboot reverts it at the next
    /// reset).
    pub fn under_test(&self) -> bool {
        self.running.as_ref().is_some_and(|r| !r.confirmed)
    }

    /// The other slot is marked for the next boot.
    pub fn marked(&self) -> bool {
        self.other.as_ref().is_some_and(|o| o.pending)
    }

    /// What the next reset does with this image, in one sentence.
    pub fn next_boot(&self) -> String {
        let running = self.running.as_ref().map_or("?", |r| r.version.as_str());
        match &self.other {
            _ if self.under_test() => {
                let back = self.other.as_ref().map_or("the previous image", |o| o.version.as_str());
                format!("{running} runs under test and is not confirmed: the next reset reverts to {back}")
            }
            Some(o) if o.pending && o.permanent => {
                format!("{} is marked permanent: the next reset boots it and keeps it", o.version)
            }
            Some(o) if o.pending => format!(
                "{} is marked for test: the next reset boots it once, and it reverts unless confirmed",
                o.version
            ),
            Some(o) => format!(
                "{running} runs, confirmed; the other slot holds {}, not marked: a reset changes nothing",
                o.version
            ),
            None => format!("{running} runs, confirmed; the other slot is empty: a reset changes nothing"),
        }
    }
}
