//! The page's code stays in rooms a newcomer can find: no file under `app/src` over 400 lines
//! and no function over 80 (a component's `view!` included), so a feature's state, panels and
//! events each fit on a screen or two.

use std::path::{Path, PathBuf};

const MAX_FILE_LINES: usize = 400;
const MAX_FN_LINES: usize = 80;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Each function's name and length in lines, from its `fn` line to the closing brace at the same
/// indentation (the house style: one-line signatures, closing braces on their own line).
fn functions(text: &str) -> Vec<(String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = vec![];
    for (i, line) in lines.iter().enumerate() {
        let body = line.trim_start();
        let indent = line.len() - body.len();
        let sig = ["fn ", "pub fn ", "pub(crate) fn ", "async fn ", "pub async fn ", "pub(crate) async fn "].iter().find_map(|p| body.strip_prefix(p));
        let Some(sig) = sig else { continue };
        if !line.trim_end().ends_with('{') {
            continue;
        }
        let close = format!("{}}}", " ".repeat(indent));
        if let Some(end) = lines[i + 1..].iter().position(|l| l.trim_end() == close) {
            out.push((sig.split('(').next().unwrap_or(sig).to_string(), end + 2));
        }
    }
    out
}

#[test]
fn no_file_over_400_lines_and_no_function_over_80() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![];
    rust_files(&src, &mut files);
    assert!(files.len() > 20, "found only {} files under {}", files.len(), src.display());
    let mut too_long = vec![];
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let name = f.strip_prefix(&src).unwrap().display().to_string();
        let n = text.lines().count();
        if n > MAX_FILE_LINES {
            too_long.push(format!("{name}: {n} lines"));
        }
        for (func, len) in functions(&text) {
            if len > MAX_FN_LINES {
                too_long.push(format!("{name}: fn {func} has {len} lines"));
            }
        }
    }
    assert!(too_long.is_empty(), "split these:\n{}", too_long.join("\n"));
}

#[test]
fn function_lengths_are_measured_to_their_closing_brace() {
    let text = "fn a() {\n    x;\n}\n\n    pub fn b() -> u8 {\n        1\n    }\n";
    assert_eq!(functions(text), vec![("a".to_string(), 3), ("b".to_string(), 3)]);
}
