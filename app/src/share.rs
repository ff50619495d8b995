//! Shareable comparisons: the page's URL query carries the prompt, the sampling settings and the
//! precision choices, so one link reproduces a lock-step comparison on the same model.
//!
//! `?p=…&chat=1&sys=…&mode=same&n=8&t=0&k=40&tp=0.95&mp=0.05&rp=1.1&seed=42&lanes=int8,int4&w=fp16&kv=f32&act=f32`
//! (`lanes`: the variants compared with FP16, e.g. `int4`, `int4-int4-int8`, `fp16+kv-int8`;
//! `w`, `kv` and `act`: the weight plan, KV cache format and activations the model is loaded at).

use lowbit::lockstep::{CompareSettings, Mode};
use lowbit::plan::{Plan, Variant};
use lowbit::{Activations, KvPrecision};
use lowbit::sampler::SamplerConfig;

/// What a shared link holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Shared {
    pub settings: CompareSettings,
    /// The plan to load the model at (and to chat at).
    pub plan: Plan,
    pub kv: KvPrecision,
    pub act: Activations,
}

/// Percent-encode everything but RFC 3986's unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit() => {
                let hex = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
                out.push(hex(b[i + 1]) * 16 + hex(b[i + 2]));
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The query string (with its leading `?`) for a comparison.
pub fn to_query(sh: &Shared) -> String {
    let s = &sh.settings;
    let c = &s.sampling;
    let lanes: Vec<String> = s.lanes.iter().filter(|v| **v != Variant::REFERENCE).map(Variant::code).collect();
    let pairs = [
        ("p", s.prompt.clone()),
        ("chat", (s.chat as u8).to_string()),
        ("sys", s.system.clone()),
        ("mode", s.mode.code().to_string()),
        ("n", s.max_tokens.to_string()),
        ("t", c.temperature.to_string()),
        ("k", c.top_k.to_string()),
        ("tp", c.top_p.to_string()),
        ("mp", c.min_p.to_string()),
        ("rp", c.repetition_penalty.to_string()),
        ("seed", c.seed.to_string()),
        ("lanes", lanes.join(",")),
        ("w", sh.plan.code()),
        ("kv", sh.kv.name().to_string()),
        ("act", sh.act.name().to_string()),
    ];
    let q: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect();
    format!("?{}", q.join("&"))
}

