//! Tokenizers built from GGUF metadata, matching llama.cpp: byte-level BPE (`gpt2`, with the
//! pre-tokenizer chosen by `tokenizer.ggml.pre`) and SentencePiece (`llama`, scores with byte
//! fallback). Special tokens are split out of the text first when asked to, as llama.cpp does.

use std::collections::HashMap;

use fancy_regex::Regex;

use crate::gguf::{Array, Gguf, Value};
use crate::{Error, Result};

/// GGUF token types (`tokenizer.ggml.token_type`).
pub const TOKEN_NORMAL: i32 = 1;
pub const TOKEN_UNKNOWN: i32 = 2;
pub const TOKEN_CONTROL: i32 = 3;
pub const TOKEN_USER_DEFINED: i32 = 4;
pub const TOKEN_UNUSED: i32 = 5;
pub const TOKEN_BYTE: i32 = 6;

const GPT2_PATTERN: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
const LLAMA3_PATTERN: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_PATTERN: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The `tokenizer.ggml.pre` names of Llama 3's pre-tokenizer.
const LLAMA3_PRE: [&str; 5] = ["llama3", "llama-v3", "llama-bpe", "falcon3", "pixtral"];

/// The pre-tokenizer regexes llama.cpp applies, in order, for a `tokenizer.ggml.pre` value.
pub fn pre_tokenizer_patterns(pre: &str) -> Result<Vec<&'static str>> {
    Ok(match pre {
        "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" | "minerva-7b" => {
            vec![r"\p{N}", GPT2_PATTERN]
        }
        p if LLAMA3_PRE.contains(&p) => vec![LLAMA3_PATTERN],
        "qwen2" | "deepseek-r1-qwen" | "stablelm2" | "hunyuan" | "megrez" => vec![QWEN2_PATTERN],
        "gpt-2" | "phi-2" | "jina-es" | "jina-de" | "gpt3-finnish" | "olmo" | "mpt" | "jais" | "trillion" => {
            vec![GPT2_PATTERN]
        }
        "default" | "" => vec![r"[\p{P}\$\+<=>\^~\|]+", GPT2_PATTERN, r"\p{N}+", r"[0-9][0-9][0-9]"],
        other => return Err(Error::Malformed(format!("unsupported pre-tokenizer '{other}'"))),
    })
}

