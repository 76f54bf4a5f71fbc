//! [`Criterion`]: the typed id of one criterion of a rubric, spelled in JSON, the store
//! and the knowledge files by its stable string id (`situation`, `ask`, `chain`, …).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;

/// One criterion of a rubric. Ordered (and looked up in maps) by its string id, so a
/// `BTreeMap<Criterion, _>` iterates and serialises exactly as one keyed by the id did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Criterion {
    /// `situation`: the concrete current state.
    Situation,
    /// `effort`: what the writer already did or tried.
    Effort,
    /// `ask`: a specific request or an earnest request for advice.
    Ask,
    /// `plan`: the writer's next step and a backup.
    Plan,
    /// `tone`: a report and a request for advice, not venting or blame.
    Tone,
    /// `timing`: not turning up only at the critical moment.
    Timing,
    /// `politics`: the boss's position in the company.
    Politics,
    /// `chain`: no asks over your own boss's head (skip-level rubric).
    Chain,
    /// `specific`: a concrete episode (thank-you note).
    Specific,
    /// `attribution`: growth credited to the leader.
    Attribution,
    /// `impact`: the leader sees the growth.
    Impact,
    /// `sincere`: earnest thanks, no flattery, no tucked-in request.
    Sincere,
    /// `occasion`: tied to a milestone.
    Occasion,
    /// `forward`: a forward-looking commitment.
    Forward,
}

impl Criterion {
    /// Every criterion of every rubric.
    pub const ALL: [Criterion; 14] = [
        Criterion::Situation,
        Criterion::Effort,
        Criterion::Ask,
        Criterion::Plan,
        Criterion::Tone,
        Criterion::Timing,
        Criterion::Politics,
        Criterion::Chain,
        Criterion::Specific,
        Criterion::Attribution,
        Criterion::Impact,
        Criterion::Sincere,
        Criterion::Occasion,
        Criterion::Forward,
    ];

    /// The stable id, as written in JSON, the store and the knowledge files.
    pub const fn as_str(self) -> &'static str {
        match self {
            Criterion::Situation => "situation",
            Criterion::Effort => "effort",
            Criterion::Ask => "ask",
            Criterion::Plan => "plan",
            Criterion::Tone => "tone",
            Criterion::Timing => "timing",
            Criterion::Politics => "politics",
            Criterion::Chain => "chain",
            Criterion::Specific => "specific",
            Criterion::Attribution => "attribution",
            Criterion::Impact => "impact",
            Criterion::Sincere => "sincere",
            Criterion::Occasion => "occasion",
            Criterion::Forward => "forward",
        }
    }

    /// Parses a stable id (exactly as written; surrounding space is ignored).
    pub fn parse(id: &str) -> Option<Criterion> {
        let id = id.trim();
        Criterion::ALL.into_iter().find(|c| c.as_str() == id)
    }

    /// Every id, space-separated (for error messages).
    pub fn known_ids() -> String {
        Criterion::ALL.map(Criterion::as_str).join(" ")
    }
}

/// An id that is no criterion.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown criterion `{0}` (known: {known})", known = Criterion::known_ids())]
pub struct UnknownCriterion(pub String);

impl std::str::FromStr for Criterion {
    type Err = UnknownCriterion;
    fn from_str(s: &str) -> Result<Criterion, UnknownCriterion> {
        Criterion::parse(s).ok_or_else(|| UnknownCriterion(s.to_string()))
    }
}

impl fmt::Display for Criterion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AsRef<str> for Criterion {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Criterion {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl Ord for Criterion {
    fn cmp(&self, other: &Criterion) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for Criterion {
    fn partial_cmp(&self, other: &Criterion) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq<str> for Criterion {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Criterion {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for Criterion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Criterion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Criterion, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn ids_round_trip_and_order_as_strings() {
        for c in Criterion::ALL {
            assert_eq!(Criterion::parse(c.as_str()), Some(c));
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{c}\""));
            assert_eq!(serde_json::from_str::<Criterion>(&format!("\"{c}\"")).unwrap(), c);
        }
        assert!(serde_json::from_str::<Criterion>("\"praise\"").is_err());
        let typed: BTreeMap<Criterion, u8> = Criterion::ALL.into_iter().map(|c| (c, 1)).collect();
        let plain: BTreeMap<&str, u8> =
            Criterion::ALL.into_iter().map(|c| (c.as_str(), 1)).collect();
        assert_eq!(serde_json::to_string(&typed).unwrap(), serde_json::to_string(&plain).unwrap());
        assert_eq!(typed.get("tone"), Some(&1));
    }
}
