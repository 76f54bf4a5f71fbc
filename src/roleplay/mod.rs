//! Role-play with the boss: personas, scenarios from the knowledge base, turn-by-turn
//! scoring with a trust meter, a director's note that makes the boss react to the
//! quality of each turn, hints, feedback and the debrief.

pub mod authored;
pub mod coach;
pub mod debrief;
pub mod persona;
pub mod record;
pub mod reply;
pub mod session;

pub use authored::{BossChoice, Why};
pub use coach::{score_turn, TurnScore};
pub use debrief::{debrief, feedback, hint, Debrief, Practice};
pub use persona::{load_personas, Persona};
pub use session::{Roleplay, RoleplayError, Turn};
