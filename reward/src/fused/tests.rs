//! Each fused kernel against candle's unfused operations: values and gradients to 1e-5.

use candle_core::{Device, Result, Tensor, Var};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

/// Seeded values in about [-3, 3], so GELU sees both tails and layer norm uneven rows.
fn seeded(shape: &[usize], seed: u64) -> Result<Tensor> {
    let mut rng = StdRng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|_| rng.random_range(-3.0..3.0)).collect();
    Tensor::from_vec(values, shape, &Device::Cpu)
}

fn assert_close(what: &str, fused: &Tensor, reference: &Tensor) -> Result<()> {
    assert_eq!(fused.dims(), reference.dims(), "{what}: shapes differ");
    let a: Vec<f32> = fused.flatten_all()?.to_vec1()?;
    let b: Vec<f32> = reference.flatten_all()?.to_vec1()?;
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        let tol = 1e-5 * y.abs().max(1.0);
        assert!(
            (x - y).abs() <= tol,
            "{what}[{i}]: fused {x} vs unfused {y}"
        );
    }
    Ok(())
}

/// Runs `fused` and `reference` on the same variables, then both backwards through a seeded
/// weighting of the output, and compares the outputs and every variable's gradient.
fn check(
    inputs: &[Tensor],
    fused: impl Fn(&[Tensor]) -> Result<Tensor>,
    reference: impl Fn(&[Tensor]) -> Result<Tensor>,
) -> Result<()> {
    let vars: Vec<Var> = inputs.iter().map(Var::from_tensor).collect::<Result<_>>()?;
    let tensors: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let out = fused(&tensors)?;
    let expected = reference(&tensors)?;
    assert_close("output", &out, &expected)?;
    let weighting = seeded(out.dims(), 99)?;
    let grads = (&out * &weighting)?.sum_all()?.backward()?;
    let expected_grads = (&expected * &weighting)?.sum_all()?.backward()?;
    for (i, var) in tensors.iter().enumerate() {
        let g = grads.get(var).expect("a gradient from the fused kernel");
        let e = expected_grads.get(var).expect("a gradient from candle");
        assert_close(&format!("gradient of input {i}"), g, e)?;
    }
    Ok(())
}

#[test]
fn dense_matches_matmul_plus_bias() -> Result<()> {
    let inputs = [
        seeded(&[3, 7, 20], 1)?,
        seeded(&[12, 20], 2)?,
        seeded(&[12], 3)?,
    ];
    check(
        &inputs,
        |t| dense(&t[0], &t[1], &t[2]),
        |t| t[0].broadcast_matmul(&t[1].t()?)?.broadcast_add(&t[2]),
    )
}

#[test]
fn dense_skips_the_gradient_of_a_constant_input() -> Result<()> {
    let x = seeded(&[5, 8], 4)?;
    let weight = Var::from_tensor(&seeded(&[3, 8], 5)?)?;
    let bias = Var::from_tensor(&seeded(&[3], 6)?)?;
    let grads = dense(&x, &weight, &bias)?.sum_all()?.backward()?;
    assert!(grads.get(&x).is_none());
    assert!(grads.get(&weight).is_some() && grads.get(&bias).is_some());
    Ok(())
}

#[test]
fn gelu_matches_candles_erf_gelu() -> Result<()> {
    // Wider than one parallel task, so the chunking is exercised too.
    check(
        &[seeded(&[5, 9000], 7)?],
        |t| gelu(&t[0]),
        |t| t[0].gelu_erf(),
    )
}

#[test]
fn layer_norm_matches_the_differentiable_reference() -> Result<()> {
    // Rows off zero (means about 2), as the residual stream's are.
    let x = (seeded(&[4, 50, 64], 8)? + 2.0)?;
    let inputs = [x, seeded(&[64], 9)?, seeded(&[64], 10)?];
    check(
        &inputs,
        |t| layer_norm(&t[0], &t[1], &t[2], 1e-5),
        |t| candle_nn::ops::layer_norm_slow(&t[0], &t[1], &t[2], 1e-5),
    )
}

#[test]
fn kernels_refuse_shapes_that_do_not_fit() -> Result<()> {
    let x = seeded(&[4, 8], 11)?;
    let qkv = seeded(&[2, 4, 12], 12)?;
    assert!(
        attention(&qkv, &seeded(&[2, 4], 13)?, 3, 0.0).is_err(),
        "12 is not 3 x 3 heads x k"
    );
    assert!(attention(&qkv, &seeded(&[2, 5], 13)?, 2, 0.0).is_err());
    assert!(dense(&x, &seeded(&[3, 7], 12)?, &seeded(&[3], 13)?).is_err());
    assert!(dense(&x, &seeded(&[3, 8], 12)?, &seeded(&[4], 13)?).is_err());
    assert!(layer_norm(&x, &seeded(&[5], 14)?, &seeded(&[5], 15)?, 1e-5).is_err());
    Ok(())
}

