//! `upward critique`: critique a help request or thank-you note.

use super::Global;
use anyhow::Context;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use upward::coach::critique::{self as service, Helper};
use upward::coach::Event;
use upward::critique::judge::{self, CalibrationStore, JudgeBasis, JudgePolicy};
use upward::critique::{self, render, CritiqueError, KindChoice, Producer};
use upward::kb::KnowledgeBase;
use upward::lang::Lang;
use upward::render::Painter;
use upward::store::Store;

/// Arguments of `upward critique`.
#[derive(Debug, clap::Args)]
pub struct CritiqueArgs {
    /// What the draft is: a help request, a thank-you note, or detect it.
    #[arg(long, value_enum, default_value_t = KindChoice::Auto)]
    pub kind: KindChoice,
    /// Print one JSON object instead of the report.
    #[arg(long)]
    pub json: bool,
    /// Critique with the rules only, without a model.
    #[arg(long, conflicts_with = "calibrate")]
    pub no_model: bool,
    /// Do not save the critique (by default it is saved as a session, for `upward sessions`
    /// and `upward progress`).
    #[arg(long)]
    pub no_save: bool,
    /// Measure the model (--model, else the default) on the built-in labelled set, with
    /// and without it judging, and store whether it may judge; reads no draft.
    #[arg(long, conflicts_with = "file")]
    pub calibrate: bool,
    /// The draft: a UTF-8 text file, or `-` for stdin (default: stdin; paste and press
    /// Ctrl-D when it is a terminal).
    pub file: Option<PathBuf>,
}

/// A loaded model and whether it may judge.
struct Loaded {
    model: super::Model,
    name: String,
    policy: JudgePolicy,
}

/// Loads the model for the critique (fetching it only when named with --model) and
/// decides whether it may judge: a local file by its calibration or catalogue entry; a
/// model without a file here is not measured, so it does not judge.
fn load(g: &Global, announce: bool) -> anyhow::Result<Loaded> {
    let (model, name, resolved) = super::load_resolved(g, 4096, announce, g.model.is_some())?;
    let store = CalibrationStore::from_env();
    let policy = match (&model.info().path, &resolved.entry) {
        (Some(path), entry) => judge::policy(path, entry.as_ref(), store.as_ref()),
        // A remote model judges when its entry says `judge = true`.
        (None, Some(e)) if e.judge.is_some() => JudgePolicy {
            judge: e.judge == Some(true),
            basis: JudgeBasis::Catalogue { entry: e.name.clone() },
        },
        (None, _) => upward::coach::critique::policy(&model.info()),
    };
    Ok(Loaded { model, name, policy })
}

