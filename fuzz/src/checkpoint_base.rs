//! A small valid Hugging Face checkpoint (a one-layer llama of dim 32 with a 6-token byte-level
//! vocabulary), built in code: the base the `checkpoint` target mutates one file of, and what
//! `checkpoint_seeds` writes as its seed corpus.

use std::collections::BTreeMap;

use lowbit::hf::{self, Files};
use lowbit::safetensors::{self, Dtype};

/// The files a fuzz input may replace, picked by its first byte.
pub const TARGETS: [&str; 5] = [hf::CONFIG, hf::TOKENIZER, hf::TOKENIZER_CONFIG, hf::INDEX, "model-00001-of-00002.safetensors"];

pub fn base() -> Files {
    let (dim, ffn, vocab) = (32usize, 64usize, 6usize);
    let config = serde_json::json!({
        "architectures": ["LlamaForCausalLM"], "hidden_size": dim, "intermediate_size": ffn, "num_hidden_layers": 1,
        "num_attention_heads": 2, "num_key_value_heads": 1, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "max_position_embeddings": 64, "tie_word_embeddings": true, "hidden_act": "silu", "vocab_size": vocab,
    });
    let tokenizer = serde_json::json!({
        "version": "1.0", "normalizer": null,
        "added_tokens": [{ "id": 5, "content": "<|endoftext|>", "special": true }],
        "pre_tokenizer": { "type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true },
        "model": { "type": "BPE", "vocab": { "a": 0, "b": 1, "ab": 2, "\u{120}": 3, "\u{120}ab": 4, "<|endoftext|>": 5 }, "merges": ["a b", "\u{120} ab"] },
    });
    let tokenizer_config = serde_json::json!({ "eos_token": "<|endoftext|>", "chat_template": "{% for m in messages %}{{ m['content'] }}{% endfor %}" });
    let kv = dim / 2;
    let mats: Vec<(String, Vec<usize>)> = vec![
        ("model.embed_tokens.weight".into(), vec![vocab, dim]),
        ("model.layers.0.self_attn.q_proj.weight".into(), vec![dim, dim]),
        ("model.layers.0.self_attn.k_proj.weight".into(), vec![kv, dim]),
        ("model.layers.0.self_attn.v_proj.weight".into(), vec![kv, dim]),
        ("model.layers.0.self_attn.o_proj.weight".into(), vec![dim, dim]),
        ("model.layers.0.mlp.gate_proj.weight".into(), vec![ffn, dim]),
        ("model.layers.0.mlp.up_proj.weight".into(), vec![ffn, dim]),
        ("model.layers.0.mlp.down_proj.weight".into(), vec![dim, ffn]),
        ("model.layers.0.input_layernorm.weight".into(), vec![dim]),
        ("model.layers.0.post_attention_layernorm.weight".into(), vec![dim]),
        ("model.norm.weight".into(), vec![dim]),
    ];
    let values: Vec<Vec<f32>> = mats.iter().map(|(_, s)| (0..s.iter().product::<usize>()).map(|i| ((i % 7) as f32 - 3.0) * 0.01).collect()).collect();
    let mut files = Files::new();
    let mut weight_map = serde_json::Map::new();
    let half = mats.len() / 2;
    for (s, range) in [(1, 0..half), (2, half..mats.len())] {
        let name = format!("model-{s:05}-of-00002.safetensors");
        let list: Vec<(&str, Dtype, &[usize], &[f32])> =
            range.clone().map(|i| (mats[i].0.as_str(), Dtype::BF16, mats[i].1.as_slice(), values[i].as_slice())).collect();
        for i in range {
            weight_map.insert(mats[i].0.clone(), serde_json::json!(name));
        }
        files.insert(name, safetensors::write(&list, &BTreeMap::new()).unwrap());
    }
    files.insert(hf::INDEX.into(), serde_json::to_vec(&serde_json::json!({ "weight_map": weight_map })).unwrap());
    files.insert(hf::CONFIG.into(), serde_json::to_vec(&config).unwrap());
    files.insert(hf::TOKENIZER.into(), serde_json::to_vec(&tokenizer).unwrap());
    files.insert(hf::TOKENIZER_CONFIG.into(), serde_json::to_vec(&tokenizer_config).unwrap());
    files
}
