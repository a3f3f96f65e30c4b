//! The device's flash: slots of bytes that erase to 0xFF by sector and program by byte, with
//! the time each operation would take.

use std::time::Duration;

use crate::profile::FlashTiming;

/// Value of erased flash.
pub const ERASED: u8 = 0xFF;

/// All slots of the device, indexed like Zephyr: image `i` has slots `2i` (primary) and
/// `2i + 1` (secondary).
#[derive(Debug, Clone, PartialEq)]
pub struct Flash {
    slots: Vec<Vec<u8>>,
    timing: FlashTiming,
}

impl Flash {
    /// Erased flash with the given slot sizes.
    pub fn new(slot_sizes: &[usize], timing: FlashTiming) -> Self {
        Flash { slots: slot_sizes.iter().map(|&s| vec![ERASED; s]).collect(), timing }
    }

    /// Rebuilds flash from saved slot contents.
    pub fn from_slots(slots: Vec<Vec<u8>>, timing: FlashTiming) -> Self {
        Flash { slots, timing }
    }

    /// Number of slots.
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// The bytes of one slot.
    pub fn slot(&self, slot: usize) -> &[u8] {
        &self.slots[slot]
    }

    /// All slots, for saving.
    pub fn slots(&self) -> &[Vec<u8>] {
        &self.slots
    }

    /// Sector size.
    pub fn sector_size(&self) -> usize {
        self.timing.sector_size
    }

    /// Erases the sectors covering `offset..offset + len` of `slot`; returns the time it takes.
    pub fn erase(&mut self, slot: usize, offset: usize, len: usize) -> Duration {
        let ss = self.timing.sector_size;
        let size = self.slots[slot].len();
        let start = offset / ss * ss;
        let end = (offset + len).div_ceil(ss).saturating_mul(ss).min(size);
        if start >= end {
            return Duration::ZERO;
        }
        self.slots[slot][start..end].fill(ERASED);
        self.timing.erase_per_sector * ((end - start) / ss) as u32
    }

    /// Erases a whole slot.
    pub fn erase_slot(&mut self, slot: usize) -> Duration {
        let len = self.slots[slot].len();
        self.erase(slot, 0, len)
    }

    /// Programs `data` at `offset` of `slot`; returns the time it takes.
    ///
    /// NOR flash can only clear bits; programming over unerased bytes ANDs them, which is what
    /// a real part does and what makes a missing erase visible as a corrupt image.
    pub fn program(&mut self, slot: usize, offset: usize, data: &[u8]) -> Duration {
        let target = &mut self.slots[slot][offset..offset + data.len()];
        for (t, d) in target.iter_mut().zip(data) {
            *t &= *d;
        }
        self.timing.program_per_byte * data.len() as u32
    }

    /// Whether the whole slot reads as erased.
    pub fn is_erased(&self, slot: usize) -> bool {
        self.slots[slot].iter().all(|&b| b == ERASED)
    }

    /// Exchanges sector `sector` of two slots (one step of a swap): erasing and programming
    /// both, and staging the primary's sector the way swap-using-move does.
    pub fn swap_sector(&mut self, a: usize, b: usize, sector: usize) -> Duration {
        let ss = self.timing.sector_size;
        let range = sector * ss..(sector + 1) * ss;
        let from_a = self.slots[a][range.clone()].to_vec();
        let from_b = self.slots[b][range.clone()].to_vec();
        self.slots[a][range.clone()].copy_from_slice(&from_b);
        self.slots[b][range].copy_from_slice(&from_a);
        // move + two copies: three erases and three sector writes per swapped sector.
        (self.timing.erase_per_sector + self.timing.program_per_byte * ss as u32) * 3
    }

    /// Copies sector `sector` of `from` over the same sector of `to` (overwrite-only).
    pub fn copy_sector(&mut self, from: usize, to: usize, sector: usize) -> Duration {
        let ss = self.timing.sector_size;
        let range = sector * ss..(sector + 1) * ss;
        let data = self.slots[from][range.clone()].to_vec();
        self.slots[to][range].copy_from_slice(&data);
        self.timing.erase_per_sector + self.timing.program_per_byte * ss as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing() -> FlashTiming {
        FlashTiming {
            sector_size: 16,
            erase_per_sector: Duration::from_millis(10),
            program_per_byte: Duration::from_micros(1),
        }
    }

    #[test]
    fn erase_rounds_to_sectors_and_program_only_clears_bits() {
        let mut f = Flash::new(&[64], timing());
        assert_eq!(f.program(0, 3, &[0x0F, 0xF0]), Duration::from_micros(2));
        assert_eq!(f.program(0, 3, &[0xF0]), Duration::from_micros(1));
        assert_eq!(f.slot(0)[3], 0x00);
        assert_eq!(f.erase(0, 5, 20), Duration::from_millis(20));
        assert!(f.is_erased(0));
        f.program(0, 40, &[1]);
        assert_eq!(f.erase(0, 0, 16), Duration::from_millis(10));
        assert!(!f.is_erased(0));
    }

    #[test]
    fn swapping_a_sector_exchanges_contents() {
        let mut f = Flash::new(&[32, 32], timing());
        f.program(0, 0, &[1; 16]);
        f.program(1, 0, &[2; 16]);
        f.swap_sector(0, 1, 0);
        assert_eq!(&f.slot(0)[..16], &[2; 16]);
        assert_eq!(&f.slot(1)[..16], &[1; 16]);
    }
}