/// Runs `upward critique`.
pub fn run(args: CritiqueArgs, g: &Global) -> anyhow::Result<()> {
    if args.calibrate {
        return calibrate(&args, g);
    }
    let draft = read_draft(args.file.as_deref(), g)?;
    // Messages follow --lang, else the draft's language.
    let lang = g.lang.unwrap_or_else(|| Lang::detect(&draft));
    let kb = KnowledgeBase::load_default().context("loading the knowledge base")?;
    // With a model the critique adds a comment and a model rewrite, and per-criterion
    // judgements when the model may judge. A model named with --model is fetched if
    // needed; otherwise one is used only when it is already on disk, so the critique
    // stays instant and offline.
    let mut loaded = if args.no_model {
        None
    } else {
        match load(g, !args.json) {
            Ok(l) => Some(l),
            Err(e) if g.model.is_some() => return Err(e),
            Err(_) => {
                eprintln!(
                    "{}",
                    lang.pick(
                        "提示：本机没有模型，以下为规则检查结果（`upward models pull` 后可获得模型点评与改写）。",
                        "note: no model on disk; showing the rule-based check (`upward models pull` adds a model's comment and rewrite)."
                    )
                );
                None
            }
        }
    };
    let store = if args.no_save {
        None
    } else {
        match Store::open(g.data_dir.as_deref()) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("upward: {e} (this critique is not saved)");
                None
            }
        }
    };
    let mut show = |e: Event| {
        if let Event::Notice(n) = e {
            eprintln!("upward: {}", upward::term::visible(&n.message(lang)));
        }
    };
    let helper = loaded.as_mut().map(|l| Helper {
        model: l.model.as_mut(),
        name: &l.name,
        judge: l.policy.judge,
    });
    let done = service::critique(&draft, args.kind, g.lang, &kb, helper, store.as_ref(), &mut show)
        .map_err(|e: CritiqueError| anyhow::anyhow!(e.message(lang)))?;
    let model_info = loaded.map(|l| (l.name, l.policy));
    if args.json {
        let v = done.to_json(model_info.as_ref().map(|(name, policy)| (name.as_str(), policy)));
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let c = &done.critique;
        let width = terminal_width();
        let painter = Painter::for_stdout();
        // The draft's text (quoted as evidence) and the model's are shown, never obeyed.
        let shown = upward::term::visible_copy(c);
        print!("{}", render::render(&shown, &painter, width));
        let note = match &model_info {
            None => c
                .lang
                .pick(
                    "（规则检查，未使用模型；改写为你自己的句子按结构重排。）",
                    "(Rule-based check without a model; the rewrite reorders your own sentences.)",
                )
                .to_string(),
            Some((name, p)) if !p.judge => match c.lang {
                Lang::Zh => format!(
                    "（评分来自规则：模型 {name} {}；点评{}、改写{}。）",
                    match p.basis {
                        JudgeBasis::Unmeasured =>
                            "尚未校准（`upward critique --calibrate` 可测量它）",
                        _ => "在标注集上会降低一致性，不参与评分",
                    },
                    producer_zh(c.comment_from),
                    producer_zh(c.rewrite_from),
                ),
                Lang::En => format!(
                    "(Statuses from the rules: model {name} {}; comment {}, rewrite {}.)",
                    match p.basis {
                        JudgeBasis::Unmeasured =>
                            "is not calibrated (`upward critique --calibrate` measures it)",
                        _ => "lowers agreement on the labelled set, so it does not judge",
                    },
                    producer_en(c.comment_from),
                    producer_en(c.rewrite_from),
                ),
            },
            Some((name, _)) => match c.lang {
                Lang::Zh => format!(
                    "（评分由规则和模型 {name} 共同给出；点评{}、改写{}。）",
                    producer_zh(c.comment_from),
                    producer_zh(c.rewrite_from)
                ),
                Lang::En => format!(
                    "(Statuses from the rules and model {name}; comment {}, rewrite {}.)",
                    producer_en(c.comment_from),
                    producer_en(c.rewrite_from)
                ),
            },
        };
        println!("\n{}", painter.paint(&note, upward::render::Style::Dim));
        if let Some(id) = done.session {
            let note = match c.lang {
                Lang::Zh => format!("已保存为会话 {id}（upward sessions show {id}）。"),
                Lang::En => format!("Saved as session {id} (upward sessions show {id})."),
            };
            println!("{}", painter.paint(&note, upward::render::Style::Dim));
        }
    }
    Ok(())
}

fn producer_zh(p: Option<Producer>) -> &'static str {
    match p {
        Some(Producer::Model) => "由模型写",
        Some(Producer::Rules) => "由规则生成（模型输出未通过检查）",
        None => "无",
    }
}

fn producer_en(p: Option<Producer>) -> &'static str {
    match p {
        Some(Producer::Model) => "by the model",
        Some(Producer::Rules) => "by the rules (the model's failed its checks)",
        None => "none",
    }
}

