//! The words the page uses, defined for a student, and the links to them from each panel.

use leptos::prelude::*;

/// `(anchor, term, definition)`, in the order a reader meets them.
pub const TERMS: [(&str, &str, &str); 17] = [
    ("token", "token", "A piece of text the model reads and writes one at a time: a word, part of a word, or a punctuation mark. \
        A token is about three quarters of an English word."),
    ("quantization", "precision, FP16, INT8, INT4, INT3, INT2", "How many bits hold each weight. FP16 is a 16-bit floating-point number; \
        INT8 to INT2 store each weight as a whole number of 8 to 2 bits, multiplied back by a scale. Fewer bits mean less memory \
        to read per token, and some rounding error."),
    ("block-scale", "block scale", "INT8 and INT4 split every row of weights into blocks of 32. Each block keeps one scale (and \
        INT4 a minimum too): the weights are stored as small whole numbers, and weight = number × scale. A block with one large \
        weight gets a large scale, and its small weights are rounded more coarsely."),
    ("method", "quantization method", "How the whole numbers and scales of INT8 and INT4 are chosen. Rounding to \
        the nearest level is the simplest; searching each block's scale, weighting errors by how much each input matters, AWQ's \
        scaling up the weights the most active inputs meet (and those inputs down by as much), or GPTQ's compensating one rounding error with the weights not yet rounded keep more of the model's quality at the same \
        memory and speed."),
    ("calibration", "calibration", "Running a sample text through the model before quantizing it, to measure which inputs each \
        weight meets and how strongly. Calibrated methods protect the weights those inputs lean on. The text used to judge \
        quality must be a different one, or the result flatters the method."),
    ("activations", "activations (8-bit)", "The numbers a layer passes to the next: what each matrix of weights multiplies. \
        Normally they stay 32-bit floating-point numbers even when the weights are rounded to 8 or 4 bits (W8A16, W4A16). \
        Rounding them to 8 bits too (W8A8, W4A8), in blocks of 32 with one scale each, lets a GPU multiply whole numbers four \
        at a time, at the cost of a little more rounding error."),
    ("kv-cache", "KV cache", "The keys and values the model computed for every token so far, kept so that each new token only \
        computes its own. It grows with the conversation; its size limits how long a conversation can be (the context). \
        The 4- and 3-bit caches keep the last 16 tokens unrounded too: each new token leans hardest on the tokens just \
        before it, where rounding errors do not average out over many tokens."),
    ("rotation", "rotation (KV cache)", "Before keys and values are rounded to 4 or 3 bits, the rotated formats mix each block of \
        them with a fixed pattern of sums, differences and sign flips, which keeps every length and angle but spreads one large \
        value over the whole block. Rounded with one scale per block, the other values then keep their detail instead of \
        rounding to zero beside a giant; the attention results are rotated back, so nothing else changes. Before rotating, they \
        also scale each channel of the keys: up where the queries lean on it, down where the keys alone are large, with the \
        queries scaled the opposite way so that no score changes; the rounding error then lands where it matters least. All 4- and 3-bit \
        caches also subtract each layer's average key, measured once on the calibration text: it moves every score a token gives \
        the earlier ones by the same amount, which attention ignores, and frees the scale for what differs between keys."),
    ("prefill-decode", "prefill and decode", "Prefill reads the prompt, all its tokens at once; decode writes the reply, one \
        token at a time. Prefill is limited by arithmetic, decode by how fast the weights can be read from memory."),
    ("perplexity", "perplexity", "How surprised the model is by a text, on average per token: 10 means it was as unsure as if \
        choosing among 10 equally likely tokens each time. Lower is better. It is e raised to the mean negative log-probability \
        (in nats) of each real next token."),
    ("nats", "nats", "A unit of information using natural logarithms (bits use base 2: 1 nat ≈ 1.44 bits). Log-probabilities \
        and KL divergences here are in nats."),
    ("kl", "KL divergence", "How far one probability distribution is from another: here, how far a precision's next-token \
        probabilities drift from FP16's, averaged over the positions of a text. 0 means identical; 0.01 nats is a small drift, \
        1 nat a large one."),
    ("top1", "top-1 agreement", "How often a precision's most likely next token is the same as FP16's. 100 % means greedy \
        decoding would write the same text."),
    ("teacher-forcing", "teacher forcing", "Scoring a model on a fixed text: at every position it is given the real text so \
        far (not its own earlier guesses) and asked for the next token. Every precision answers the same questions, so their \
        scores compare fairly."),
    ("noise", "noise", "A difference a measurement shows by chance. Scoring one short text, two precisions can differ by luck: \
        rounding helps some tokens and hurts others. The ± band is two standard errors of the per-token difference; a \
        difference inside it is not evidence that one precision is better."),
    ("residual-stream", "residual stream", "The vector each token carries from layer to layer. Every layer adds its result to \
        it rather than replacing it, so an error made in an early layer travels through all the later ones."),
    ("roofline", "roofline", "The fastest a step could possibly run. Writing one token reads every weight once, so a token \
        step cannot be faster than all its bytes divided by the GPU's memory bandwidth (here measured with a plain copy \
        kernel). Fewer bits per weight lower that bound."),
];

/// "Words used here:" with a link to each term's definition in the glossary.
#[component]
pub fn Words(terms: &'static [&'static str]) -> impl IntoView {
    let links = terms
        .iter()
        .filter_map(|a| TERMS.iter().find(|t| t.0 == *a))
        .map(|(anchor, term, _)| view! { <a href=format!("#g-{anchor}")>{*term}</a> })
        .collect::<Vec<_>>();
    let n = links.len();
    view! {
        <p class="words" data-testid="words">"Words used here: "
            {links.into_iter().enumerate().map(|(i, l)| view! { {l}{(i + 1 < n).then_some(" · ")} }).collect_view()}
        </p>
    }
}

/// Every term, defined.
#[component]
pub fn Glossary() -> impl IntoView {
    view! {
        <section class="glossary" id="glossary" data-testid="glossary">
            <h2>"Words used on this page"</h2>
            <dl>
                {TERMS.iter().map(|(anchor, term, text)| view! {
                    <dt id=format!("g-{anchor}")>{*term}</dt><dd>{*text}</dd>
                }).collect_view()}
            </dl>
        </section>
    }
}

/// Whether the window is phone-width (explanations start folded there, so the chat comes first).
pub fn narrow() -> bool {
    super::layout::window_width().is_some_and(|w| w < 700.0)
}

/// A panel's explanation, with links to the words it uses: open on wide screens, folded under
/// "How this works" on a phone.
#[component]
pub fn Explain(#[prop(optional)] words: &'static [&'static str], children: Children) -> impl IntoView {
    view! {
        <details class="explain" open=!narrow()>
            <summary>"How this works"</summary>
            <p>{children()}</p>
            {(!words.is_empty()).then(|| view! { <Words terms=words/> })}
        </details>
    }
}
