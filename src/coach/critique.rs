//! Critiques as a service: the rules, plus the model where the judge policy allows, and
//! the result saved as its own session.

use super::events::{Event, Notice, Saving};
use crate::backend::{BackendInfo, ChatBackend};
use crate::critique::judge::{self, JudgeBasis, JudgePolicy};
use crate::critique::with_engine::BackendModel;
use crate::critique::{self, Critique, CritiqueError, KindChoice};
use crate::kb::KnowledgeBase;
use crate::lang::Lang;
use crate::store::Store;

/// The model that helps a critique, and whether it may move statuses.
pub struct Helper<'a> {
    /// The model.
    pub model: &'a mut dyn ChatBackend,
    /// Its display name, recorded with the saved critique.
    pub name: &'a str,
    /// Whether it may judge (see [`policy`]).
    pub judge: bool,
}

/// A finished critique and where it was saved.
#[derive(Clone, Debug)]
pub struct Critiqued {
    /// The critique.
    pub critique: Critique,
    /// The saved session (None: not saved, or saving failed and a notice said why).
    pub session: Option<i64>,
    /// How the model's constrained choices were made, where the backend says
    /// (`guided`, `parsed`, or `rules` when a remote model failed and the rules alone
    /// critiqued).
    pub model_choice: Option<&'static str>,
}

impl Critiqued {
    /// The critique as `upward critique --json` prints it and `POST /api/critique`
    /// answers: the critique's fields, the model's name, its judge policy, and how its
    /// choices were made (when the backend says).
    pub fn to_json(&self, model: Option<(&str, &JudgePolicy)>) -> serde_json::Value {
        let mut v = serde_json::to_value(&self.critique).unwrap_or_default();
        if let Some(obj) = v.as_object_mut() {
            let (name, judge) = match model {
                Some((name, policy)) => {
                    (serde_json::json!(name), serde_json::to_value(policy).unwrap_or_default())
                }
                None => (serde_json::Value::Null, serde_json::Value::Null),
            };
            obj.insert("model".into(), name);
            obj.insert("judge".into(), judge);
            if let Some(how) = self.model_choice {
                obj.insert("model_choice".into(), how.into());
            }
        }
        v
    }
}

/// Whether the model behind `info` may judge: a local model file by its calibration or
/// catalogue entry ([`judge::policy_for_loaded`]); a remote model is not measured.
pub fn policy(info: &BackendInfo) -> JudgePolicy {
    match &info.path {
        Some(path) => judge::policy_for_loaded(path),
        None => JudgePolicy { judge: false, basis: JudgeBasis::Unmeasured },
    }
}

/// Critiques `draft`: with the rules alone, or with `helper` adding a comment and a
/// rewrite (and judging when its policy allows). Saved to `store` when given; a store
/// error is a [`Notice::NotSaved`], the critique is still returned.
pub fn critique(
    draft: &str,
    kind: KindChoice,
    lang: Option<Lang>,
    kb: &KnowledgeBase,
    helper: Option<Helper<'_>>,
    store: Option<&Store>,
    sink: &mut dyn FnMut(Event),
) -> Result<Critiqued, CritiqueError> {
    let (c, name, model_choice) = match helper {
        Some(h) => {
            let remote = h.model.engine().is_none();
            let result = critique::critique_with_model(
                draft,
                kind,
                lang,
                kb,
                &mut BackendModel(&mut *h.model),
                h.judge,
            );
            match result {
                Ok(c) => (c, Some(h.name), h.model.last_choice_mode()),
                // A remote model that failed mid-critique: the rules' critique, said so.
                Err(e) if remote => {
                    let words = e.message(lang.unwrap_or(Lang::detect(draft)));
                    sink(Event::Notice(Notice::Warning(format!(
                        "{words}; showing the rule-based check"
                    ))));
                    (critique::critique(draft, kind, lang, kb)?, None, Some("rules"))
                }
                Err(e) => return Err(e),
            }
        }
        None => (critique::critique(draft, kind, lang, kb)?, None, None),
    };
    let session =
        store.and_then(|store| match super::save::save_critique(store, draft, &c, name) {
            Ok(id) => Some(id),
            Err(e) => {
                let error = e.to_string();
                sink(Event::Notice(Notice::NotSaved { what: Saving::Critique, error }));
                None
            }
        });
    Ok(Critiqued { critique: c, session, model_choice })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rules_critique_is_saved_as_its_own_session() {
        let kb = KnowledgeBase::load_default().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(Some(dir.path())).unwrap();
        let draft = "王总，华东项目卡在采购，我们试过两次，想请您周三前约对方副总。";
        let mut events = Vec::new();
        let done = critique(draft, KindChoice::Auto, None, &kb, None, Some(&store), &mut |e| {
            events.push(e)
        })
        .unwrap();
        let id = done.session.expect("saved");
        assert_eq!(store.session(id).unwrap().critiques.len(), 1);
        assert!(events.is_empty());
    }
}
