//! Seeded, portable random numbers. Every random decision in dae (weight
//! init, per-epoch shuffles, figure samples, CV folds) draws from its own
//! stream derived from (seed, purpose, index), so a run can resume at any
//! epoch without storing generator state: the shuffle of epoch e depends only
//! on the seed and e.

use rand_core::{RngCore, SeedableRng};
use rand_pcg::Pcg64Mcg;

/// What a random stream is used for; part of the stream's derivation.
#[derive(Clone, Copy, Debug)]
pub enum Purpose {
    Init = 1,
    Shuffle = 2,
    Sample = 3,
    Folds = 4,
    Test = 5,
}

pub struct Rng(Pcg64Mcg);

/// SplitMix64 finaliser: decorrelates nearby (seed, purpose, index) triples.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a, 64-bit: a hash whose value is fixed by its definition (std's
/// hashers may change between Rust releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl Rng {
    pub fn new(seed: u64, purpose: Purpose, index: u64) -> Self {
        let a = mix(seed ^ mix(purpose as u64));
        let b = mix(a ^ mix(index.wrapping_add(0x5851_f42d_4c95_7f2d)));
        let state = ((a as u128) << 64) | b as u128;
        Rng(Pcg64Mcg::from_seed(state.to_le_bytes()))
    }

    /// The stream of `name` under `seed`: what a test case draws, so its
    /// inputs depend on the suite seed and the case's own name alone, not on
    /// which other cases ran before it.
    pub fn named(seed: u64, purpose: Purpose, name: &str) -> Self {
        Rng::new(seed, purpose, fnv1a(name.as_bytes()))
    }

    pub fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in [0, 1) with 24 random bits: exactly representable in f32.
    pub fn uniform(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 * (1.0 / (1u32 << 24) as f32)
    }

    /// Uniform in [lo, hi).
    pub fn uniform_in(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.uniform()
    }

    /// Unbiased integer in [0, n) (Lemire's multiply-and-reject).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0)");
        let threshold = n.wrapping_neg() % n;
        loop {
            let x = self.next_u64();
            let wide = (x as u128) * (n as u128);
            if (wide as u64) >= threshold {
                return (wide >> 64) as u64;
            }
        }
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }

    /// `count` distinct indices from [0, n), in draw order.
    pub fn sample_indices(&mut self, n: usize, count: usize) -> Vec<usize> {
        let mut all: Vec<usize> = (0..n).collect();
        let count = count.min(n);
        for i in 0..count {
            let j = i + self.below((n - i) as u64) as usize;
            all.swap(i, j);
        }
        all.truncate(count);
        all
    }
}

/// The permutation of `n` rows used in epoch `epoch` (0-based) of a run.
pub fn epoch_permutation(seed: u64, epoch: u64, n: usize) -> Vec<u32> {
    let mut perm: Vec<u32> = (0..n as u32).collect();
    Rng::new(seed, Purpose::Shuffle, epoch).shuffle(&mut perm);
    perm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4)
            .map(|_| Rng::new(7, Purpose::Init, 0).next_u64())
            .collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let b = Rng::new(7, Purpose::Init, 1).next_u64();
        let c = Rng::new(8, Purpose::Init, 0).next_u64();
        let d = Rng::new(7, Purpose::Shuffle, 0).next_u64();
        assert!(a[0] != b && a[0] != c && a[0] != d && b != c);
    }

    /// Named streams: fixed by (seed, name), distinct across names.
    #[test]
    fn named_streams_depend_on_seed_and_name_only() {
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c); // the published FNV-1a test vector
        let draw = |seed, name| Rng::named(seed, Purpose::Test, name).next_u64();
        assert_eq!(draw(1, "products 1×1×1/x"), draw(1, "products 1×1×1/x"));
        assert_ne!(draw(1, "products 1×1×1/x"), draw(1, "products 1×1×1/w"));
        assert_ne!(draw(1, "products 1×1×1/x"), draw(2, "products 1×1×1/x"));
    }

    #[test]
    fn permutation_is_a_permutation() {
        let p = epoch_permutation(3, 5, 1000);
        let mut seen = vec![false; 1000];
        for &i in &p {
            assert!(!seen[i as usize]);
            seen[i as usize] = true;
        }
        assert_ne!(p, (0..1000).collect::<Vec<u32>>());
        assert_ne!(p, epoch_permutation(3, 6, 1000));
    }

    #[test]
    fn below_is_roughly_uniform() {
        let mut rng = Rng::new(1, Purpose::Test, 0);
        let mut counts = [0u32; 7];
        for _ in 0..70_000 {
            counts[rng.below(7) as usize] += 1;
        }
        for c in counts {
            assert!((9_400..10_600).contains(&c), "{counts:?}");
        }
        let u: f64 = (0..10_000).map(|_| rng.uniform() as f64).sum::<f64>() / 1e4;
        assert!((u - 0.5).abs() < 0.02);
    }
}