/// Candle's attention on the packed projection, each weight times `factors` (batch, heads,
/// beats, beats) when given: the reference the fused kernel must match.
fn unfused_attention(
    qkv: &Tensor,
    bias: &Tensor,
    heads: usize,
    factors: Option<&Tensor>,
) -> Result<Tensor> {
    let (b, t, packed) = qkv.dims3()?;
    let (d, dh) = (packed / 3, packed / 3 / heads);
    let qkv = qkv
        .reshape((b, t, 3, heads, dh))?
        .permute((2, 0, 3, 1, 4))?;
    let q = qkv.get(0)?.contiguous()?;
    let k = qkv.get(1)?.contiguous()?;
    let v = qkv.get(2)?.contiguous()?;
    let scores =
        (q.matmul(&k.t()?)? / (dh as f64).sqrt())?.broadcast_add(&bias.reshape((b, 1, 1, t))?)?;
    let mut weights = candle_nn::ops::softmax(&scores, candle_core::D::Minus1)?;
    if let Some(factors) = factors {
        weights = (weights * factors)?;
    }
    weights.matmul(&v)?.transpose(1, 2)?.reshape((b, t, d))
}

fn padded_bias(batch: usize, beats: usize) -> Result<Tensor> {
    // The last item's last three beats are padding.
    let values = (0..batch * beats)
        .map(|i| if i >= batch * beats - 3 { -1e9f32 } else { 0.0 })
        .collect();
    Tensor::from_vec(values, (batch, beats), &Device::Cpu)
}

#[test]
fn attention_matches_candles_attention_over_heads() -> Result<()> {
    // Short windows loop; from 16 beats on, each head runs as matrix products.
    for (batch, beats, heads, seed) in [(3, 12, 4, 16), (3, 16, 4, 17), (2, 40, 2, 18)] {
        let bias = padded_bias(batch, beats)?;
        let op = attention::Attention { heads, mask: None };
        check(
            &[seeded(&[batch, beats, 3 * 16 * heads / 2], seed)?],
            |t| op.apply(&t[0], &bias),
            |t| unfused_attention(&t[0], &bias, heads, None),
        )?;
    }
    Ok(())
}

#[test]
fn attention_drops_weights_by_its_mask_both_ways() -> Result<()> {
    for (batch, beats, heads) in [(2, 5, 2), (2, 16, 2), (2, 33, 2)] {
        dropped_attention_matches(batch, beats, heads)?;
    }
    Ok(())
}

fn dropped_attention_matches(batch: usize, beats: usize, heads: usize) -> Result<()> {
    let bias = padded_bias(batch, beats)?;
    let op = attention::Attention {
        heads,
        mask: Some(dropout::Mask::new(0.3, 42)),
    };
    let factors: Vec<f32> = (0..batch)
        .flat_map(|item| (0..heads).map(move |head| (item, head)))
        .flat_map(|(item, head)| (0..beats * beats).map(move |ij| (item, head, ij)))
        .map(|(item, head, ij)| op.factor(beats, item, head, ij / beats, ij % beats))
        .collect();
    assert!(factors.contains(&0.0) && factors.iter().any(|&f| f > 1.0));
    let factors = Tensor::from_vec(factors, (batch, heads, beats, beats), &Device::Cpu)?;
    check(
        &[seeded(&[batch, beats, 3 * 8], 17)?],
        |t| op.apply(&t[0], &bias),
        |t| unfused_attention(&t[0], &bias, heads, Some(&factors)),
    )
}

#[test]
fn dropout_drops_its_share_and_passes_gradients_through_the_same_mask() -> Result<()> {
    let x = Var::from_tensor(&(seeded(&[200, 500], 17)?.abs()? + 0.5)?)?;
    let y = dropout(&x, 0.1)?;
    let out: Vec<f32> = y.flatten_all()?.to_vec1()?;
    let input: Vec<f32> = x.flatten_all()?.to_vec1()?;
    let dropped = out.iter().filter(|&&v| v == 0.0).count() as f64 / out.len() as f64;
    assert!((dropped - 0.1).abs() < 0.005, "dropped {dropped}");
    for (y, x) in out.iter().zip(&input) {
        assert!(*y == 0.0 || (y - x / 0.9).abs() < 1e-6, "{x} became {y}");
    }
    let grads = y.sum_all()?.backward()?;
    let grad: Vec<f32> = grads
        .get(&x)
        .expect("a gradient")
        .flatten_all()?
        .to_vec1()?;
    for (g, y) in grad.iter().zip(&out) {
        let expected = if *y == 0.0 { 0.0 } else { 1.0 / 0.9 };
        assert!(
            (g - expected).abs() < 1e-6,
            "gradient {g} where the output is {y}"
        );
    }
    // A fresh mask on every call; none at all with p = 0.
    let again: Vec<f32> = dropout(&x, 0.1)?.flatten_all()?.to_vec1()?;
    assert_ne!(again, out);
    let kept: Vec<f32> = dropout(&x, 0.0)?.flatten_all()?.to_vec1()?;
    assert_eq!(kept, input);
    Ok(())
}

