//! Turning logits into the next token: temperature, top-k, top-p, min-p, repeat penalty
//! and a seed. Temperature 0 is greedy and deterministic.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Sampling settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SamplingParams {
    /// Softmax temperature; `<= 0` means greedy.
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens (0 = off).
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability mass reaches `top_p` (1 = off).
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` times the most likely one (0 = off).
    pub min_p: f32,
    /// Divide positive logits (multiply negative ones) of recent tokens by this (1 = off).
    pub repeat_penalty: f32,
    /// How many recent tokens the repeat penalty looks at.
    pub repeat_last_n: usize,
    /// Random seed.
    pub seed: u64,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 0.7,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.1,
            repeat_last_n: 64,
            seed: 42,
        }
    }
}

impl SamplingParams {
    /// Greedy decoding (deterministic).
    pub fn greedy() -> Self {
        SamplingParams { temperature: 0.0, repeat_penalty: 1.0, ..Self::default() }
    }
}

/// A sampler with its random state.
pub struct Sampler {
    params: SamplingParams,
    rng: StdRng,
    candidates: Vec<(u32, f32)>,
}

impl Sampler {
    /// A sampler seeded from `params.seed`.
    pub fn new(params: SamplingParams) -> Sampler {
        let rng = StdRng::seed_from_u64(params.seed);
        Sampler { params, rng, candidates: Vec::new() }
    }

    /// The settings.
    pub fn params(&self) -> &SamplingParams {
        &self.params
    }

    /// Picks the next token from `logits`, penalising tokens in `recent`.
    pub fn sample(&mut self, logits: &mut [f32], recent: &[u32]) -> u32 {
        self.penalise(logits, recent);
        self.pick(logits)
    }

    /// Applies the repeat penalty for the tokens in `recent` to `logits`.
    pub fn penalise(&self, logits: &mut [f32], recent: &[u32]) {
        let p = &self.params;
        if p.repeat_penalty != 1.0 && p.repeat_penalty > 0.0 {
            let from = recent.len().saturating_sub(p.repeat_last_n);
            let mut seen = std::collections::HashSet::new();
            for &t in &recent[from..] {
                if let Some(l) = logits.get_mut(t as usize) {
                    if seen.insert(t) {
                        *l = if *l > 0.0 { *l / p.repeat_penalty } else { *l * p.repeat_penalty };
                    }
                }
            }
        }
    }

    /// Picks a token from already penalised `logits` (a token set to `-inf` is never
    /// picked unless all are).
    pub fn pick(&mut self, logits: &[f32]) -> u32 {
        let p = &self.params;
        if p.temperature <= 0.0 {
            return argmax(logits);
        }
        let c = &mut self.candidates;
        c.clear();
        c.extend(
            logits.iter().enumerate().filter(|(_, l)| l.is_finite()).map(|(i, &l)| (i as u32, l)),
        );
        if c.is_empty() {
            return argmax(logits);
        }
        if p.top_k > 0 && p.top_k < c.len() {
            c.select_nth_unstable_by(p.top_k - 1, |a, b| b.1.total_cmp(&a.1));
            c.truncate(p.top_k);
        }
        c.sort_unstable_by(|a, b| b.1.total_cmp(&a.1));
        let max = c[0].1;
        let mut sum = 0.0f32;
        for (_, l) in c.iter_mut() {
            *l = ((*l - max) / p.temperature).exp();
            sum += *l;
        }
        for (_, l) in c.iter_mut() {
            *l /= sum;
        }
        if p.min_p > 0.0 {
            let floor = c[0].1 * p.min_p;
            let keep = c.iter().take_while(|(_, q)| *q >= floor).count().max(1);
            c.truncate(keep);
        }
        if p.top_p < 1.0 {
            let mut acc = 0.0;
            let mut keep = c.len();
            for (i, (_, q)) in c.iter().enumerate() {
                acc += q;
                if acc >= p.top_p {
                    keep = i + 1;
                    break;
                }
            }
            c.truncate(keep);
        }
        let total: f32 = c.iter().map(|(_, q)| q).sum();
        let mut r = self.rng.random::<f32>() * total;
        for &(t, q) in c.iter() {
            if r < q {
                return t;
            }
            r -= q;
        }
        c[c.len() - 1].0
    }
}

/// Index of the largest logit (the first one on ties).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_is_argmax_and_deterministic() {
        let mut s = Sampler::new(SamplingParams::greedy());
        let mut l = vec![0.1, 3.0, 2.0, -1.0];
        assert_eq!(s.sample(&mut l.clone(), &[]), 1);
        assert_eq!(s.sample(&mut l, &[]), 1);
    }

    #[test]
    fn repeat_penalty_moves_choice() {
        let p = SamplingParams { repeat_penalty: 2.0, ..SamplingParams::greedy() };
        let mut s = Sampler::new(p);
        assert_eq!(s.sample(&mut [0.0, 3.0, 2.0], &[1]), 2);
    }

    #[test]
    fn seeded_sampling_repeats_and_respects_top_k() {
        let p = SamplingParams {
            temperature: 1.0,
            top_k: 2,
            min_p: 0.0,
            top_p: 1.0,
            ..Default::default()
        };
        let logits = vec![1.0, 1.1, 0.9, 5.0, 4.9];
        let run = || {
            let mut s = Sampler::new(p.clone());
            (0..50).map(|_| s.sample(&mut logits.clone(), &[])).collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        assert!(a.iter().all(|&t| t == 3 || t == 4));
        assert!(a.contains(&3) && a.contains(&4));
    }

    #[test]
    fn min_p_cuts_the_tail() {
        let p = SamplingParams {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.5,
            ..Default::default()
        };
        let mut s = Sampler::new(p);
        for _ in 0..100 {
            assert_eq!(s.sample(&mut [0.0, 10.0, 0.0], &[]), 1);
        }
    }
}
