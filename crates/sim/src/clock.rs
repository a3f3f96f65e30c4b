//! Waiting as precisely as the modelled hardware would.
//!
//! Tokio's timer rounds every sleep up to its next millisecond tick, which adds up to a
//! millisecond to each flash operation and to each delayed answer: 5-10 % of a 15 ms round trip
//! or of a 25 ms chunk program, a slower device than the one the profile describes and the
//! capacity formulas assume. A blocking-pool thread sleeps with the kernel's timer instead
//! (tens of microseconds late), and the runtime stays free meanwhile.

use std::time::Duration;

/// Sleeps for `d` to within tens of microseconds.
pub async fn sleep(d: Duration) {
    if d.is_zero() {
        return;
    }
    if tokio::task::spawn_blocking(move || std::thread::sleep(d)).await.is_err() {
        // The blocking pool is shutting down with the runtime: nothing is left to wait for.
        tokio::time::sleep(d).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[tokio::test]
    async fn never_wakes_early() {
        for micros in [0, 1, 150, 2_300] {
            let d = Duration::from_micros(micros);
            let t = Instant::now();
            sleep(d).await;
            assert!(t.elapsed() >= d);
        }
    }
}
