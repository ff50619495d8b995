//! Safetensors, the format model authors publish full-precision weights in (Hugging Face's
//! `model.safetensors`, or shards listed by `model.safetensors.index.json`): an 8-byte
//! little-endian header length, a JSON header naming each tensor's dtype, shape and byte range,
//! then the bytes. Read the way [`crate::gguf`] reads GGUF: one validating pass, then zero-copy
//! views. Every length, offset, dtype and shape is checked before anything is sliced, so a bad file
//! is a named [`Error::Safetensors`], never a panic:
//! - the header length fits the file and is at most [`MAX_HEADER`];
//! - the header is a JSON object with no name twice; `__metadata__` is a map of strings;
//! - each tensor's dtype is F32, F16 or BF16 (what published checkpoints hold), its shape's
//!   elements times the dtype's size are exactly its byte range, and the ranges lie inside the
//!   data, overlap nowhere and leave no hole (as the format's own validation requires).

use std::collections::BTreeMap;
use std::fmt;

use half::{bf16, f16};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use crate::{Error, Result};

/// The largest header read: 100 MB, the limit of Hugging Face's own reader.
pub const MAX_HEADER: u64 = 100_000_000;

/// The element types lowbit reads from a checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    F32,
    F16,
    BF16,
}

impl Dtype {
    pub fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F16 | Dtype::BF16 => 2,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "F32",
            Dtype::F16 => "F16",
            Dtype::BF16 => "BF16",
        }
    }

    fn parse(s: &str) -> Option<Dtype> {
        Some(match s {
            "F32" => Dtype::F32,
            "F16" => Dtype::F16,
            "BF16" => Dtype::BF16,
            _ => return None,
        })
    }
}

/// One tensor: its name, dtype, shape (outermost first, as PyTorch writes it) and bytes.
#[derive(Clone, Debug)]
pub struct TensorView<'a> {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub data: &'a [u8],
}

impl TensorView<'_> {
    /// How many values it holds (its bytes over the dtype's size: `parse` checked that the shape's
    /// product is exactly that, so nothing here can overflow).
    pub fn elements(&self) -> usize {
        self.data.len() / self.dtype.size()
    }

    /// The values as f32 (BF16 and F16 widened exactly).
    pub fn to_f32(&self) -> Vec<f32> {
        match self.dtype {
            Dtype::F32 => self.data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            Dtype::F16 => self.data.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            Dtype::BF16 => self.data.chunks_exact(2).map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        }
    }
}

/// A parsed safetensors file: its tensors in file order and its `__metadata__`.
#[derive(Clone, Debug)]
pub struct SafeTensors<'a> {
    pub tensors: Vec<TensorView<'a>>,
    pub metadata: BTreeMap<String, String>,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::Safetensors(msg.into())
}

