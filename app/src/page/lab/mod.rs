//! The precision lab: quality per precision, the side-by-side comparison (and its shared links),
//! speed, and the weight inspector. `state.rs` holds their results and the commands that run
//! them; every number comes from the engine.

pub mod compare;
pub mod context_speed;
pub mod inspector;
pub mod quality;
pub mod share;
pub mod speed;
pub mod state;

pub use state::LabState;
