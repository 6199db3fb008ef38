//! Deterministic test data for codec tests: a small seeded RNG and f32 blocks covering the
//! cases codecs get wrong — zeros, constants, huge and tiny magnitudes, subnormals, one-signed
//! blocks, lone outliers, exact rounding ties — plus a separate set with NaN and infinities.
#![allow(dead_code)] // each test module uses a different part of the harness

/// SplitMix64: tiny, seeded, good enough for test data.
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f32 {
        let u1 = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let u2 = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        ((-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }

    /// A uniform index below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// `n_blocks` blocks of `block_size` finite values from a mix of distributions: normal weights at
/// several scales, uniform, heavy tails, one-signed blocks and blocks with one outlier.
pub fn random_blocks(seed: u64, block_size: usize, n_blocks: usize) -> Vec<f32> {
    let mut r = Rng::new(seed);
    let mut v = Vec::with_capacity(block_size * n_blocks);
    for b in 0..n_blocks {
        let scale = [1.0f32, 0.02, 1e-3, 30.0, 1e-6, 5e3][b % 6];
        let kind = r.below(7);
        let start = v.len();
        for _ in 0..block_size {
            let x = match kind {
                0 | 1 => r.normal() * scale,
                2 => r.uniform(-1.0, 1.0) * scale,
                3 => r.normal().abs() * scale,   // positive only
                4 => -r.normal().abs() * scale,  // negative only
                5 => r.normal().powi(3) * scale, // heavy tails
                _ => (r.normal() * 8.0).round() / 8.0 * scale, // many exact ties
            };
            v.push(x);
        }
        if r.below(4) == 0 {
            let i = start + r.below(block_size);
            v[i] *= 50.0; // a lone outlier
        }
    }
    v
}

/// Finite edge-case blocks (each exactly `block_size` values), in this order:
/// zeros, negative zeros, a constant, a negative constant, one nonzero value, one negative
/// value, ±max finite f32 mix, huge (1e30), values near f16 max (65504), values beyond f16 max,
/// tiny (1e-30), f32 subnormals, f16 subnormal-range values (1e-6), a ramp, exact halves
/// (rounding ties), alternating ±1, max and -max of equal magnitude, and a single huge outlier.
pub fn edge_blocks(block_size: usize) -> Vec<f32> {
    let n = block_size;
    let mut blocks: Vec<Vec<f32>> = vec![
        vec![0.0; n],
        vec![-0.0; n],
        vec![0.75; n],
        vec![-3.5; n],
        (0..n).map(|i| if i == n / 3 { 2.5 } else { 0.0 }).collect(),
        (0..n)
            .map(|i| if i == n - 1 { -1e-3 } else { 0.0 })
            .collect(),
        (0..n)
            .map(|i| {
                if i % 2 == 0 {
                    f32::MAX
                } else {
                    -f32::MAX / 3.0
                }
            })
            .collect(),
        (0..n)
            .map(|i| 1e30 * ((i as f32) - n as f32 / 2.0))
            .collect(),
        (0..n).map(|i| 65504.0 - i as f32 * 3.0).collect(),
        (0..n).map(|i| 7.0e4 + i as f32 * 1000.0).collect(),
        (0..n).map(|i| 1e-30 * (i as f32 + 1.0)).collect(),
        (0..n)
            .map(|i| f32::from_bits(1 + i as u32 * 977) * if i % 3 == 0 { -1.0 } else { 1.0 })
            .collect(),
        (0..n).map(|i| 1e-6 * (i as f32 - 7.0)).collect(),
        (0..n).map(|i| i as f32 / n as f32 * 2.0 - 1.0).collect(),
        (0..n).map(|i| (i as f32 - n as f32 / 2.0) * 0.5).collect(),
        (0..n)
            .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect(),
        (0..n)
            .map(|i| {
                if i == 0 {
                    4.0
                } else if i == n - 1 {
                    -4.0
                } else {
                    1.0
                }
            })
            .collect(),
        (0..n)
            .map(|i| if i == 5 % n { 1e6 } else { (i as f32).sin() })
            .collect(),
    ];
    blocks.iter_mut().flat_map(std::mem::take).collect()
}

/// Blocks holding NaN and ±infinity (each exactly `block_size` values): one NaN among normal
/// values, all NaN, +inf, -inf, both infinities, NaN with infinity, and a negative-payload NaN.
pub fn nonfinite_blocks(block_size: usize) -> Vec<f32> {
    let n = block_size;
    let base = |i: usize| ((i * 37 % 11) as f32 - 5.0) / 4.0;
    let blocks: Vec<Vec<f32>> = vec![
        (0..n)
            .map(|i| if i == 3 % n { f32::NAN } else { base(i) })
            .collect(),
        vec![f32::NAN; n],
        (0..n)
            .map(|i| if i == 1 % n { f32::INFINITY } else { base(i) })
            .collect(),
        (0..n)
            .map(|i| {
                if i == n - 1 {
                    f32::NEG_INFINITY
                } else {
                    base(i)
                }
            })
            .collect(),
        (0..n)
            .map(|i| {
                if i == 0 {
                    f32::INFINITY
                } else if i == n - 1 {
                    f32::NEG_INFINITY
                } else {
                    base(i)
                }
            })
            .collect(),
        (0..n)
            .map(|i| {
                if i == 0 {
                    f32::NAN
                } else if i == 1 % n {
                    f32::INFINITY
                } else {
                    base(i)
                }
            })
            .collect(),
        (0..n)
            .map(|i| {
                if i == n / 2 {
                    f32::from_bits(0xFFC0_1234)
                } else {
                    base(i)
                }
            })
            .collect(),
    ];
    blocks.into_iter().flatten().collect()
}
