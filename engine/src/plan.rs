//! Mixed precision: a weight precision per tensor group. A [`Plan`] says which precision the
//! attention matrices, the feed-forward matrices and the embeddings / output head are kept at;
//! the kernels read each matrix in its own layout, so groups can differ freely.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::method::Method;
use crate::model::Mat;
use crate::{Activations, Error, KvPrecision, Precision, Result};

/// A group of weight matrices that share a precision in a [`Plan`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    /// Q, K, V and output projections of every layer.
    Attention,
    /// Gate, up and down projections of every layer.
    Ffn,
    /// The token embedding and the output head (one matrix when they are tied).
    Embeddings,
}

impl Group {
    pub const ALL: [Group; 3] = [Group::Attention, Group::Ffn, Group::Embeddings];

    pub fn of(m: Mat) -> Group {
        match m {
            Mat::Q(_) | Mat::K(_) | Mat::V(_) | Mat::O(_) => Group::Attention,
            Mat::Gate(_) | Mat::Up(_) | Mat::Down(_) => Group::Ffn,
            Mat::Embedding | Mat::Output => Group::Embeddings,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Group::Attention => "attention",
            Group::Ffn => "ffn",
            Group::Embeddings => "embeddings",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Group::Attention => "Attention",
            Group::Ffn => "Feed-forward",
            Group::Embeddings => "Embeddings + output head",
        }
    }
}

/// The weight precision of each [`Group`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Plan {
    pub attention: Precision,
    pub ffn: Precision,
    pub embeddings: Precision,
    /// How every quantized group chooses its integers and scales ([`Method`]). Left out of JSON
    /// when it is round-to-nearest, so plans saved before methods existed read and write the same.
    #[serde(default, skip_serializing_if = "Method::is_rtn")]
    pub method: Method,
}

impl Plan {
    pub const fn uniform(p: Precision) -> Plan {
        Plan { attention: p, ffn: p, embeddings: p, method: Method::Rtn }
    }

    pub fn get(&self, g: Group) -> Precision {
        match g {
            Group::Attention => self.attention,
            Group::Ffn => self.ffn,
            Group::Embeddings => self.embeddings,
        }
    }

    pub fn with(mut self, g: Group, p: Precision) -> Plan {
        match g {
            Group::Attention => self.attention = p,
            Group::Ffn => self.ffn = p,
            Group::Embeddings => self.embeddings = p,
        }
        self
    }

    pub fn with_method(mut self, m: Method) -> Plan {
        self.method = m;
        self
    }

    /// The precision of matrix `m`.
    pub fn of(&self, m: Mat) -> Precision {
        self.get(Group::of(m))
    }

    /// The one precision of every group, when they agree.
    pub fn uniform_precision(&self) -> Option<Precision> {
        (self.attention == self.ffn && self.ffn == self.embeddings).then_some(self.attention)
    }

    /// The distinct precisions the plan uses, finest first.
    pub fn precisions(&self) -> Vec<Precision> {
        let mut v = vec![self.attention, self.ffn, self.embeddings];
        v.sort();
        v.dedup();
        v
    }

    /// Whether the method matters: some group is quantized (FP16 is the same by every method).
    pub fn quantized(&self) -> bool {
        self.precisions().iter().any(|&p| p != Precision::Fp16)
    }

    /// `int4` for a uniform plan, else `attention-ffn-embeddings` (`fp16-int4-fp16`), then
    /// `@method` unless it is `rtn` (`int4@gptq`): the form URLs, the CLI and `data-precision`
    /// attributes use.
    pub fn code(&self) -> String {
        let precisions = match self.uniform_precision() {
            Some(p) => p.name().to_string(),
            None => format!("{}-{}-{}", self.attention.name(), self.ffn.name(), self.embeddings.name()),
        };
        match self.method {
            Method::Rtn => precisions,
            m => format!("{precisions}@{m}"),
        }
    }

