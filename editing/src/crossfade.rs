//! The crossfade at a join, with its law chosen from the audio on the two sides.
//!
//! An equal-power fade (gains cos θ, sin θ) keeps the loudness of uncorrelated material but
//! raises correlated material (two bars of the same song, often nearly identical) by up to
//! 3 dB in the middle of the fade, which clips a mastered song. An equal-gain fade (gains summing
//! to 1) is seamless on correlated material but dips 3 dB on uncorrelated material. So the law
//! follows the measured correlation `r` of the two sides over the fade, after Bristow-Johnson's
//! constant-power crossfade for correlated signals: the fade-out and fade-in gains are `e - o`
//! and `e + o`, with an odd part `o(τ) = sin(πτ/2) / 2` over τ in -1..1 and an even part
//! `e = sqrt((1/2 - (1 - r) o²) / (1 + r))`, which keeps the expected power
//! `a² + b² + 2abr` at 1. `r = 0` is equal-power, `r = 1` equal-gain.
//!
//! Independently of the law, a join never exceeds `ceiling` (the caller passes the source's
//! own peak): if the mix would, the law is moved towards equal-gain until it does not, and an
//! equal-gain mix is a convex combination of the two sides, so it cannot.

/// Correlations below this are treated as uncorrelated: an anti-correlated pair would need
/// gains above 1 to keep its power, which only adds risk of clipping.
const MIN_CORRELATION: f64 = 0.0;
/// Times the law is moved halfway to equal-gain before equal-gain itself is used.
const BLEND_STEPS: usize = 4;

/// How one join was mixed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JoinMix {
    /// Correlation of the two sides over the fade, -1 to 1 (0 for silence).
    pub correlation: f32,
    /// The correlation the law was built for: the measured one, or higher where the mix
    /// would have exceeded the ceiling (1 is equal-gain).
    pub law: f32,
}

/// Normalised correlation of two interleaved excerpts of equal length, all channels pooled.
pub fn correlation(outgoing: &[f32], incoming: &[f32]) -> f32 {
    let (mut xy, mut xx, mut yy) = (0f64, 0f64, 0f64);
    for (&x, &y) in outgoing.iter().zip(incoming) {
        let (x, y) = (f64::from(x), f64::from(y));
        xy += x * y;
        xx += x * x;
        yy += y * y;
    }
    let norm = (xx * yy).sqrt();
    if norm > 0.0 {
        (xy / norm).clamp(-1.0, 1.0) as f32
    } else {
        0.0
    }
}

/// Fade-out and fade-in gains at frame `t` of a fade of `frames` frames, for a law built for
/// correlation `r` (clamped to 0..1).
pub fn gains(t: usize, frames: usize, r: f64) -> (f32, f32) {
    let r = r.clamp(MIN_CORRELATION, 1.0);
    let tau = 2.0 * (t as f64 + 0.5) / frames.max(1) as f64 - 1.0;
    let odd = 0.5 * (std::f64::consts::FRAC_PI_2 * tau).sin();
    let even = ((0.5 - (1.0 - r) * odd * odd) / (1.0 + r)).max(0.0).sqrt();
    ((even - odd) as f32, (even + odd) as f32)
}