/// GPT-2's reversible byte → printable character mapping.
fn byte_to_char() -> [char; 256] {
    let mut map = ['\0'; 256];
    let mut n = 0u32;
    for b in 0..256u32 {
        let printable = (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
        map[b as usize] = if printable {
            char::from_u32(b).unwrap_or('?')
        } else {
            n += 1;
            char::from_u32(255 + n).unwrap_or('?')
        };
    }
    map
}

enum Model {
    /// `ignore_merges`: a pre-tokenized piece that is a token as a whole is that token (Llama 3's
    /// tiktoken vocabulary has tokens no chain of its merges reaches; llama.cpp does the same).
    Bpe { pre: Vec<Regex>, ranks: HashMap<(String, String), usize>, byte_char: [char; 256], char_byte: HashMap<char, u8>, ignore_merges: bool },
    Spm { scores: Vec<f32>, add_space_prefix: bool, byte_tokens: [Option<u32>; 256] },
}

pub struct Tokenizer {
    model: Model,
    pub tokens: Vec<String>,
    pub token_types: Vec<i32>,
    ids: HashMap<String, u32>,
    /// Control and user-defined tokens, longest first (matched in text before BPE/SPM).
    specials: Vec<(String, u32, i32)>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub eot: Option<u32>,
    pub add_bos: bool,
    pub unk: Option<u32>,
}

fn strings(g: &Gguf, key: &str) -> Result<Vec<String>> {
    let a = g.get(key).ok_or_else(|| Error::MissingKey(key.into()))?;
    a.as_array().and_then(Array::strings).map(<[String]>::to_vec).ok_or_else(|| Error::WrongType { key: key.into(), expected: "an array of strings" })
}

/// An optional array of one number per token (`n` of them): None when absent, an error when it
/// holds something else or has another length.
fn per_token(g: &Gguf, key: &str, n: usize) -> Result<Option<Vec<f64>>> {
    let Some(a) = g.get(key) else { return Ok(None) };
    let v = a.as_array().and_then(Array::numbers).ok_or_else(|| Error::WrongType { key: key.into(), expected: "an array of numbers" })?;
    if v.len() != n {
        return Err(Error::TokenizerArrays { key: key.into(), len: v.len(), vocab: n });
    }
    Ok(Some(v))
}

impl Tokenizer {
    pub fn from_gguf(g: &Gguf) -> Result<Self> {
        let tokens = strings(g, "tokenizer.ggml.tokens")?;
        let n = tokens.len();
        if n == 0 {
            return Err(Error::TokenizerArrays { key: "tokenizer.ggml.tokens".into(), len: 0, vocab: 0 });
        }
        let token_types: Vec<i32> = per_token(g, "tokenizer.ggml.token_type", n)?
            .map(|v| v.into_iter().map(|x| x as i32).collect())
            .unwrap_or_else(|| vec![TOKEN_NORMAL; n]);
        // A special token the tokenizer uses must be in the vocabulary.
        let id = |key: &str| -> Result<Option<u32>> {
            match g.get(key) {
                None => Ok(None),
                Some(v) => match v.as_u64() {
                    Some(id) if (id as usize) < n => Ok(Some(id as u32)),
                    _ => Err(Error::TokenId { key: key.into(), id: v.to_string(), vocab: n }),
                },
            }
        };
        let ids: HashMap<String, u32> = tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
        let kind = g.get_str("tokenizer.ggml.model").unwrap_or("gpt2");
        let model = match kind {
            "gpt2" => {
                let merges = strings(g, "tokenizer.ggml.merges")?;
                let ranks = merges
                    .iter()
                    .enumerate()
                    .filter_map(|(r, m)| m.split_once(' ').map(|(a, b)| ((a.to_string(), b.to_string()), r)))
                    .collect();
                let pre_name = g.get_str("tokenizer.ggml.pre").unwrap_or("default");
                let ignore_merges = LLAMA3_PRE.contains(&pre_name);
                let pre = pre_tokenizer_patterns(pre_name)?
                    .into_iter()
                    .map(|p| Regex::new(p).map_err(|e| Error::Malformed(format!("regex: {e}"))))
                    .collect::<Result<_>>()?;
                let byte_char = byte_to_char();
                let char_byte = byte_char.iter().enumerate().map(|(b, &c)| (c, b as u8)).collect();
                Model::Bpe { pre, ranks, byte_char, char_byte, ignore_merges }
            }
            "llama" => {
                let scores = per_token(g, "tokenizer.ggml.scores", n)?
                    .map(|v| v.into_iter().map(|x| x as f32).collect())
                    .unwrap_or_else(|| vec![0.0; n]);
                let mut byte_tokens = [None; 256];
                for (b, slot) in byte_tokens.iter_mut().enumerate() {
                    *slot = ids.get(&format!("<0x{b:02X}>")).copied();
                }
                let add_space_prefix = match g.get("tokenizer.ggml.add_space_prefix") {
                    Some(Value::Bool(b)) => *b,
                    _ => true,
                };
                Model::Spm { scores, add_space_prefix, byte_tokens }
            }
            other => return Err(Error::Malformed(format!("unsupported tokenizer model '{other}'"))),
        };
        let mut specials: Vec<(String, u32, i32)> = tokens
            .iter()
            .zip(&token_types)
            .enumerate()
            .filter(|(_, (t, &ty))| (ty == TOKEN_CONTROL || ty == TOKEN_USER_DEFINED) && !t.is_empty())
            .map(|(i, (t, &ty))| (t.clone(), i as u32, ty))
            .collect();
        specials.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
        let add_bos = match g.get("tokenizer.ggml.add_bos_token") {
            Some(Value::Bool(b)) => *b,
            _ => kind == "llama",
        };
        let eos = id("tokenizer.ggml.eos_token_id")?;
        // End of turn: the explicit key, else a chat end marker the vocabulary has.
        let eot = id("tokenizer.ggml.eot_token_id")?.or_else(|| {
            ["<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|end|>"].iter().find_map(|t| ids.get(*t).copied())
        });
        Ok(Tokenizer {
            model,
            tokens,
            token_types,
            ids,
            specials,
            bos: id("tokenizer.ggml.bos_token_id")?,
            eos,
            eot,
            add_bos,
            unk: id("tokenizer.ggml.unknown_token_id")?,
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    pub fn token_id(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }

    /// Whether generation should stop at this token.
    pub fn is_stop(&self, id: u32) -> bool {
        Some(id) == self.eos || Some(id) == self.eot
    }

    /// Token ids for `text` (no BOS added). With `parse_special`, control tokens written in the
    /// text (e.g. `<|im_start|>`) become their ids; user-defined tokens always do.
    pub fn encode(&self, text: &str, parse_special: bool) -> Vec<u32> {
        let mut out = Vec::new();
        // SentencePiece adds its space prefix at the start and after each special token.
        let mut after_special = true;
        for frag in self.split_specials(text, parse_special) {
            match frag {
                Frag::Special(id) => out.push(id),
                Frag::Text(t) => self.encode_text(t, after_special, &mut out),
            }
            after_special = matches!(frag, Frag::Special(_));
        }
        out
    }

    /// `encode`, with BOS first when the model's metadata asks for it.
    pub fn encode_with_bos(&self, text: &str, parse_special: bool) -> Vec<u32> {
        let mut ids = Vec::new();
        if self.add_bos {
            ids.extend(self.bos);
        }
        ids.extend(self.encode(text, parse_special));
        ids
    }

    fn split_specials<'t>(&self, text: &'t str, parse_special: bool) -> Vec<Frag<'t>> {
        let mut frags = Vec::new();
        let mut rest = text;
        let mut start = 0;
        'outer: while start < rest.len() {
            for (s, id, ty) in &self.specials {
                if *ty == TOKEN_CONTROL && !parse_special {
                    continue;
                }
                if rest[start..].starts_with(s.as_str()) {
                    if start > 0 {
                        frags.push(Frag::Text(&rest[..start]));
                    }
                    frags.push(Frag::Special(*id));
                    rest = &rest[start + s.len()..];
                    start = 0;
                    continue 'outer;
                }
            }
            start += rest[start..].chars().next().map_or(1, char::len_utf8);
        }
        if !rest.is_empty() {
            frags.push(Frag::Text(rest));
        }
        frags
    }

    fn encode_text(&self, text: &str, at_start: bool, out: &mut Vec<u32>) {
        match &self.model {
            Model::Bpe { pre, ranks, byte_char, ignore_merges, .. } => {
                let mut pieces = vec![text.to_string()];
                for re in pre {
                    pieces = pieces.iter().flat_map(|p| regex_split(re, p)).collect();
                }
                for p in pieces {
                    let chars: String = p.bytes().map(|b| byte_char[b as usize]).collect();
                    if let (true, Some(&id)) = (*ignore_merges, self.ids.get(&chars)) {
                        out.push(id);
                        continue;
                    }
                    for sym in bpe(&chars, ranks) {
                        match self.ids.get(&sym) {
                            Some(&id) => out.push(id),
                            None => out.extend(sym.chars().filter_map(|c| self.ids.get(&c.to_string()).copied())),
                        }
                    }
                }
            }
            Model::Spm { scores, add_space_prefix, byte_tokens } => {
                let mut s = text.replace(' ', "\u{2581}");
                if *add_space_prefix && at_start {
                    s.insert(0, '\u{2581}');
                }
                self.spm(&s, scores, byte_tokens, out);
            }
        }
    }

    /// SentencePiece BPE as llama.cpp's llm_tokenizer_spm: merge the adjacent pair whose merged
    /// string is a token with the highest score; unknown symbols fall back to byte tokens.
    fn spm(&self, s: &str, scores: &[f32], byte_tokens: &[Option<u32>; 256], out: &mut Vec<u32>) {
        let mut syms: Vec<String> = s.chars().map(|c| c.to_string()).collect();
        loop {
            let mut best: Option<(f32, usize)> = None;
            for i in 0..syms.len().saturating_sub(1) {
                let merged = format!("{}{}", syms[i], syms[i + 1]);
                if let Some(&id) = self.ids.get(&merged) {
                    let sc = scores[id as usize];
                    if best.is_none_or(|(b, _)| sc > b) {
                        best = Some((sc, i));
                    }
                }
            }
            let Some((_, i)) = best else { break };
            let next = syms.remove(i + 1);
            syms[i].push_str(&next);
        }
        for sym in syms {
            match self.ids.get(&sym) {
                Some(&id) => out.push(id),
                None => {
                    for b in sym.bytes() {
                        out.extend(byte_tokens[b as usize].or(self.unk));
                    }
                }
            }
        }
    }

    /// The bytes a token stands for (empty for control tokens).
    pub fn token_bytes(&self, id: u32) -> Vec<u8> {
        let Some(tok) = self.tokens.get(id as usize) else { return vec![] };
        let ty = self.token_types[id as usize];
        if ty == TOKEN_CONTROL || ty == TOKEN_UNKNOWN || ty == TOKEN_UNUSED {
            return vec![];
        }
        match &self.model {
            Model::Bpe { char_byte, .. } => {
                if ty == TOKEN_USER_DEFINED {
                    return tok.as_bytes().to_vec();
                }
                tok.chars().map(|c| char_byte.get(&c).copied().unwrap_or(b'?')).collect()
            }
            Model::Spm { .. } => {
                if ty == TOKEN_BYTE {
                    let hex = tok.trim_start_matches("<0x").trim_end_matches('>');
                    return u8::from_str_radix(hex, 16).map(|b| vec![b]).unwrap_or_default();
                }
                tok.replace('\u{2581}', " ").into_bytes()
            }
        }
    }

    /// Text of a token sequence (invalid UTF-8 replaced).
    pub fn decode(&self, ids: &[u32]) -> String {
        let bytes: Vec<u8> = ids.iter().flat_map(|&i| self.token_bytes(i)).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

enum Frag<'t> {
    Text(&'t str),
    Special(u32),
}

/// Split `text` into the regex's matches and the gaps between them (both kept), as llama.cpp's
/// `unicode_regex_split` does.
fn regex_split(re: &Regex, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut last = 0;
    for m in re.find_iter(text).flatten() {
        if m.start() > last {
            out.push(text[last..m.start()].to_string());
        }
        if m.end() > m.start() {
            out.push(m.as_str().to_string());
        }
        last = m.end();
    }
    if last < text.len() {
        out.push(text[last..].to_string());
    }
    out
}

/// Byte-level BPE on one pre-tokenized piece: repeatedly merge the adjacent pair of lowest rank.
fn bpe(word: &str, ranks: &HashMap<(String, String), usize>) -> Vec<String> {
    let mut syms: Vec<String> = word.chars().map(|c| c.to_string()).collect();
    loop {
        let mut best: Option<(usize, usize)> = None;
        for i in 0..syms.len().saturating_sub(1) {
            if let Some(&r) = ranks.get(&(syms[i].clone(), syms[i + 1].clone())) {
                if best.is_none_or(|(b, _)| r < b) {
                    best = Some((r, i));
                }
            }
        }
        let Some((_, i)) = best else { break };
        let next = syms.remove(i + 1);
        syms[i].push_str(&next);
    }
    syms
}

/// Turns a stream of token ids into text without ever emitting half a UTF-8 character.
#[derive(Default)]
pub struct StreamDecoder {
    pending: Vec<u8>,
}

impl StreamDecoder {
    /// Text completed by this token (possibly empty while a character is incomplete).
    pub fn push(&mut self, tok: &Tokenizer, id: u32) -> String {
        self.pending.extend(tok.token_bytes(id));
        let valid = match std::str::from_utf8(&self.pending) {
            Ok(_) => self.pending.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(), // incomplete tail: wait
            Err(e) => e.valid_up_to() + e.error_len().unwrap_or(1), // invalid bytes: emit lossily
        };
        let out: Vec<u8> = self.pending.drain(..valid).collect();
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Whatever is left at the end (lossily).
    pub fn finish(&mut self) -> String {
        let out = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        out
    }
}
