//! Fitting a long conversation into the context: the oldest messages (never the system
//! prompt, never the last message) are left out in large, stable steps, as llama.cpp's
//! context shift does, so that the prompt's cached prefix stays reusable for many turns
//! instead of changing (and being re-read) every turn.

/// Where the oldest messages may be cut: indices into the droppable messages (those after
/// the system prompt), each at a message that may start a conversation (`can_start`, not
/// an assistant turn) once at least `chunk` tokens (`sizes`) lie since the previous cut.
/// The points depend only on the messages before them, so they stay put as the
/// conversation grows: the same cut serves every turn until the conversation outgrows it.
pub fn cut_points(sizes: &[usize], can_start: &[bool], chunk: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut acc = 0;
    for (i, (&size, &ok)) in sizes.iter().zip(can_start).enumerate() {
        if acc >= chunk.max(1) && ok {
            out.push(i);
            acc = 0;
        }
        acc += size;
    }
    out
}

/// How many of `n` droppable messages to leave out: none if `attempt(0)` gives a
/// prompt, else the first of the stable `cuts` that does, else (a huge recent message)
/// one message at a time after the last cut, skipping cuts before an assistant turn. The
/// last message is always kept. `attempt(d)` renders the prompt without the first `d`
/// messages and returns it if it fits; the error carries the last prompt's size.
pub fn fit<T, E>(
    n: usize,
    cuts: &[usize],
    can_start: &[bool],
    mut attempt: impl FnMut(usize) -> Result<Option<T>, E>,
) -> Result<Option<(T, usize)>, E> {
    if let Some(t) = attempt(0)? {
        return Ok(Some((t, 0)));
    }
    let mut last = 0;
    for &d in cuts.iter().filter(|&&d| d < n) {
        if let Some(t) = attempt(d)? {
            return Ok(Some((t, d)));
        }
        last = d;
    }
    let mut d = last + 1;
    while d < n {
        if can_start.get(d).copied().unwrap_or(true) {
            if let Some(t) = attempt(d)? {
                return Ok(Some((t, d)));
            }
        }
        d += 1;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A conversation grows turn by turn (a user and an assistant message of 60 tokens
    /// each) past a 1,000-token budget: the cut moves only a few times, by about half
    /// the budget each time, and the kept prefix stays the same in between.
    #[test]
    fn trimming_drops_in_large_steps() {
        let budget = 1000;
        let system = 100;
        let mut sizes = Vec::new();
        let mut can_start = Vec::new();
        let mut cuts_seen = Vec::new();
        for _turn in 0..60 {
            // The new user message is last and always kept.
            sizes.push(60);
            can_start.push(true);
            let n = sizes.len() - 1;
            let cuts = cut_points(&sizes[..n], &can_start[..n], (budget - system) / 2);
            let fits = |d: usize| -> Result<Option<()>, ()> {
                Ok((system + sizes[d..].iter().sum::<usize>() <= budget).then_some(()))
            };
            let (_, d) = fit(sizes.len(), &cuts, &can_start, fits).unwrap().unwrap();
            assert!(system + sizes[d..].iter().sum::<usize>() <= budget);
            assert!(can_start[d], "the kept conversation starts with an assistant turn");
            if cuts_seen.last() != Some(&d) {
                cuts_seen.push(d);
            }
            sizes.push(60); // the reply
            can_start.push(false);
        }
        // 60 turns of 120 tokens = 7,200 tokens through a 1,000-token window: a cut that
        // moved one turn at a time would move ~50 times.
        assert!(cuts_seen.len() <= 20, "the cut moved {} times: {cuts_seen:?}", cuts_seen.len());
        for w in cuts_seen.windows(2) {
            let dropped: usize = sizes[w[0]..w[1]].iter().sum();
            assert!(dropped >= 400, "a step dropped only {dropped} tokens: {cuts_seen:?}");
        }
    }

    #[test]
    fn a_huge_last_message_falls_back_and_can_fail() {
        let sizes = [10, 10, 10, 10, 500];
        let can_start = [true, false, true, false, true];
        let cuts = cut_points(&sizes[..4], &can_start[..4], 15);
        assert_eq!(cuts, vec![2]);
        let fits = |d: usize| -> Result<Option<usize>, ()> {
            Ok((sizes[d..].iter().sum::<usize>() <= 505).then_some(d))
        };
        assert_eq!(fit(5, &cuts, &can_start, fits).unwrap(), Some((4, 4)));
        let never = |_: usize| -> Result<Option<()>, ()> { Ok(None) };
        assert_eq!(fit(5, &cuts, &can_start, never).unwrap(), None);
    }
}
