//! Placing retrieved principles in a model's context, within a token budget.

use super::search::Hit;
use crate::lang::Lang;
use serde::Serialize;

/// The template used for `lang`.
pub fn template_name(lang: Lang) -> &'static str {
    match lang {
        Lang::Zh => "kb_context.zh.jinja",
        Lang::En => "kb_context.en.jinja",
    }
}

#[derive(Serialize)]
struct Item<'a> {
    id: &'a str,
    title: &'a str,
    summary: &'a str,
    quotes: &'a [String],
    dos: Vec<&'a str>,
    donts: Vec<&'a str>,
    score: f32,
}

#[derive(Serialize)]
struct Ctx<'a> {
    lang: &'a str,
    principles: Vec<Item<'a>>,
}

fn items<'a>(hits: &'a [Hit<'a>], lang: Lang) -> Vec<Item<'a>> {
    hits.iter()
        .map(|h| {
            let p = h.principle;
            Item {
                id: &p.id,
                title: p.title.get(lang),
                summary: p.summary.get(lang),
                quotes: &p.quotes,
                dos: p.dos.iter().map(|b| b.get(lang)).collect(),
                donts: p.donts.iter().map(|b| b.get(lang)).collect(),
                score: h.score,
            }
        })
        .collect()
}

/// Renders the context template for `lang` with the first `hits`, or an error if the
/// template (possibly overridden through `UPWARD_PROMPTS_DIR`) is broken.
pub fn try_render(hits: &[Hit<'_>], lang: Lang) -> Result<String, crate::prompts::PromptError> {
    let ctx = Ctx { lang: lang.code(), principles: items(hits, lang) };
    crate::prompts::render(template_name(lang), ctx).map(|s| s.trim().to_string())
}

/// Renders the built-in template, ignoring overrides (the fallback when one is broken).
fn render_builtin(hits: &[Hit<'_>], lang: Lang) -> String {
    let name = template_name(lang);
    let mut env = crate::prompts::environment();
    env.set_loader(|_| Ok(None));
    let src = crate::prompts::builtin(name).unwrap_or_default();
    let ctx = Ctx { lang: lang.code(), principles: items(hits, lang) };
    env.render_named_str(name, src, ctx).map(|s| s.trim().to_string()).unwrap_or_default()
}

/// Fills the context template with as many of `hits` (best first) as fit in `max_tokens`,
/// as counted by `count_tokens`; the lowest-ranked principles are dropped first. Returns
/// an empty string when no hit fits (or there are none). A broken override template is
/// reported on stderr and the built-in one used instead.
pub fn render_context(
    hits: &[Hit<'_>],
    lang: Lang,
    max_tokens: usize,
    count_tokens: &dyn Fn(&str) -> usize,
) -> String {
    let render = |n: usize| -> String {
        match try_render(&hits[..n], lang) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("warning: {e}; using the built-in template");
                render_builtin(&hits[..n], lang)
            }
        }
    };
    // The rendered size grows with the number of principles: find the largest prefix that
    // fits by binary search (few renders even for long hit lists).
    let (mut lo, mut hi) = (0usize, hits.len());
    let mut best = String::new();
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        let text = render(mid);
        if count_tokens(&text) <= max_tokens {
            lo = mid;
            best = text;
        } else {
            hi = mid - 1;
        }
    }
    if lo == 0 {
        return String::new();
    }
    if best.is_empty() {
        best = render(lo);
    }
    best
}
