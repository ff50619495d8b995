//! A reply's text as Markdown, rendered safely: models write Markdown (lists, `**bold**`, code
//! fences), and a chat shows it formatted. The text is untrusted: raw HTML in it is shown as text,
//! never parsed by the browser; a link keeps only an `http(s)` or `mailto` destination (others
//! become `#`); an image is replaced by its alt text, so nothing is fetched.

use pulldown_cmark::{html, CowStr, Event, Options, Parser, Tag, TagEnd};

/// `text` (Markdown) as HTML that is safe to put into the page.
pub fn to_html(text: &str) -> String {
    let options = Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES | Options::ENABLE_TASKLISTS;
    let events = Parser::new_ext(text, options).filter_map(|ev| match ev {
        Event::Html(h) | Event::InlineHtml(h) => Some(Event::Text(h)),
        Event::Start(Tag::Link { link_type, dest_url, title, id }) => {
            let dest_url = if safe_url(&dest_url) { dest_url } else { CowStr::Borrowed("#") };
            Some(Event::Start(Tag::Link { link_type, dest_url, title, id }))
        }
        // The alt text between an image's start and end stays, as text.
        Event::Start(Tag::Image { .. }) | Event::End(TagEnd::Image) => None,
        other => Some(other),
    });
    let mut out = String::with_capacity(text.len() * 5 / 4 + 16);
    html::push_html(&mut out, events);
    out
}

fn safe_url(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    ["https://", "http://", "mailto:"].iter().any(|p| lower.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::to_html;

    #[test]
    fn markdown_is_formatted() {
        let h = to_html("Some **bold** text:\n\n- one\n- two\n\n```rust\nfn main() {}\n```\n");
        assert!(h.contains("<strong>bold</strong>"), "{h}");
        assert!(h.contains("<li>one</li>"), "{h}");
        assert!(h.contains("<pre><code class=\"language-rust\">fn main() {}\n</code></pre>"), "{h}");
        // A fence still open while the reply streams is a code block so far.
        assert!(to_html("```\nlet x = 1;").contains("<pre><code>let x = 1;"));
    }

    #[test]
    fn model_output_cannot_inject_html() {
        for evil in [
            "<script>alert(1)</script>",
            "hello <img src=x onerror=alert(1)> world",
            "<iframe src=\"https://example.com\"></iframe>",
            "<div>\n<b>block</b>\n</div>",
        ] {
            let h = to_html(evil);
            for tag in ["<script", "<img", "<iframe", "<div", "<b>"] {
                assert!(!h.contains(tag), "{evil:?} gave {h}");
            }
            assert!(h.contains("&lt;"), "{evil:?} gave {h}");
        }
        let h = to_html("[click](javascript:alert(1)) [site](https://example.com) ![cat](https://example.com/cat.png)");
        assert!(!h.contains("javascript:"), "{h}");
        assert!(h.contains("href=\"#\""), "{h}");
        assert!(h.contains("href=\"https://example.com\""), "{h}");
        assert!(!h.contains("<img") && h.contains("cat"), "{h}");
    }
}
