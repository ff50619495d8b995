//! lowbit page: what the page (`page/`, one folder per feature) and the engine worker (`worker/`)
//! share, tested natively: the messages between them (`protocol`), the page's job state (`job`),
//! saved chats (`history`), shared links (`share`), the charts (SVG) and Markdown rendering.

pub mod charts;
pub mod history;
pub mod job;
pub mod markdown;
pub mod protocol;
pub mod share;

// The page's code layout rules, checked by `cargo test` (a unit test, not an integration test:
// those make cargo build the package's binaries natively, about two minutes of a cold test run).
#[cfg(test)]
mod layout_rules;