/// Read a query string (with or without its `?`); `None` when it holds no comparison. Values
/// that do not parse keep `defaults`' (the page's current settings).
pub fn from_query(q: &str, defaults: &Shared) -> Option<Shared> {
    let pairs: Vec<(String, String)> = q
        .trim_start_matches('?')
        .split('&')
        .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), decode(v))))
        .collect();
    let get = |k: &str| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let prompt = get("p").filter(|p| !p.trim().is_empty())?;
    let d = &defaults.settings;
    let num = |k: &str, d: f32| get(k).and_then(|v| v.parse::<f32>().ok()).filter(|v| v.is_finite()).unwrap_or(d);
    let int = |k: &str, d: usize| get(k).and_then(|v| v.parse::<usize>().ok()).unwrap_or(d);
    let sampling = SamplerConfig {
        temperature: num("t", d.sampling.temperature).max(0.0),
        top_k: int("k", d.sampling.top_k),
        top_p: num("tp", d.sampling.top_p).clamp(0.0, 1.0),
        min_p: num("mp", d.sampling.min_p).clamp(0.0, 1.0),
        repetition_penalty: num("rp", d.sampling.repetition_penalty).max(0.01),
        repeat_last_n: d.sampling.repeat_last_n,
        seed: get("seed").and_then(|v| v.parse().ok()).unwrap_or(d.sampling.seed),
    };
    let lanes = match get("lanes") {
        Some(l) => l.split(',').filter_map(|c| Variant::parse(c.trim()).ok()).collect(),
        None => d.lanes.clone(),
    };
    Some(Shared {
        settings: CompareSettings {
            prompt: prompt.to_string(),
            chat: get("chat").map_or(d.chat, |v| v != "0"),
            system: get("sys").map_or_else(|| d.system.clone(), str::to_string),
            sampling,
            max_tokens: int("n", d.max_tokens).clamp(1, 512),
            lanes,
            mode: get("mode").and_then(Mode::parse).unwrap_or(d.mode),
        },
        plan: get("w").and_then(|w| Plan::parse(w).ok()).unwrap_or(defaults.plan),
        kv: get("kv").and_then(|k| KvPrecision::parse(k).ok()).unwrap_or(defaults.kv),
        act: get("act").and_then(|a| Activations::parse(a).ok()).unwrap_or(defaults.act),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lowbit::plan::Group;
    use lowbit::Precision;

    fn defaults() -> Shared {
        Shared {
            settings: CompareSettings {
                prompt: String::new(),
                chat: true,
                system: "You are a helpful assistant.".into(),
                sampling: SamplerConfig::default(),
                max_tokens: 16,
                lanes: vec![Precision::Int8.into(), Precision::Int4.into()],
                mode: Mode::SameContext,
            },
            plan: Plan::uniform(Precision::Fp16),
            kv: KvPrecision::F32,
            act: Activations::F32,
        }
    }

    #[test]
    fn a_comparison_survives_the_round_trip_through_a_url() {
        let mut sh = defaults();
        sh.settings.prompt = "Écris « bonjour » & 2+2=4? 100% sûr / #1".into();
        sh.settings.sampling.temperature = 0.7;
        sh.settings.sampling.seed = 1234;
        sh.settings.mode = Mode::Free;
        sh.settings.lanes.push(Plan::uniform(Precision::Fp16).with(Group::Ffn, Precision::Int4).into());
        sh.settings.lanes.push(Variant::new(Precision::Fp16, KvPrecision::Int8));
        sh.plan = Plan::uniform(Precision::Int8);
        sh.kv = KvPrecision::F16;
        sh.act = Activations::Int8;
        let q = to_query(&sh);
        assert!(q.ends_with("&kv=f16&act=int8"), "{q}");
        assert!(!q.contains(' ') && !q.contains('#') && !q.contains('«') && !q.contains('+'), "{q}");
        assert!(q.contains("lanes=int8%2Cint4%2Cfp16-int4-fp16%2Cfp16%2Bkv-int8"), "{q}");
        assert_eq!(from_query(&q, &defaults()), Some(sh));
        // A method travels with its plan, in the lanes and as the chat's own plan.
        let mut sh = defaults();
        sh.settings.prompt = "hi".into();
        let gptq = Plan::uniform(Precision::Int4).with_method(lowbit::method::Method::Gptq);
        sh.settings.lanes.push(gptq.into());
        sh.settings.lanes.push(Precision::Int2.into());
        sh.plan = gptq;
        let q = to_query(&sh);
        assert!(q.contains("w=int4%40gptq") && q.contains("int4%40gptq%2Cint2"), "{q}");
        assert_eq!(from_query(&q, &defaults()), Some(sh));
    }

    #[test]
    fn no_prompt_is_no_comparison_and_bad_values_keep_defaults() {
        assert_eq!(from_query("?t=0.5", &defaults()), None);
        assert_eq!(from_query("", &defaults()), None);
        let sh = from_query("?p=hi%2&t=oops&n=99999&w=int9&mode=x&act=int3", &defaults()).unwrap();
        assert_eq!(sh.act, Activations::F32);
        assert_eq!(sh.settings.prompt, "hi%2");
        assert_eq!(sh.settings.sampling.temperature, SamplerConfig::default().temperature);
        assert_eq!(sh.settings.max_tokens, 512);
        assert_eq!(sh.plan, defaults().plan);
        assert_eq!(sh.settings.mode, Mode::SameContext);
    }
}