    /// Read [`Plan::code`]'s form back.
    pub fn parse(s: &str) -> Result<Plan> {
        let (s, method) = match s.split_once('@') {
            Some((p, m)) => (p, Method::parse(m)?),
            None => (s, Method::Rtn),
        };
        let parts: Vec<&str> = s.split('-').collect();
        match parts[..] {
            [p] => Ok(Plan::uniform(Precision::parse(p)?).with_method(method)),
            [a, f, e] => Ok(Plan { attention: Precision::parse(a)?, ffn: Precision::parse(f)?, embeddings: Precision::parse(e)?, method }),
            _ => Err(Error::UnknownPrecision(s.to_string())),
        }
    }
}

impl From<Precision> for Plan {
    fn from(p: Precision) -> Plan {
        Plan::uniform(p)
    }
}

/// `INT4`, or `attention FP16 · feed-forward INT4 · embeddings FP16`, then ` (GPTQ)` for a method
/// other than round-to-nearest.
impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let up = |p: Precision| p.name().to_uppercase();
        match self.uniform_precision() {
            Some(p) => write!(f, "{}", up(p))?,
            None => write!(f, "attention {} · feed-forward {} · embeddings {}", up(self.attention), up(self.ffn), up(self.embeddings))?,
        }
        match self.method {
            Method::Rtn => Ok(()),
            m => write!(f, " ({})", m.name().to_uppercase()),
        }
    }
}

/// The name of a file's own mixed precisions (`ModelInfo::stored_plan`).
pub const STORED: &str = "As stored";

impl Plan {
    /// A short name for tables and chart axes, method aside: `INT4`, `MIX a16 f4 e16`.
    pub fn short(&self) -> String {
        let bits = |x: Precision| x.name().trim_start_matches(|c: char| c.is_alphabetic()).to_string();
        match self.uniform_precision() {
            Some(u) => u.name().to_uppercase(),
            None => format!("MIX a{} f{} e{}", bits(self.attention), bits(self.ffn), bits(self.embeddings)),
        }
    }
}

/// What one run is measured at: a weight plan, a KV cache format and the activations' format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Variant {
    pub plan: Plan,
    pub kv: KvPrecision,
    /// 8-bit activations for the INT8 and INT4 matrices, or f32 ([`Activations`]).
    #[serde(default)]
    pub act: Activations,
}

impl Variant {
    /// FP16 weights and an f32 KV cache: the reference every other variant is compared with.
    pub const REFERENCE: Variant = Variant { plan: Plan::uniform(Precision::Fp16), kv: KvPrecision::F32, act: Activations::F32 };

    /// f32 activations.
    pub fn new(plan: impl Into<Plan>, kv: KvPrecision) -> Variant {
        Variant { plan: plan.into(), kv, act: Activations::F32 }
    }

    pub fn with_act(self, act: Activations) -> Variant {
        Variant { act, ..self }
    }

    /// [`Plan::code`], then `+kv-f16`, `+kv-int8`, `+kv-int4-rot`… when the KV cache is not f32,
    /// then `+act-int8` with 8-bit activations.
    pub fn code(&self) -> String {
        let kv = match self.kv {
            KvPrecision::F32 => String::new(),
            kv => format!("+kv-{}", kv.name()),
        };
        let act = match self.act {
            Activations::F32 => String::new(),
            a => format!("+act-{}", a.name()),
        };
        format!("{}{kv}{act}", self.plan.code())
    }

    pub fn parse(s: &str) -> Result<Variant> {
        let (s, act) = match s.split_once("+act-") {
            Some((rest, a)) => (rest, Activations::parse(a)?),
            None => (s, Activations::F32),
        };
        let (plan, kv) = match s.split_once("+kv-") {
            Some((p, kv)) => (Plan::parse(p)?, KvPrecision::parse(kv)?),
            None => (Plan::parse(s)?, KvPrecision::F32),
        };
        Ok(Variant { plan, kv, act })
    }
}