/// The factors a seeded mask gives the values of a tensor of `shape`, as a tensor.
fn mask_factors(mask: &dropout::Mask, shape: &[usize]) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let factors: Vec<f32> = (0..n).map(|i| mask.factor(i)).collect();
    assert!(factors.contains(&0.0) && factors.iter().any(|&f| f > 1.0));
    Tensor::from_vec(factors, shape, &Device::Cpu)
}

#[test]
fn residual_dropout_matches_the_sum_with_the_masked_branch() -> Result<()> {
    let mask = dropout::Mask::new(0.3, 11);
    let factors = mask_factors(&mask, &[3, 70, 256])?;
    check(
        &[seeded(&[3, 70, 256], 20)?, seeded(&[3, 70, 256], 21)?],
        |t| dropout::Residual(mask).apply(&t[0], &t[1]),
        |t| &t[0] + (&t[1] * &factors)?,
    )?;
    // Without dropout it is the plain sum; shapes must agree.
    let (x, y) = (seeded(&[4, 8], 22)?, seeded(&[4, 8], 23)?);
    assert_close("sum", &residual_dropout(&x, &y, 0.0)?, &(&x + &y)?)?;
    assert!(
        dropout::Residual(mask)
            .apply(&x, &seeded(&[8, 4], 24)?)
            .is_err()
    );
    Ok(())
}

#[test]
fn dense_with_gelu_and_dropout_matches_the_three_ops() -> Result<()> {
    let mask = dropout::Mask::new(0.25, 5);
    // More values than one parallel task, so the chunks' offsets into the mask are exercised;
    // few rows and small weights, so the gradients' sums of many terms stay within 1e-5.
    let factors = mask_factors(&mask, &[2, 10, 1000])?;
    let inputs = [
        seeded(&[2, 10, 20], 25)?,
        (seeded(&[1000, 20], 26)? * 0.03)?,
        seeded(&[1000], 27)?,
    ];
    let unfused = |t: &[Tensor], factors: Option<&Tensor>| -> Result<Tensor> {
        let h = t[0].broadcast_matmul(&t[1].t()?)?.broadcast_add(&t[2])?;
        match factors {
            Some(f) => h.gelu_erf()? * f,
            None => h.gelu_erf(),
        }
    };
    check(
        &inputs,
        |t| dense::Dense::with_gelu(Some(mask)).apply(&t[0], &t[1], &t[2]),
        |t| unfused(t, Some(&factors)),
    )?;
    check(
        &inputs,
        |t| dense_gelu(&t[0], &t[1], &t[2], 0.0),
        |t| unfused(t, None),
    )
}

/// Whether each value of `dropped` is 0 or the same value of `kept` over `1 - p`, and the share
/// of zeros among the values `kept` does not hold as 0 (GELU's far negative tail) is about `p`.
fn assert_dropped(what: &str, dropped: &Tensor, kept: &Tensor, p: f32) -> Result<()> {
    let dropped: Vec<f32> = dropped.flatten_all()?.to_vec1()?;
    let kept: Vec<f32> = kept.flatten_all()?.to_vec1()?;
    let (mut zeros, mut nonzero) = (0, 0);
    for (d, k) in dropped.iter().zip(&kept) {
        nonzero += usize::from(*k != 0.0);
        if *d == 0.0 && *k != 0.0 {
            zeros += 1;
        } else {
            let expected = k / (1.0 - p);
            assert!(
                (d - expected).abs() <= 1e-5 * expected.abs().max(1.0),
                "{what}: {k} became {d}"
            );
        }
    }
    let share = zeros as f32 / nonzero as f32;
    assert!(
        (share - p).abs() < 0.01,
        "{what}: dropped {share}, expected {p}"
    );
    Ok(())
}

#[test]
fn the_public_ops_drop_with_a_fresh_mask_when_p_is_above_zero() -> Result<()> {
    let p = 0.2;
    let (x, y) = (seeded(&[40, 1000], 28)?, seeded(&[40, 1000], 29)?);
    let branch = (residual_dropout(&x, &y, p)? - &x)?;
    assert_dropped("residual branch", &branch, &y, p)?;
    let (w, b) = ((seeded(&[1000, 1000], 30)? * 0.03)?, seeded(&[1000], 31)?);
    let hidden = dense_gelu(&x, &w, &b, p)?;
    assert_dropped("dense + gelu", &hidden, &dense_gelu(&x, &w, &b, 0.0)?, p)?;
    assert_ne!(
        hidden.flatten_all()?.to_vec1::<f32>()?,
        dense_gelu(&x, &w, &b, p)?.flatten_all()?.to_vec1::<f32>()?,
        "a fresh mask on every call"
    );
    Ok(())
}