impl<'a> SafeTensors<'a> {
    /// Validate `bytes` as a safetensors file (see the module docs) and view its tensors.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let len = bytes.len() as u64;
        let head = bytes.get(..8).ok_or_else(|| bad(format!("the file has {len} bytes: too short for the 8-byte header length")))?;
        let n = u64::from_le_bytes(head.try_into().expect("8 bytes"));
        if n > MAX_HEADER {
            return Err(bad(format!("the header claims {n} bytes, more than the {MAX_HEADER} a header may have")));
        }
        if 8 + n > len {
            return Err(bad(format!("the header claims {n} bytes but the file has {} after the length", len - 8)));
        }
        let header = std::str::from_utf8(&bytes[8..8 + n as usize]).map_err(|e| bad(format!("the header is not UTF-8 text ({e})")))?;
        let data = &bytes[8 + n as usize..];
        let Entries(entries) = serde_json::from_str(header.trim_end()).map_err(|e| bad(format!("the header is not a JSON object of tensors: {e}")))?;
        let mut metadata = BTreeMap::new();
        let mut tensors: Vec<(u64, u64, TensorView<'a>)> = Vec::new();
        for (name, v) in entries {
            if name == "__metadata__" {
                let Value::Object(m) = v else { return Err(bad("__metadata__ is not a map")) };
                for (k, v) in m {
                    let Value::String(s) = v else { return Err(bad(format!("__metadata__.{k} is not a string"))) };
                    metadata.insert(k, s);
                }
                continue;
            }
            let (dtype, shape, begin, end) = tensor_entry(&name, &v)?;
            if end > data.len() as u64 {
                return Err(bad(format!("tensor {name} ends at byte {end} of the data, which has {}", data.len())));
            }
            let elements = shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d)).filter(|e| e.checked_mul(dtype.size() as u64).is_some());
            let need = elements.map(|e| e * dtype.size() as u64);
            if need != Some(end - begin) {
                return Err(bad(format!(
                    "tensor {name} has shape {shape:?} of {}, which needs {} bytes, but its range holds {}",
                    dtype.name(),
                    need.map_or("more than can be counted".to_string(), |b| b.to_string()),
                    end - begin
                )));
            }
            let shape = shape.iter().map(|&d| usize::try_from(d).map_err(|_| bad(format!("tensor {name}'s shape {shape:?} is too large")))).collect::<Result<_>>()?;
            let view = TensorView { name, dtype, shape, data: &data[begin as usize..end as usize] };
            tensors.push((begin, end, view));
        }
        tensors.sort_by_key(|t| (t.0, t.1));
        let mut at = 0u64;
        let mut before = "the start of the data";
        for (begin, end, t) in &tensors {
            if *begin < at {
                return Err(bad(format!("tensors {before} and {} share bytes", t.name)));
            }
            if *begin > at {
                return Err(bad(format!("bytes {at}..{begin} of the data (after {before}) belong to no tensor")));
            }
            at = *end;
            before = &t.name;
        }
        if at != data.len() as u64 {
            return Err(bad(format!("bytes {at}..{} of the data (after {before}) belong to no tensor", data.len())));
        }
        Ok(SafeTensors { tensors: tensors.into_iter().map(|t| t.2).collect(), metadata })
    }

    pub fn get(&self, name: &str) -> Result<&TensorView<'a>> {
        self.tensors.iter().find(|t| t.name == name).ok_or_else(|| Error::TensorNotFound(name.to_string()))
    }
}

/// One header entry's dtype, shape and byte range, checked for form.
fn tensor_entry(name: &str, v: &Value) -> Result<(Dtype, Vec<u64>, u64, u64)> {
    let Value::Object(m) = v else { return Err(bad(format!("tensor {name}'s entry is not an object"))) };
    let dtype = m.get("dtype").and_then(Value::as_str).ok_or_else(|| bad(format!("tensor {name} has no dtype")))?;
    let dtype = Dtype::parse(dtype).ok_or_else(|| bad(format!("tensor {name} is {dtype}: lowbit reads F32, F16 and BF16 checkpoints")))?;
    let numbers = |key: &str| -> Result<Vec<u64>> {
        let arr = m.get(key).and_then(Value::as_array).ok_or_else(|| bad(format!("tensor {name} has no {key} list")))?;
        arr.iter().map(|x| x.as_u64().ok_or_else(|| bad(format!("tensor {name}'s {key} holds {x}, not a whole number")))).collect()
    };
    let shape = numbers("shape")?;
    let offsets = numbers("data_offsets")?;
    let [begin, end] = offsets[..] else { return Err(bad(format!("tensor {name}'s data_offsets has {} numbers, not 2", offsets.len()))) };
    if begin > end {
        return Err(bad(format!("tensor {name}'s data_offsets run backwards ({begin} > {end})")));
    }
    Ok((dtype, shape, begin, end))
}

