//! A small seeded pseudo-random generator for backoff jitter.
//!
//! The engine owns its generator so that a run is reproducible from its seed: a test that scripts the same
//! outcomes with the same seed sees the same delays. SplitMix64 is tiny, fast, and passes BigCrush, which is
//! far more than jitter needs; no cryptographic property is wanted here.

/// SplitMix64 (Steele, Lea and Flood, 2014).
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value uniformly distributed in `0..=bound`.
    ///
    /// Lemire's multiply-shift maps 64 random bits onto the range; its bias is below 2^-64 per value for the
    /// bounds used here (nanoseconds of a backoff), which no caller can observe.
    pub(crate) fn below_inclusive(&mut self, bound: u64) -> u64 {
        if bound == u64::MAX {
            return self.next_u64();
        }
        ((u128::from(self.next_u64()) * (u128::from(bound) + 1)) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let mut a = SplitMix64::new(42);
        let mut b = SplitMix64::new(42);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        let mut c = SplitMix64::new(43);
        assert_ne!(SplitMix64::new(42).next_u64(), c.next_u64());
    }

    #[test]
    fn bounded_values_stay_in_range_and_cover_it() {
        let mut rng = SplitMix64::new(7);
        let mut seen = [false; 11];
        for _ in 0..10_000 {
            let v = rng.below_inclusive(10);
            assert!(v <= 10);
            seen[v as usize] = true;
        }
        assert!(seen.iter().all(|&s| s), "every value of 0..=10 drawn: {seen:?}");
        assert_eq!(rng.below_inclusive(0), 0);
    }
}
