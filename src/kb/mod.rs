//! The knowledge base distilled from the sales-coaching talk: principles, scenarios,
//! their validation against the source transcript, and retrieval.
//!
//! (Loading, validation and retrieval are being built; the types below are the contract
//! other modules code against.)

mod types;

pub use types::*;
