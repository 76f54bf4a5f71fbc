//! The gated MLP's activations on the CPU: `gate = act(gate) · up`, element by element.
//!
//! The exponential is our own branch-free polynomial (relative error below 2e-7), written
//! so that the compiler vectorizes the loops; libm's scalar `tanhf`/`expf` took a fifth of
//! Gemma-3's prefill. Prefill and decode both call these functions, so a position's
//! activations are the same bits whichever path computed them.
//!
//! The loops run inside the kernels' entry point for the CPU's level
//! (`kernels::isa::current`), so they vectorize to its widest registers and its fused
//! multiply-adds whatever the build's `target-cpu` (without FMA, `mul_add` is a libm call).

use crate::kernels::isa::{self, Isa};
use crate::kernels::level::{self, Level};

/// `gate = silu(gate) · up` (llama, qwen2, qwen3).
pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
    silu_mul_on(isa::current(), gate, up)
}

/// [`silu_mul`] at level `isa`.
fn silu_mul_on(isa: Isa, gate: &mut [f32], up: &[f32]) {
    struct Job<'a>(&'a mut [f32], &'a [f32]);
    impl level::Job for Job<'_> {
        type Out = ();
        #[inline(always)]
        unsafe fn run<L: Level>(self) {
            for (g, &u) in self.0.iter_mut().zip(self.1) {
                let v = *g;
                *g = v / (1.0 + exp(-v)) * u;
            }
        }
    }
    level::run(isa, Job(gate, up))
}

/// `gate = gelu(gate) · up` with the tanh approximation (gemma3).
pub fn gelu_tanh_mul(gate: &mut [f32], up: &[f32]) {
    gelu_tanh_mul_on(isa::current(), gate, up)
}

/// [`gelu_tanh_mul`] at level `isa`.
fn gelu_tanh_mul_on(isa: Isa, gate: &mut [f32], up: &[f32]) {
    /// √(2/π) as candle rounds it.
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    struct Job<'a>(&'a mut [f32], &'a [f32]);
    impl level::Job for Job<'_> {
        type Out = ();
        #[inline(always)]
        unsafe fn run<L: Level>(self) {
            for (g, &u) in self.0.iter_mut().zip(self.1) {
                let v = *g;
                *g = 0.5 * v * (1.0 + tanh(SQRT_2_OVER_PI * v * (1.0 + 0.044_715 * v * v))) * u;
            }
        }
    }
    level::run(isa, Job(gate, up))
}

/// `tanh(y) = 1 - 2 / (e^{2y} + 1)`: exactly ±1 beyond |y| ≈ 9, never NaN for finite `y`.
#[inline(always)]
fn tanh(y: f32) -> f32 {
    1.0 - 2.0 / (exp(2.0 * y) + 1.0)
}

/// `e^x` for finite `x` (clamped to the range where the result is finite and normal), NaN
/// for NaN: `x = n·ln2 + r` with `|r| <= ln2/2`, a degree-6 polynomial for `e^r`, and `2^n`
/// built from its exponent bits.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E).round_ties_even();
    let r = n.mul_add(-LN2_LO, n.mul_add(-LN2_HI, x));
    // Taylor coefficients 1/k! for k = 6 down to 0, by Horner's rule.
    let mut p: f32 = 1.0 / 720.0;
    for c in [1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        p = p.mul_add(r, c);
    }
    // n is in -126..=127 after the clamp, so the biased exponent stays in 1..=254.
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    p * scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_and_tanh_are_accurate_over_the_range_models_use() {
        let mut worst_exp = 0f64;
        let mut worst_tanh = 0f64;
        for i in -20_000..=20_000 {
            let x = i as f32 * 0.004_3;
            let want = (x as f64).exp();
            worst_exp = worst_exp.max(((exp(x) as f64 - want) / want).abs());
            worst_tanh = worst_tanh.max((tanh(x) as f64 - (x as f64).tanh()).abs());
        }
        assert!(worst_exp < 3e-7, "exp relative error {worst_exp}");
        assert!(worst_tanh < 3e-7, "tanh absolute error {worst_tanh}");
        assert_eq!(exp(-1e30), exp(-87.0));
        assert!(exp(1e30).is_finite() && tanh(1e30) == 1.0 && tanh(-1e30) == -1.0);
        assert!(exp(f32::NAN).is_nan());
    }

    #[test]
    fn activations_match_their_definitions_at_every_level() {
        let xs: Vec<f32> = (-400..400).map(|i| i as f32 * 0.05).collect();
        let up: Vec<f32> = xs.iter().map(|x| 1.0 + x.sin()).collect();
        for level in isa::ALL.into_iter().filter(|&l| isa::supports(l)) {
            check_activations(level, &xs, &up);
        }
    }

    fn check_activations(level: Isa, xs: &[f32], up: &[f32]) {
        let (mut s, mut g) = (xs.to_vec(), xs.to_vec());
        silu_mul_on(level, &mut s, up);
        gelu_tanh_mul_on(level, &mut g, up);
        // Every level computes each element with the same operations (fused multiply-adds
        // are exact): the same bits as the scalar function.
        for (i, &x) in xs.iter().enumerate() {
            let want = 0.5 * x * (1.0 + tanh(0.797_884_6 * x * (1.0 + 0.044_715 * x * x))) * up[i];
            assert_eq!(g[i].to_bits(), want.to_bits(), "{} gelu({x})", level.name());
            let want = x / (1.0 + exp(-x)) * up[i];
            assert_eq!(s[i].to_bits(), want.to_bits(), "{} silu({x})", level.name());
        }
        for (i, &x) in xs.iter().enumerate() {
            let x64 = x as f64;
            let silu = x64 / (1.0 + (-x64).exp()) * up[i] as f64;
            let inner = 0.797_884_560_8 * x64 * (1.0 + 0.044_715 * x64 * x64);
            let gelu = 0.5 * x64 * (1.0 + inner.tanh()) * up[i] as f64;
            assert!((s[i] as f64 - silu).abs() < 1e-5 * silu.abs().max(1.0), "silu({x})");
            assert!((g[i] as f64 - gelu).abs() < 1e-5 * gelu.abs().max(1.0), "gelu({x})");
        }
    }
}
