//! Built-in reference texts for the quality panel (written for lowbit; free to reuse).

pub const TEXTS: [(&str, &str); 4] = [
    (
        "The lighthouse (story)",
        "The lighthouse keeper climbed the spiral stairs every evening at six. From the top he could \
see the fishing boats coming home, their lamps swinging like small stars over the water. One night \
the fog came in so thick that he could not see his own hand on the railing, so he rang the bell \
every minute until morning, and every boat found its way back to the harbour.",
    ),
    (
        "How a bicycle works (explainer)",
        "A bicycle turns the push of your legs into forward motion. The pedals turn a crank, the crank \
turns the front gear, and a chain carries that turning to a smaller gear on the back wheel. Because \
the back gear is smaller, the wheel turns several times for each turn of the pedals. Changing gears \
changes that ratio: a low gear makes hills easier, a high gear makes flat roads faster.",
    ),
    (
        "Photosynthesis (science)",
        "Plants make their own food from light, water and carbon dioxide. Inside each leaf, tiny green \
structures called chloroplasts capture energy from sunlight. They use it to split water into \
hydrogen and oxygen, and to join the hydrogen with carbon dioxide from the air into sugar. The \
oxygen is released through small pores in the leaf, which is why forests are said to help us breathe.",
    ),
    (LONG_TEXT_TITLE, include_str!("../../../../engine/texts/long-context.txt")),
];

/// The long text (about 2,500 tokens): the KV cache formats' lesson needs a long context. The
/// CLI's `scripts/long-context.sh` scores the same file.
pub const LONG_TEXT_TITLE: &str = "The river ferry (long story)";