impl Variant {
    /// The one name of this setting for people, on a model whose file stores `stored` (its own
    /// mixed precisions, if they are mixed) and where the plan's method changes something or
    /// not (`method_matters`): `As stored (INT4 layers, INT8 embeddings)`, `INT4 (GPTQ)`,
    /// `attention FP16 · feed-forward INT4 · embeddings FP16, KV cache int8`.
    pub fn name_in(&self, stored: Option<Plan>, method_matters: bool) -> String {
        let precisions = self.plan.with_method(Method::Rtn);
        let mut name = match stored.filter(|s| *s == precisions) {
            Some(s) => {
                let up = |p: Precision| p.name().to_uppercase();
                let detail = if s.attention == s.ffn {
                    format!("{} layers, {} embeddings", up(s.attention), up(s.embeddings))
                } else {
                    format!("attention {}, feed-forward {}, embeddings {}", up(s.attention), up(s.ffn), up(s.embeddings))
                };
                format!("{STORED} ({detail})")
            }
            None => precisions.to_string(),
        };
        if self.plan.method != Method::Rtn && method_matters {
            name = format!("{name} ({})", self.plan.method.name().to_uppercase());
        }
        if self.kv != KvPrecision::F32 {
            name = format!("{name}, KV cache {}", self.kv);
        }
        match self.act {
            Activations::F32 => name,
            a => format!("{name}, activations {a}"),
        }
    }

    /// [`Variant::name_in`] for tables and chart axes: `As stored`, `INT4 GPTQ`, `MIX a16 f4
    /// e16`, `FP16 KV8`.
    pub fn short_name_in(&self, stored: Option<Plan>, method_matters: bool) -> String {
        let precisions = self.plan.with_method(Method::Rtn);
        let mut name = if stored == Some(precisions) { STORED.to_string() } else { precisions.short() };
        if self.plan.method != Method::Rtn && method_matters {
            name = format!("{name} {}", self.plan.method.name().to_uppercase());
        }
        name = match self.kv {
            KvPrecision::F32 => name,
            KvPrecision::F16 => format!("{name} KV16"),
            kv if kv.rotated() => format!("{name} KV{} rot", kv.bits()),
            kv => format!("{name} KV{}", kv.bits()),
        };
        match self.act {
            Activations::F32 => name,
            Activations::Int8 => format!("{name} A8"),
        }
    }
}

impl From<Plan> for Variant {
    fn from(plan: Plan) -> Variant {
        Variant::new(plan, KvPrecision::F32)
    }
}

impl From<Precision> for Variant {
    fn from(p: Precision) -> Variant {
        Plan::uniform(p).into()
    }
}

