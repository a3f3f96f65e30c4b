//! Seeded fault injection, so a failing run repeats exactly.

/// A small deterministic generator (splitmix64): enough to pick which datagrams to drop.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// True with probability `p` (0.0..=1.0).
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// Device-level faults, each firing once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceFaults {
    /// Reset (RAM lost, flash kept) once this many upload data bytes have been written, before
    /// answering that request.
    pub reset_after_upload_bytes: Option<u64>,
    /// Lose power after this many sectors of the next swap, then power up again.
    pub power_loss_after_swap_sectors: Option<usize>,
    /// A new image under test crashes before it can confirm itself (a watchdog resets the
    /// device), so MCUboot reverts it: firmware that does not start.
    pub test_image_crashes: bool,
}

/// Datagram faults of the UDP front end, applied to requests and answers alike.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LinkFaults {
    /// Probability a datagram is lost.
    pub drop: f64,
    /// Probability a datagram is delivered twice.
    pub duplicate: f64,
    /// Probability an answer is held back (by [`crate::front::udp::REORDER_DELAY`]) so the answers
    /// after it overtake it.
    pub reorder: f64,
    /// Seed.
    pub seed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_rates_hold() {
        let a: Vec<u64> = {
            let mut r = Rng::new(7);
            (0..5).map(|_| r.next_u64()).collect()
        };
        let b: Vec<u64> = {
            let mut r = Rng::new(7);
            (0..5).map(|_| r.next_u64()).collect()
        };
        assert_eq!(a, b);
        let mut r = Rng::new(1);
        let hits = (0..100_000).filter(|_| r.chance(0.05)).count();
        assert!((4_500..5_500).contains(&hits), "{hits}");
        assert!(!Rng::new(3).chance(0.0));
    }
}
