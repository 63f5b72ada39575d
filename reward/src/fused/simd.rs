//! Scalar building blocks written so the compiler vectorises them inside the kernels'
//! multiversioned loops (`multiversion` compiles those for AVX2 and AVX-512 and picks one at
//! run time; a portable build would otherwise get SSE2 only).
//!
//! A float sum in one accumulator is a dependency chain the compiler may not reorder, so sums
//! run over [`LANES`] accumulators; `f32::exp` is a library call, so [`exp`] is a polynomial.

/// Accumulators per sum: one AVX-512 register of f32.
const LANES: usize = 16;

/// `Σ a_i b_i`.
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for k in 0..LANES {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `Σ term(a_i)`.
#[inline(always)]
fn sum_of(a: &[f32], term: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = a.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().map(|&v| term(v)).sum();
    for x in chunks {
        for k in 0..LANES {
            acc[k] += term(x[k]);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `Σ a_i`.
#[inline(always)]
pub fn sum(a: &[f32]) -> f32 {
    sum_of(a, |v| v)
}

/// `Σ (a_i - mean)²`.
#[inline(always)]
pub fn squared_deviation(a: &[f32], mean: f32) -> f32 {
    sum_of(a, |v| (v - mean) * (v - mean))
}

/// `e^x` to about 2 ulp for `x` in [-87, 88] (clamped outside): `2^n e^r` with `n` the nearest
/// integer to `x / ln 2`, `r = x - n ln 2` in two parts, and `e^r` by its Taylor series to
/// `r^6` (remainder under 2e-7 of the result for |r| ≤ ln 2 / 2).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    // ln 2 split so that `n * LN2_HI` is exact for every `n` in range (Cephes' constants).
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Bit operations build 2^n below: an `as i32` cast would compile to a scalar conversion
    // and saturation compares, one lane at a time.
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E + 0.5).floor();
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // 2^n: the biased exponent n + 127 (in 1..=254) lands in the low mantissa bits of
    // `n + 127 + 2^23` exactly; shifted up, it is the exponent field of 2^n.
    let biased = (n + 127.0 + 8_388_608.0).to_bits() - 0x4B00_0000;
    p * f32::from_bits(biased << 23)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_a_few_ulp_of_the_library() {
        let mut worst = 0f32;
        for i in -86_900..88_000 {
            let x = i as f32 * 1e-3;
            let (fast, exact) = (exp(x), x.exp());
            worst = worst.max(((fast - exact) / exact).abs());
        }
        assert!(worst < 5e-7, "relative error {worst}");
        assert!(exp(-1e9) < 1e-37 && exp(-1e9) >= 0.0);
    }

    #[test]
    fn sums_match_a_plain_loop() {
        let a: Vec<f32> = (0..37).map(|i| i as f32 * 0.25 - 3.0).collect();
        let b: Vec<f32> = (0..37).map(|i| 1.0 - i as f32 * 0.125).collect();
        let plain_dot: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain_dot).abs() < 1e-4);
        assert!((sum(&a) - a.iter().sum::<f32>()).abs() < 1e-4);
    }
}
