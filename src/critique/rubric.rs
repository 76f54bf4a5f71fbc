//! The rubrics as critique uses them: the typed core lives in [`crate::rubric`]; this
//! module re-exports it and adds lookups by string id.

use crate::lang::Lang;
use crate::rubric::DraftKind;
pub use crate::rubric::{
    Criterion, CriterionDef, Rubric, GENERAL_MAX_WEIGHT, HELP, SKIP_LEVEL, THANKS,
};

/// The short name of criterion `id` in `lang` (the id itself when it is unknown).
pub fn label<T: AsRef<str> + ?Sized>(id: &T, lang: Lang) -> &str {
    let id = id.as_ref();
    Criterion::parse(id).map_or(id, |c| c.name(lang))
}

/// The rubric of a kind.
pub fn rubric(kind: DraftKind) -> &'static [CriterionDef] {
    Rubric::from(kind).defs()
}

/// Looks a criterion's definition up by id in any rubric.
pub fn criterion<T: AsRef<str> + ?Sized>(id: &T) -> Option<&'static CriterionDef> {
    Criterion::parse(id.as_ref()).map(Criterion::def)
}
