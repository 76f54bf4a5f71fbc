//! The repetition guard of every generation: a penalty on tokens that would extend a
//! sequence the reply has already written (the "DRY" idea: the longer the repeat, the
//! steeper the penalty), and a stop when the reply's tail is a loop all the same.
//!
//! Only the reply's own tokens count: quoting the user or the prompt is not a loop.

/// Repeats of up to this many tokens go unpenalised ("the customer" twice is fine).
const ALLOWED: usize = 2;
/// Penalty (in logits) for a repeat one token longer than [`ALLOWED`].
const MULTIPLIER: f32 = 0.8;
/// Growth of the penalty per further repeated token.
const BASE: f32 = 1.75;
/// Longest repeat considered when sizing the penalty (keeps it finite).
const MAX_MATCH: usize = 24;

/// Lowers the logit of every token that would continue a sequence already present in
/// `reply` (the tokens generated so far): by `0.8 × 1.75^(n-2)` where `n` is the length
/// of the repeated sequence it would extend, for `n >= 2`.
pub fn penalise_repeats(logits: &mut [f32], reply: &[u32]) {
    let n = reply.len();
    if n < ALLOWED {
        return;
    }
    let last = reply[n - 1];
    let mut worst: Vec<(u32, usize)> = Vec::new();
    for i in 0..n - 1 {
        if reply[i] != last {
            continue;
        }
        // How far the sequence ending at i matches the one ending at the reply's end.
        let mut len = 1;
        while len < MAX_MATCH && len <= i && reply[i - len] == reply[n - 1 - len] {
            len += 1;
        }
        if len < ALLOWED {
            continue;
        }
        let next = reply[i + 1];
        match worst.iter_mut().find(|(t, _)| *t == next) {
            Some(w) => w.1 = w.1.max(len),
            None => worst.push((next, len)),
        }
    }
    for (t, len) in worst {
        if let Some(l) = logits.get_mut(t as usize) {
            *l -= MULTIPLIER * BASE.powi((len - ALLOWED) as i32);
        }
    }
}

/// Where a loop begins, if the end of `reply` repeats itself: a block of `p` tokens
/// written three times in a row (at least 12 tokens in all), or a block of 16 or more
/// written twice. Returns the index of the first token after the block's first
/// occurrence, so that `reply[..index]` keeps one copy.
pub fn loop_start(reply: &[u32]) -> Option<usize> {
    let n = reply.len();
    for p in 1..=64.min(n / 2) {
        let reps = if p >= 16 { 2 } else { 3.max(12usize.div_ceil(p)) };
        if p * reps > n {
            continue;
        }
        let tail = &reply[n - p * reps..];
        if (p..tail.len()).all(|i| tail[i] == tail[i - p]) {
            return Some(n - p * (reps - 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longer_repeats_cost_more() {
        // "a b c d a b c" → continuing with "d" repeats three tokens: penalised more than
        // a continuation that repeats only two.
        let mut l = vec![0.0f32; 8];
        penalise_repeats(&mut l, &[1, 2, 3, 4, 1, 2, 3]);
        assert!(l[4] < -1.0, "{l:?}");
        assert_eq!(l[5], 0.0);
        // A single repeated token is allowed.
        let mut l = vec![0.0f32; 8];
        penalise_repeats(&mut l, &[1, 2, 5, 1]);
        assert_eq!(l, vec![0.0; 8]);
        // Long loops are pushed out of reach.
        let lp: Vec<u32> = [1, 2, 3, 4, 5, 6].iter().cycle().take(20).copied().collect();
        let mut l = vec![0.0f32; 8];
        penalise_repeats(&mut l, &lp);
        assert!(l[lp[lp.len() - 6] as usize] < -20.0, "{l:?}");
    }

    #[test]
    fn loops_are_found_and_prose_is_not() {
        let prose = [5, 6, 7, 8, 9, 10, 11, 12, 13, 5, 6, 14];
        assert_eq!(loop_start(&prose), None);
        let mut l = vec![1, 2];
        l.extend([3, 4, 5, 6].iter().cycle().take(12));
        assert_eq!(loop_start(&l), Some(6));
        assert_eq!(loop_start(&[7; 12]), Some(1));
        assert_eq!(loop_start(&[7; 11]), None);
        let long: Vec<u32> = (0..20).chain(0..20).collect();
        assert_eq!(loop_start(&long), Some(20));
    }
}
