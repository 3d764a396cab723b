//! The simulator's pseudo-random generator: xoshiro256** (Blackman and Vigna), seeded through
//! SplitMix64.
//!
//! It is written out here rather than taken from `rand` so that the stream produced for a seed
//! can never change under a dependency upgrade (`rand::rngs::SmallRng` documents that its
//! algorithm may change between releases): a seed that once exposed a bug keeps exposing it for
//! as long as this file is unchanged. The known-answer tests below pin the stream.

/// One step of SplitMix64: advances `state` and returns the next output.
pub(crate) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The seed of the link from host `from` to host `to` in a simulation seeded with `master`.
///
/// Distinct directions get unrelated streams, and the mapping is fixed, so a link's behaviour
/// depends only on the master seed and its endpoints (not on how many hosts were added after).
pub(crate) fn link_seed(master: u64, from: usize, to: usize) -> u64 {
    let mut state = master;
    let a = splitmix64(&mut state);
    let mut state = a ^ ((from as u64) << 32 | (to as u64 & 0xffff_ffff));
    splitmix64(&mut state)
}

/// xoshiro256**: 256 bits of state, period 2^256 − 1, a few nanoseconds per draw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator whose state is four SplitMix64 outputs from `seed`. SplitMix64's output
    /// function is a bijection, so the four words are distinct and the state is never all zero.
    pub(crate) fn new(seed: u64) -> Rng {
        let mut state = seed;
        Rng {
            s: [
                splitmix64(&mut state),
                splitmix64(&mut state),
                splitmix64(&mut state),
                splitmix64(&mut state),
            ],
        }
    }

    #[cfg(test)]
    fn from_state(s: [u64; 4]) -> Rng {
        Rng { s }
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)`, from the top 53 bits (every value is an exact multiple of 2^-53).
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[0, n)` by Lemire's multiply-shift (bias below n / 2^64); 0 when `n` is 0.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_known_answers() {
        // Reference outputs of Vigna's splitmix64.c for seed 1234567.
        let mut state = 1_234_567;
        let got: Vec<u64> = (0..5).map(|_| splitmix64(&mut state)).collect();
        assert_eq!(
            got,
            [
                6_457_827_717_110_365_317,
                3_203_168_211_198_807_973,
                9_817_491_932_198_370_423,
                4_593_380_528_125_082_431,
                16_408_922_859_458_223_821,
            ]
        );
    }

    #[test]
    fn xoshiro256starstar_known_answers() {
        // Reference outputs of xoshiro256starstar.c from the state [1, 2, 3, 4].
        let mut rng = Rng::from_state([1, 2, 3, 4]);
        let got: Vec<u64> = (0..6).map(|_| rng.next_u64()).collect();
        assert_eq!(
            got,
            [
                11_520,
                0,
                1_509_978_240,
                1_215_971_899_390_074_240,
                1_216_172_134_540_287_360,
                607_988_272_756_665_600,
            ]
        );
    }

    #[test]
    fn ranges_hold() {
        let mut rng = Rng::new(7);
        let mut seen = [false; 5];
        for _ in 0..10_000 {
            let u = rng.unit();
            assert!((0.0..1.0).contains(&u));
            let b = rng.below(5);
            assert!(b < 5);
            seen[b as usize] = true;
        }
        assert_eq!(seen, [true; 5], "every value of below(5) occurs");
        assert_eq!(rng.below(0), 0);
    }

    #[test]
    fn link_seeds_differ_per_direction_and_master() {
        let a = link_seed(1, 0, 1);
        assert_ne!(a, link_seed(1, 1, 0));
        assert_ne!(a, link_seed(2, 0, 1));
        assert_eq!(a, link_seed(1, 0, 1));
        assert_ne!(
            Rng::new(a).next_u64(),
            Rng::new(link_seed(1, 1, 0)).next_u64()
        );
    }
}