/// `INT4`, `FP16, KV cache int8` or `INT4, activations int8`.
impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.plan)?;
        if self.kv != KvPrecision::F32 {
            write!(f, ", KV cache {}", self.kv)?;
        }
        if self.act != Activations::F32 {
            write!(f, ", activations {}", self.act)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_round_trips_and_groups_cover_every_matrix() {
        let mixed = Plan::uniform(Precision::Fp16).with(Group::Ffn, Precision::Int4);
        assert_eq!(mixed.code(), "fp16-int4-fp16");
        assert_eq!(Plan::parse(&mixed.code()).unwrap(), mixed);
        assert_eq!(Plan::parse("int8").unwrap(), Plan::uniform(Precision::Int8));
        assert!(Plan::parse("fp16-int4").is_err());
        assert_eq!(mixed.precisions(), vec![Precision::Fp16, Precision::Int4]);
        assert_eq!(mixed.of(Mat::Down(3)), Precision::Int4);
        assert_eq!(mixed.of(Mat::V(0)), Precision::Fp16);
        assert_eq!(mixed.of(Mat::Embedding), Precision::Fp16);
        assert_eq!(mixed.to_string(), "attention FP16 · feed-forward INT4 · embeddings FP16");
        assert_eq!(Plan::uniform(Precision::Int4).to_string(), "INT4");
        let v = Variant::new(mixed, KvPrecision::Int8);
        assert_eq!(v.code(), "fp16-int4-fp16+kv-int8");
        assert_eq!(Variant::parse(&v.code()).unwrap(), v);
        assert_eq!(Variant::parse("int4").unwrap(), Variant::from(Precision::Int4));
        assert!(Variant::parse("int4+kv-int2").is_err());
        let r = Variant::parse("int4+kv-int4-rot").unwrap();
        assert_eq!((r.kv, r.code()), (KvPrecision::Int4Rot, "int4+kv-int4-rot".to_string()));
        // The activations' format last: with or without a KV format before it.
        let a = Variant::parse("int4+kv-int8+act-int8").unwrap();
        assert_eq!((a.kv, a.act, a.code()), (KvPrecision::Int8, Activations::Int8, "int4+kv-int8+act-int8".to_string()));
        assert_eq!(Variant::parse("int8+act-int8").unwrap().code(), "int8+act-int8");
        assert_eq!(Variant::parse("int8+act-f32").unwrap(), Variant::from(Precision::Int8));
        assert!(Variant::parse("int4+act-int4").is_err());
        assert_eq!(a.to_string(), "INT4, KV cache int8, activations int8");
        assert_eq!(Variant::new(Precision::Fp16, KvPrecision::Int3Rot).short_name_in(None, true), "FP16 KV3 rot");
        // One name per setting: the file's own mix is "As stored", a method only where it matters.
        let stored = Plan::uniform(Precision::Int4).with(Group::Embeddings, Precision::Int8);
        let at = |p: Plan| Variant::from(p);
        assert_eq!(at(stored).name_in(Some(stored), true), "As stored (INT4 layers, INT8 embeddings)");
        assert_eq!(at(stored).short_name_in(Some(stored), true), "As stored");
        assert_eq!(at(stored.with_method(Method::Imatrix)).name_in(Some(stored), false), "As stored (INT4 layers, INT8 embeddings)");
        assert_eq!(at(stored.with_method(Method::Gptq)).short_name_in(Some(stored), true), "As stored GPTQ");
        assert_eq!(at(stored).name_in(None, true), "attention INT4 · feed-forward INT4 · embeddings INT8");
        assert_eq!(at(stored).short_name_in(None, true), "MIX a4 f4 e8");
        assert_eq!(Variant::new(Precision::Fp16, KvPrecision::Int8).short_name_in(Some(stored), true), "FP16 KV8");
        assert_eq!(at(Plan::uniform(Precision::Int4).with_method(Method::Gptq)).name_in(Some(stored), true), "INT4 (GPTQ)");
        let g = Variant::new(Plan::uniform(Precision::Int4).with_method(Method::Gptq), KvPrecision::Int8);
        assert_eq!(g.code(), "int4@gptq+kv-int8");
        assert_eq!(Variant::parse(&g.code()).unwrap(), g);
        assert_eq!(Plan::parse("fp16-int4-int8@imatrix").unwrap().code(), "fp16-int4-int8@imatrix");
        assert_eq!(g.plan.to_string(), "INT4 (GPTQ)");
        assert!(Plan::parse("int4@awq2").is_err());
        // Plans saved before methods existed read back as round-to-nearest.
        let old: Plan = serde_json::from_str(r#"{"attention":"int4","ffn":"int4","embeddings":"int8"}"#).unwrap();
        assert_eq!(old.method, Method::Rtn);
        assert_eq!(serde_json::to_string(&old).unwrap(), r#"{"attention":"int4","ffn":"int4","embeddings":"int8"}"#);
        let gptq = old.with_method(Method::Gptq);
        assert_eq!(serde_json::from_str::<Plan>(&serde_json::to_string(&gptq).unwrap()).unwrap(), gptq);
    }
}
