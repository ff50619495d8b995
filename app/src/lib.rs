//! lowbit page: the messages between the page and its engine worker, and the charts (SVG). The page's components are
//! in `main.rs`, the worker in `bin/lowbit-worker.rs`.

pub mod charts;
pub mod history;
pub mod job;
pub mod markdown;
pub mod protocol;
pub mod share;