/// A JSON object's entries in order, refusing a name that appears twice (serde_json's own maps
/// keep the last silently, and which tensor a duplicated name means would be a guess).
struct Entries(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Entries, A::Error> {
                let mut out: Vec<(String, Value)> = Vec::new();
                let mut seen = std::collections::HashSet::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    if !seen.insert(k.clone()) {
                        return Err(serde::de::Error::custom(format!("{k} appears twice")));
                    }
                    out.push((k, v));
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// A sharded checkpoint's `model.safetensors.index.json`: which shard file holds each tensor.
/// Shard names must be plain file names beside the index (no directories, no `..`).
pub fn shard_index(text: &str) -> Result<BTreeMap<String, String>> {
    let v: Value = serde_json::from_str(text).map_err(|e| bad(format!("the shard index is not JSON: {e}")))?;
    let map = v.get("weight_map").and_then(Value::as_object).ok_or_else(|| bad("the shard index has no weight_map"))?;
    let mut out = BTreeMap::new();
    for (tensor, file) in map {
        let file = file.as_str().ok_or_else(|| bad(format!("the shard index names no file for {tensor}")))?;
        if file.is_empty() || file.contains(['/', '\\']) || file == ".." || file == "." {
            return Err(bad(format!("the shard index puts {tensor} in {file:?}, which is not a file beside it")));
        }
        out.insert(tensor.clone(), file.to_string());
    }
    Ok(out)
}

/// Write tensors (name, dtype, shape, values) as a safetensors file, in the order given: what
/// the tests use to make checkpoints, and the shape a converter's output takes.
pub fn write(tensors: &[(&str, Dtype, &[usize], &[f32])], metadata: &BTreeMap<String, String>) -> Result<Vec<u8>> {
    let mut header = serde_json::Map::new();
    if !metadata.is_empty() {
        header.insert("__metadata__".into(), serde_json::to_value(metadata).map_err(|e| bad(e.to_string()))?);
    }
    let mut data = Vec::new();
    for &(name, dtype, shape, values) in tensors {
        if shape.iter().product::<usize>() != values.len() {
            return Err(Error::Shape(format!("{name}: shape {shape:?} but {} values", values.len())));
        }
        let begin = data.len();
        for &x in values {
            match dtype {
                Dtype::F32 => data.extend_from_slice(&x.to_le_bytes()),
                Dtype::F16 => data.extend_from_slice(&f16::from_f32(x).to_le_bytes()),
                Dtype::BF16 => data.extend_from_slice(&bf16::from_f32(x).to_le_bytes()),
            }
        }
        header.insert(name.into(), serde_json::json!({ "dtype": dtype.name(), "shape": shape, "data_offsets": [begin, data.len()] }));
    }
    let mut text = serde_json::to_string(&header).map_err(|e| bad(e.to_string()))?;
    // The data starts 8-byte aligned, as Hugging Face's writer pads it.
    while (8 + text.len()) % 8 != 0 {
        text.push(' ');
    }
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&data);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let meta = BTreeMap::from([("format".to_string(), "pt".to_string())]);
        let w: Vec<f32> = (0..6).map(|i| i as f32 * 0.5 - 1.0).collect();
        write(&[("model.norm.weight", Dtype::F32, &[3], &[1.0, 2.0, 3.0]), ("lm_head.weight", Dtype::BF16, &[2, 3], &w), ("bias", Dtype::F16, &[2], &[0.25, -4.0])], &meta).unwrap()
    }

    /// The sample with its header replaced (the data kept).
    fn with_header(header: &str) -> Vec<u8> {
        let s = sample();
        let n = u64::from_le_bytes(s[..8].try_into().unwrap()) as usize;
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(&s[8 + n..]);
        out
    }

    fn err(bytes: &[u8]) -> String {
        let e = SafeTensors::parse(bytes).unwrap_err();
        assert!(e.is_bad_file(), "{e}");
        e.to_string()
    }

    #[test]
    fn a_written_file_reads_back_exactly() {
        let bytes = sample();
        let st = SafeTensors::parse(&bytes).unwrap();
        assert_eq!(st.metadata["format"], "pt");
        assert_eq!(st.tensors.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["model.norm.weight", "lm_head.weight", "bias"]);
        let head = st.get("lm_head.weight").unwrap();
        assert_eq!((head.dtype, head.shape.clone(), head.elements()), (Dtype::BF16, vec![2, 3], 6));
        // Halves and small integers are exact in BF16 and F16.
        assert_eq!(head.to_f32(), vec![-1.0, -0.5, 0.0, 0.5, 1.0, 1.5]);
        assert_eq!(st.get("bias").unwrap().to_f32(), vec![0.25, -4.0]);
        assert_eq!(st.get("model.norm.weight").unwrap().to_f32(), vec![1.0, 2.0, 3.0]);
        assert!(matches!(st.get("nope"), Err(Error::TensorNotFound(_))));
        // The views are the file's own bytes.
        let at = bytes.len() - 4;
        assert!(std::ptr::eq(st.get("bias").unwrap().data.as_ptr(), bytes[at..].as_ptr()));
    }

    #[test]
    fn every_bad_length_offset_dtype_and_shape_is_named() {
        let ok = sample();
        // Too short for the length, a length past the end or over the limit.
        assert!(err(&ok[..5]).contains("too short"));
        assert!(err(&ok[..20]).contains("the header claims"));
        let mut huge = ok.clone();
        huge[..8].copy_from_slice(&(MAX_HEADER + 1).to_le_bytes());
        assert!(err(&huge).contains("more than the"));
        // Not text, not JSON, not an object.
        let mut not_utf8 = ok.clone();
        not_utf8[9] = 0xff;
        assert!(err(&not_utf8).contains("UTF-8"));
        assert!(err(&with_header("[1, 2]")).contains("not a JSON object"));
        let t = |entries: &str| with_header(&format!("{{{entries}}}"));
        let norm = r#""model.norm.weight":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}"#;
        let head = r#""lm_head.weight":{"dtype":"BF16","shape":[2,3],"data_offsets":[12,24]}"#;
        let bias = r#""bias":{"dtype":"F16","shape":[2],"data_offsets":[24,28]}"#;
        assert!(SafeTensors::parse(&t(&format!("{norm},{head},{bias}"))).is_ok());
        // A name twice.
        assert!(err(&t(&format!("{norm},{head},{bias},{bias}"))).contains("bias appears twice"));
        // A dtype lowbit does not read, a missing or malformed field.
        assert!(err(&t(&format!("{},{head},{bias}", norm.replace("F32", "I8")))).contains("is I8"));
        assert!(err(&t(&format!("{},{head},{bias}", norm.replace(r#""dtype":"F32","#, "")))).contains("no dtype"));
        assert!(err(&t(&format!("{},{head},{bias}", norm.replace("[3]", "[-3]")))).contains("not a whole number"));
        assert!(err(&t(&format!("{},{head},{bias}", norm.replace("[0,12]", "[0,6,12]")))).contains("not 2"));
        assert!(err(&t(&format!("{},{head},{bias}", norm.replace("[0,12]", "[12,0]")))).contains("backwards"));
        // A shape that does not fill its range, or overflows counting.
        assert!(err(&t(&format!("{},{head},{bias}", norm.replace("[3]", "[4]")))).contains("needs 16 bytes"));
        assert!(err(&t(&format!("{},{head},{bias}", norm.replace("[3]", "[4294967296,4294967296,4]")))).contains("more than can be counted"));
        // Past the end, overlapping, a hole, bytes left over.
        assert!(err(&t(&format!("{norm},{head},{}", bias.replace("[24,28]", "[26,30]")))).contains("ends at byte 30"));
        assert!(err(&t(&format!("{norm},{},{bias}", head.replace("[12,24]", "[10,22]")))).contains("share bytes"));
        assert!(err(&t(&format!("{},{head},{bias}", norm.replace(r#""shape":[3],"data_offsets":[0,12]"#, r#""shape":[2],"data_offsets":[4,12]"#)))).contains("belong to no tensor"));
        assert!(err(&t(&format!("{norm},{head}"))).contains("bytes 24..28"));
        // Metadata must be strings.
        assert!(err(&t(&format!(r#""__metadata__":{{"format":3}},{norm},{head},{bias}"#))).contains("not a string"));
    }

    #[test]
    fn a_shard_index_names_files_beside_it() {
        let ok = r#"{"metadata":{"total_size":28},"weight_map":{"a.weight":"model-00001-of-00002.safetensors","b.weight":"model-00002-of-00002.safetensors"}}"#;
        let m = shard_index(ok).unwrap();
        assert_eq!(m["b.weight"], "model-00002-of-00002.safetensors");
        for bad_file in ["../secret", "/etc/passwd", "sub/dir.safetensors", ""] {
            let text = format!(r#"{{"weight_map":{{"a.weight":"{bad_file}"}}}}"#);
            let e = shard_index(&text).unwrap_err().to_string();
            assert!(e.contains("not a file beside it"), "{e}");
        }
        assert!(shard_index("{}").unwrap_err().to_string().contains("no weight_map"));
        assert!(shard_index("not json").is_err());
    }

    #[test]
    fn random_bytes_and_mutations_never_panic() {
        let ok = sample();
        let mut rng = crate::util::Rng::new(11);
        for i in 0..4000 {
            let mut b = ok.clone();
            for _ in 0..1 + i % 4 {
                let at = (rng.next_u32() as usize) % b.len();
                b[at] = rng.next_u32() as u8;
            }
            if i % 7 == 0 {
                b.truncate((rng.next_u32() as usize) % (ok.len() + 1));
            }
            let _ = SafeTensors::parse(&b);
        }
    }
}