/// Mixes `outgoing` into `incoming` (interleaved, `channels` channels, equal lengths) and
/// appends the result to `out`, never exceeding `ceiling` in magnitude where neither side does.
pub fn mix_join(
    outgoing: &[f32],
    incoming: &[f32],
    channels: usize,
    ceiling: f32,
    out: &mut Vec<f32>,
) -> JoinMix {
    debug_assert_eq!(outgoing.len(), incoming.len());
    let channels = channels.max(1);
    let frames = outgoing.len().min(incoming.len()) / channels;
    let measured = correlation(outgoing, incoming);
    let peak_with = |r: f64| {
        let mut peak = 0f32;
        for t in 0..frames {
            let (a, b) = gains(t, frames, r);
            for c in t * channels..(t + 1) * channels {
                peak = peak.max((outgoing[c] * a + incoming[c] * b).abs());
            }
        }
        peak
    };
    let mut law = f64::from(measured).clamp(MIN_CORRELATION, 1.0);
    let mut steps = 0;
    while law < 1.0 && peak_with(law) > ceiling {
        steps += 1;
        law = if steps > BLEND_STEPS {
            1.0
        } else {
            1.0 - (1.0 - law) / 2.0
        };
    }
    let equal_gain = law >= 1.0;
    for t in 0..frames {
        let (a, b) = gains(t, frames, law);
        for c in t * channels..(t + 1) * channels {
            let mixed = outgoing[c] * a + incoming[c] * b;
            // Equal-gain cannot exceed the louder side but for rounding.
            out.push(if equal_gain {
                mixed.clamp(-ceiling, ceiling)
            } else {
                mixed
            });
        }
    }
    JoinMix {
        correlation: measured,
        law: law as f32,
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    fn noise(seed: u64, n: usize, amplitude: f32) -> Vec<f32> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n)
            .map(|_| rng.random_range(-amplitude..amplitude))
            .collect()
    }

    fn power(s: &[f32]) -> f64 {
        s.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / s.len() as f64
    }

    #[test]
    fn gains_start_on_the_outgoing_side_and_end_on_the_incoming_one() {
        for r in [0.0, 0.5, 1.0] {
            let (a, b) = gains(0, 1000, r);
            assert!((a - 1.0).abs() < 1e-3 && b.abs() < 1e-3, "r {r}: {a} {b}");
            let (a, b) = gains(999, 1000, r);
            assert!(a.abs() < 1e-3 && (b - 1.0).abs() < 1e-3, "r {r}: {a} {b}");
        }
        let (a, b) = gains(500, 1001, 1.0);
        assert!(
            (a + b - 1.0).abs() < 1e-6,
            "equal-gain in the middle: {a} + {b}"
        );
        let (a, b) = gains(500, 1001, 0.0);
        assert!(
            (a * a + b * b - 1.0).abs() < 1e-6,
            "equal-power: {a}² + {b}²"
        );
    }

    #[test]
    fn the_expected_power_is_kept_at_every_correlation() {
        for r in [0.0, 0.3, 0.7, 1.0] {
            for t in 0..100 {
                let (a, b) = gains(t, 100, r);
                let (a, b) = (f64::from(a), f64::from(b));
                let p = a * a + b * b + 2.0 * a * b * r;
                assert!((p - 1.0).abs() < 1e-5, "r {r} t {t}: power {p}");
                assert!(a >= 0.0 && b >= 0.0);
            }
        }
    }

    #[test]
    fn identical_sides_join_seamlessly_and_uncorrelated_ones_keep_their_power() {
        let side = noise(1, 4000, 0.9);
        let mut out = Vec::new();
        let mix = mix_join(&side, &side, 2, 0.9, &mut out);
        assert!((mix.correlation - 1.0).abs() < 1e-6 && mix.law == 1.0);
        let worst = out
            .iter()
            .zip(&side)
            .map(|(o, s)| (o - s).abs())
            .fold(0.0, f32::max);
        assert!(
            worst < 1e-5,
            "equal-gain of identical sides is that side: {worst}"
        );

        let (a, b) = (noise(2, 40_000, 0.5), noise(3, 40_000, 0.5));
        let mut out = Vec::new();
        let mix = mix_join(&a, &b, 2, 1.0, &mut out);
        assert!(mix.correlation.abs() < 0.03, "{mix:?}");
        let db = 10.0 * (power(&out) / power(&a)).log10();
        assert!(db.abs() < 0.3, "uncorrelated power changed by {db} dB");
    }

    #[test]
    fn coinciding_peaks_of_uncorrelated_sides_do_not_exceed_the_ceiling() {
        let frames = 2646;
        let mut a = noise(4, frames, 0.4);
        let mut b = noise(5, frames, 0.4);
        a[frames / 2] = 1.0;
        b[frames / 2] = 1.0;
        let equal_power: f32 = (0..frames)
            .map(|t| {
                let (ga, gb) = gains(t, frames, 0.0);
                (a[t] * ga + b[t] * gb).abs()
            })
            .fold(0.0, f32::max);
        assert!(
            equal_power > 1.3,
            "the test needs a peak that equal-power clips: {equal_power}"
        );
        let mut out = Vec::new();
        let mix = mix_join(&a, &b, 1, 1.0, &mut out);
        let peak = out.iter().fold(0f32, |m, x| m.max(x.abs()));
        assert!(peak <= 1.0, "peak {peak}, {mix:?}");
        assert!(
            mix.law > mix.correlation,
            "the law moved towards equal-gain: {mix:?}"
        );
    }
}