/// `upward critique --calibrate`: measures the model on the labelled set and stores the
/// verdict for this model file.
fn calibrate(args: &CritiqueArgs, g: &Global) -> anyhow::Result<()> {
    let lang = g.lang();
    let mut l = load(g, true)?;
    if l.model.engine().is_none() {
        anyhow::bail!(
            "--calibrate measures a local model file; for a remote model set `judge = true` or `false` in its models.toml entry"
        );
    }
    let store = CalibrationStore::from_env()
        .ok_or_else(|| anyhow::anyhow!("no cache folder to store the calibration in"))?;
    let total = judge::labelled_set().len();
    eprintln!(
        "{}",
        match lang {
            Lang::Zh => format!("upward: 在 {total} 份标注草稿上测量 {}（每份约几秒）…", l.name),
            Lang::En =>
                format!("upward: measuring {} on {total} labelled drafts (seconds each)…", l.name),
        }
    );
    let path = l.model.info().path.context("calibration needs a model file on this machine")?;
    let mut model = critique::with_engine::BackendModel(l.model.as_mut());
    let c = judge::calibrate(&mut model, &mut |p| {
        eprintln!(
            "upward: {}/{} drafts · agreement so far: rules {:.3}, with model {:.3}",
            p.done, p.total, p.rules.macro_agreement, p.model.macro_agreement
        );
        if p.done % 8 == 0 {
            let per: Vec<String> = p
                .model
                .per_criterion
                .iter()
                .map(|(id, m)| {
                    format!("{id} {:.2}/{m:.2}", p.rules.per_criterion.get(id).unwrap_or(&0.0))
                })
                .collect();
            eprintln!("upward:   rules/model: {}", per.join(", "));
        }
    })
    .map_err(|e| anyhow::anyhow!(e.message(lang)))?;
    let file = store
        .save(&path, &c)
        .with_context(|| format!("storing the calibration in {}", store.dir().display()))?;
    if args.json {
        let v = serde_json::json!({
            "model": l.name,
            "model_file": path,
            "rules": c.rules,
            "with_model": c.model,
            "judge": c.judge,
            "stored": file,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "{:<14} {:>7} {:>10}",
        lang.pick("评分项", "criterion"),
        lang.pick("规则", "rules"),
        lang.pick("加模型", "with model")
    );
    for (id, r) in &c.rules.per_criterion {
        let m = c.model.per_criterion.get(id).copied().unwrap_or(0.0);
        println!("{id:<14} {r:>7.3} {m:>10.3}");
    }
    println!("{:<14} {:>7.3} {:>10.3}", "macro", c.rules.macro_agreement, c.model.macro_agreement);
    println!(
        "{}",
        match (c.judge, lang) {
            (true, Lang::Zh) => format!("模型不降低一致性：{} 今后参与评分。", l.name),
            (false, Lang::Zh) => format!("模型降低了一致性：{} 不参与评分（仍可写点评和改写）。", l.name),
            (true, Lang::En) => format!("The model does not lower agreement: {} will judge.", l.name),
            (false, Lang::En) => format!("The model lowers agreement: {} will not judge (it still writes the comment and rewrite).", l.name),
        }
    );
    println!("{} {}", lang.pick("已保存：", "stored:"), file.display());
    Ok(())
}

/// Reads the draft from a file, `-`, or stdin (with a hint when stdin is a terminal).
fn read_draft(file: Option<&std::path::Path>, g: &Global) -> anyhow::Result<String> {
    match file {
        Some(p) => Ok(upward::text::read_user_text(p)?),
        None => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                let hint = g.lang().pick(
                    "粘贴你的草稿（求助或感谢），可以多行；结束后按 Ctrl-D：",
                    "Paste your draft (help request or thank-you note), several lines are fine; press Ctrl-D when done:",
                );
                eprintln!("{hint}");
            }
            let mut bytes = Vec::new();
            stdin.lock().read_to_end(&mut bytes).context("reading the draft from stdin")?;
            Ok(upward::text::decode_user_text(&bytes, "-")?)
        }
    }
}

fn terminal_width() -> usize {
    std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).unwrap_or(80)
}
