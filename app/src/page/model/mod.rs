//! The model feature: loading a model (default, file, URL, picker, cache), its precisions and
//! KV cache, and its card. `state.rs` holds what it knows and the commands that change it.

pub mod activations;
pub mod card;
pub mod export;
pub mod kv;
pub mod method;
pub mod panel;
pub mod picker;
pub mod precision;
pub mod state;

pub use state::ModelState;
