//! The chat feature: the conversation with the loaded model, its composer and sampling settings,
//! and the chats saved in this browser. `state.rs` holds the conversation and its commands,
//! `saved.rs` and `idb.rs` keep it across reloads.

pub mod chats_panel;
pub mod composer;
pub mod idb;
pub mod message;
pub mod panel;
pub mod sampling;
pub mod saved;
pub mod state;

pub use state::ChatState;
