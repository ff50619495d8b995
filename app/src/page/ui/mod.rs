//! What every panel uses: number formats, the glossary and its `Explain` blocks, the built-in
//! texts and the window's measures.

pub mod fmt;
pub mod glossary;
pub mod layout;
pub mod progress;
pub mod texts;
