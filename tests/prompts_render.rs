//! The boss's system prompt rendered for every scenario × persona in Chinese and English
//! (`roleplay_boss.zh.jinja` and `.en.jinja`), with no model: what the model is told is in
//! the session's language and carries the persona, the scenario and its principles.

use upward::kb::KnowledgeBase;
use upward::lang::Lang;
use upward::roleplay::{load_personas, Roleplay};

#[test]
fn every_scenario_and_persona_renders_in_both_languages() {
    let kb = KnowledgeBase::load_default().unwrap();
    let personas = load_personas().unwrap();
    assert!(!kb.scenarios().is_empty() && !personas.is_empty());
    let mut rendered = 0;
    for s in kb.scenarios() {
        for p in &personas {
            for lang in [Lang::Zh, Lang::En] {
                let what = format!("{} × {} in {}", s.id, p.id, lang.code());
                let rp = Roleplay::new(&kb, &personas, &s.id, Some(&p.id), lang)
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                let m = rp.messages("");
                assert_eq!(m[0].role, "system", "{what}");
                let system = &m[0].content;
                for leftover in ["{{", "}}", "{%", "%}", "{#"] {
                    assert!(!system.contains(leftover), "{what}: unrendered {leftover:?}");
                }
                assert!(system.contains(p.name.get(lang)), "{what}: no persona name\n{system}");
                assert!(system.contains(s.title.get(lang)), "{what}: no scenario title\n{system}");
                assert!(system.contains(s.situation.get(lang)), "{what}: no situation\n{system}");
                // The scenario's own principles are there, by their title in this language.
                for id in &s.principles {
                    let principle = kb.principle(id).unwrap();
                    assert!(
                        system.contains(principle.title.get(lang)),
                        "{what}: principle {id} missing\n{system}"
                    );
                }
                assert_eq!(Lang::detect(system), lang, "{what}: prompt in the wrong language");
                // The opening line and the knock on the door, in this language too.
                assert_eq!(m[2].role, "assistant");
                assert_eq!(m[2].content, s.opening.get(lang), "{what}");
                assert_eq!(Lang::detect(&m[1].content), lang, "{what}: {}", m[1].content);
                assert_eq!(Lang::detect(rp.opening()), lang, "{what}: {}", rp.opening());
                rendered += 1;
            }
        }
    }
    assert_eq!(rendered, kb.scenarios().len() * personas.len() * 2);
}

/// The two languages tell the same persona the same things: neither template drops a
/// section the other has (each line of the persona's context appears in its language).
#[test]
fn chinese_and_english_prompts_differ_only_in_language() {
    let kb = KnowledgeBase::load_default().unwrap();
    let personas = load_personas().unwrap();
    let s = &kb.scenarios()[0];
    for p in &personas {
        let zh = Roleplay::new(&kb, &personas, &s.id, Some(&p.id), Lang::Zh).unwrap();
        let en = Roleplay::new(&kb, &personas, &s.id, Some(&p.id), Lang::En).unwrap();
        let (zh, en) = (&zh.messages("")[0].content, &en.messages("")[0].content);
        assert_ne!(zh, en);
        for (text, lang) in [(zh, Lang::Zh), (en, Lang::En)] {
            assert!(
                text.contains(p.voice.get(lang)),
                "{}: no voice in {}\n{text}",
                p.id,
                lang.code()
            );
            assert!(text.contains(s.boss_cares.get(lang)), "{}: no boss_cares\n{text}", p.id);
        }
        // Comparable length: one is not a stub of the other.
        let (a, b) = (zh.chars().count() as f64, en.chars().count() as f64);
        assert!(a > 0.25 * b && b > 0.25 * a, "{}: {a} vs {b} characters", p.id);
    }
}
