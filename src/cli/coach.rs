//! The coach REPL as the command line opens it: bare `upward`, `upward roleplay` without
//! `--script`, and `upward sessions resume`.

use super::roleplay::knowledge;
use super::{cancel_flag, load_model, Global, SamplingArgs};
use upward::backend::ChatBackend;
use upward::kb::KnowledgeBase;
use upward::repl::coach::Coach;
use upward::roleplay::authored::{self, BossChoice};
use upward::roleplay::{self, load_personas};
use upward::store::Store;

/// Loads everything the coach REPL needs.
pub fn open_coach(
    g: &Global,
    sampling: &SamplingArgs,
    kb: KnowledgeBase,
    personas: Vec<roleplay::Persona>,
) -> anyhow::Result<Coach> {
    let (store, warning) = Store::open_or_warn(g.data_dir.as_deref());
    if let Some(w) = warning {
        eprintln!("upward: {w}");
    }
    let (mut model, name) = load_model(g, sampling.ctx, true)?;
    let speaks = model_speaks(g, &name, model.as_mut());
    let mut coach =
        Coach::new(model, name, kb, personas, g.lang(), sampling.options(), store, cancel_flag());
    coach.speaks = speaks;
    Ok(coach)
}

/// The languages the loaded model speaks: its catalogue entry's, else its GGUF file's,
/// else unknown (then the user is trusted to have picked a model for their language).
pub fn model_speaks(g: &Global, name: &str, model: &mut dyn ChatBackend) -> Option<Vec<String>> {
    let cat = upward::catalogue::Catalogue::load_default(g.models_file.as_deref()).ok();
    let listed = cat.as_ref().and_then(|c| c.entry(name)).map(|e| e.languages.clone());
    authored::model_languages(listed.as_deref(), model.engine().map(|e| e.file()))
}

/// Opens the coach REPL (`upward` with no subcommand).
pub fn run_repl(g: &Global) -> anyhow::Result<()> {
    let kb = knowledge()?;
    let personas = load_personas()?;
    let sampling = SamplingArgs::defaults();
    let mut coach = open_coach(g, &sampling, kb, personas)?;
    coach.run()
}

/// `upward roleplay` without `--script`: the REPL, with `scenario` started.
pub fn run_roleplay(
    g: &Global,
    sampling: &SamplingArgs,
    (kb, personas): (KnowledgeBase, Vec<roleplay::Persona>),
    boss: BossChoice,
    scenario: &str,
    persona: Option<&str>,
) -> anyhow::Result<()> {
    let mut coach = open_coach(g, sampling, kb, personas)?;
    coach.boss = boss;
    coach.start_roleplay(scenario, persona)?;
    coach.run()
}

/// `upward sessions resume ID` for a role-play: the REPL, with the session resumed.
pub fn run_resumed(g: &Global, id: i64) -> anyhow::Result<()> {
    let kb = knowledge()?;
    let personas = load_personas()?;
    let sampling = SamplingArgs::defaults();
    let mut coach = open_coach(g, &sampling, kb, personas)?;
    coach.resume(id)?;
    coach.run()
}
