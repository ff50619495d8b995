//! GGUF reader (versions 2 and 3), zero-copy over a byte slice (a file read into memory, or the
//! browser's ArrayBuffer). Every count, length and offset is checked against the slice before use.
//!
//! Layout (little-endian): magic `GGUF`, version u32, tensor count u64, metadata count u64,
//! metadata key/value pairs, tensor infos, padding to `general.alignment` (default 32), tensor data.

use std::collections::BTreeMap;

use half::f16;

use crate::{Error, Result};

const MAGIC: u32 = 0x4655_4747; // "GGUF" little-endian

/// Arrays may hold arrays, which may not hold arrays.
const MAX_NESTING: u32 = 2;

/// A metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    Array(Array),
}

/// A value as an error message quotes it: numbers as numbers, strings in quotes, arrays by size.
impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::U8(v) => write!(f, "{v}"),
            Value::I8(v) => write!(f, "{v}"),
            Value::U16(v) => write!(f, "{v}"),
            Value::I16(v) => write!(f, "{v}"),
            Value::U32(v) => write!(f, "{v}"),
            Value::I32(v) => write!(f, "{v}"),
            Value::U64(v) => write!(f, "{v}"),
            Value::I64(v) => write!(f, "{v}"),
            Value::F32(v) => write!(f, "{v}"),
            Value::F64(v) => write!(f, "{v}"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::String(v) => write!(f, "the string {v:?}"),
            Value::Array(a) => write!(f, "an array of {} values", a.len()),
        }
    }
}

/// A metadata array, one vector of its element type: numbers take in memory what they take on
/// disk (no enum per element), so metadata can never grow much past the file that holds it.
#[derive(Clone, Debug, PartialEq)]
pub enum Array {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    Bool(Vec<bool>),
    String(Vec<String>),
    Array(Vec<Array>),
}

impl Array {
    pub fn len(&self) -> usize {
        match self {
            Array::U8(v) => v.len(),
            Array::I8(v) => v.len(),
            Array::U16(v) => v.len(),
            Array::I16(v) => v.len(),
            Array::U32(v) => v.len(),
            Array::I32(v) => v.len(),
            Array::U64(v) => v.len(),
            Array::I64(v) => v.len(),
            Array::F32(v) => v.len(),
            Array::F64(v) => v.len(),
            Array::Bool(v) => v.len(),
            Array::String(v) => v.len(),
            Array::Array(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements when they are strings.
    pub fn strings(&self) -> Option<&[String]> {
        match self {
            Array::String(v) => Some(v),
            _ => None,
        }
    }

    /// The elements as f64 when they are numbers (an empty array of any type is no numbers).
    pub fn numbers(&self) -> Option<Vec<f64>> {
        fn f<T: Copy + Into<f64>>(v: &[T]) -> Option<Vec<f64>> {
            Some(v.iter().map(|&x| x.into()).collect())
        }
        match self {
            Array::U8(v) => f(v),
            Array::I8(v) => f(v),
            Array::U16(v) => f(v),
            Array::I16(v) => f(v),
            Array::U32(v) => f(v),
            Array::I32(v) => f(v),
            Array::U64(v) => Some(v.iter().map(|&x| x as f64).collect()),
            Array::I64(v) => Some(v.iter().map(|&x| x as f64).collect()),
            Array::F32(v) => f(v),
            Array::F64(v) => f(v),
            Array::Bool(_) | Array::String(_) | Array::Array(_) if self.is_empty() => Some(vec![]),
            Array::Bool(_) | Array::String(_) | Array::Array(_) => None,
        }
    }

    /// The GGUF value type of the elements.
    fn element_type(&self) -> u32 {
        match self {
            Array::U8(_) => 0,
            Array::I8(_) => 1,
            Array::U16(_) => 2,
            Array::I16(_) => 3,
            Array::U32(_) => 4,
            Array::I32(_) => 5,
            Array::F32(_) => 6,
            Array::Bool(_) => 7,
            Array::String(_) => 8,
            Array::Array(_) => 9,
            Array::U64(_) => 10,
            Array::I64(_) => 11,
            Array::F64(_) => 12,
        }
    }
}

impl Value {
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v as u64),
            Value::U16(v) => Some(v as u64),
            Value::U32(v) => Some(v as u64),
            Value::U64(v) => Some(v),
            Value::I8(v) if v >= 0 => Some(v as u64),
            Value::I16(v) if v >= 0 => Some(v as u64),
            Value::I32(v) if v >= 0 => Some(v as u64),
            Value::I64(v) if v >= 0 => Some(v as u64),
            _ => None,
        }
    }
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v as f64),
            Value::F64(v) => Some(v),
            _ => self.as_u64().map(|v| v as f64),
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_array(&self) -> Option<&Array> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// ggml tensor types lowbit knows by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q8_1,
    Q2K,
    Q3K,
    Q4K,
    Q5K,
    Q6K,
    Q8K,
    IQ4NL,
    BF16,
}

impl GgmlType {
    pub fn from_u32(t: u32) -> Result<Self> {
        Ok(match t {
            0 => GgmlType::F32,
            1 => GgmlType::F16,
            2 => GgmlType::Q4_0,
            3 => GgmlType::Q4_1,
            6 => GgmlType::Q5_0,
            7 => GgmlType::Q5_1,
            8 => GgmlType::Q8_0,
            9 => GgmlType::Q8_1,
            10 => GgmlType::Q2K,
            11 => GgmlType::Q3K,
            12 => GgmlType::Q4K,
            13 => GgmlType::Q5K,
            14 => GgmlType::Q6K,
            15 => GgmlType::Q8K,
            20 => GgmlType::IQ4NL,
            30 => GgmlType::BF16,
            _ => return Err(Error::UnknownTensorType(t)),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            GgmlType::F32 => "F32",
            GgmlType::F16 => "F16",
            GgmlType::Q4_0 => "Q4_0",
            GgmlType::Q4_1 => "Q4_1",
            GgmlType::Q5_0 => "Q5_0",
            GgmlType::Q5_1 => "Q5_1",
            GgmlType::Q8_0 => "Q8_0",
            GgmlType::Q8_1 => "Q8_1",
            GgmlType::Q2K => "Q2_K",
            GgmlType::Q3K => "Q3_K",
            GgmlType::Q4K => "Q4_K",
            GgmlType::Q5K => "Q5_K",
            GgmlType::Q6K => "Q6_K",
            GgmlType::Q8K => "Q8_K",
            GgmlType::IQ4NL => "IQ4_NL",
            GgmlType::BF16 => "BF16",
        }
    }

    /// (weights per block, bytes per block), as ggml-common.h defines them.
    pub fn block(self) -> (usize, usize) {
        crate::ggml::block_size(self)
    }
}

/// One tensor's description; `dims[0]` is the innermost (row length), as in ggml.
#[derive(Clone, Debug)]
pub struct TensorInfo {
    pub name: String,
    pub dims: Vec<u64>,
    pub ggml_type: GgmlType,
    /// Offset of the data from the start of the file.
    pub offset: u64,
    pub n_bytes: u64,
}

impl TensorInfo {
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }
    /// This tensor's bytes in `file` (the bytes it was parsed from), checked.
    pub fn data<'b>(&self, file: &'b [u8]) -> Result<&'b [u8]> {
        let end = self.offset.checked_add(self.n_bytes).ok_or_else(|| Error::Malformed(format!("{}: bad offset", self.name)))?;
        file.get(self.offset as usize..end as usize)
            .ok_or(Error::Truncated { offset: self.offset, needed: self.n_bytes, len: file.len() as u64 })
    }

    /// (rows, cols) of the tensor viewed as a matrix of rows of `dims[0]`.
    pub fn matrix_shape(&self) -> (usize, usize) {
        let cols = self.dims.first().copied().unwrap_or(1) as usize;
        (self.n_elements() as usize / cols.max(1), cols)
    }
}

/// A parsed GGUF file borrowing its bytes.
pub struct Gguf<'a> {
    pub version: u32,
    pub metadata: BTreeMap<String, Value>,
    pub tensors: Vec<TensorInfo>,
    pub alignment: u64,
    pub data_offset: u64,
    bytes: &'a [u8],
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: u64) -> Result<&'a [u8]> {
        let len = self.b.len() as u64;
        let end = (self.pos as u64).checked_add(n).filter(|&e| e <= len).ok_or(Error::Truncated {
            offset: self.pos as u64,
            needed: n,
            len,
        })?;
        let s = &self.b[self.pos..end as usize];
        self.pos = end as usize;
        Ok(s)
    }
    fn arr<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self.take(N as u64)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.arr()?))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.arr()?))
    }
    fn string(&mut self) -> Result<String> {
        let n = self.u64()?;
        let s = self.take(n)?;
        String::from_utf8(s.to_vec()).map_err(|_| Error::Malformed(format!("string at {} is not UTF-8", self.pos)))
    }
    /// A count of items each at least `min_item_bytes` long: reject counts the file cannot hold.
    fn count(&mut self, min_item_bytes: u64, what: &str) -> Result<u64> {
        let n = self.u64()?;
        let left = (self.b.len() - self.pos) as u64;
        if n.saturating_mul(min_item_bytes) > left {
            return Err(Error::Malformed(format!("{what} count {n} exceeds the file size")));
        }
        Ok(n)
    }
    /// `n` fixed-size items of `N` bytes each, decoded by `f` (n checked against the file first).
    fn items<const N: usize, T>(&mut self, n: u64, f: fn([u8; N]) -> T) -> Result<Vec<T>> {
        let b = self.take(n.saturating_mul(N as u64))?;
        Ok(b.chunks_exact(N).map(|c| f(c.try_into().unwrap_or([0; N]))).collect())
    }

    /// An array value (after its type tag): element type, count, elements.
    fn array(&mut self, depth: u32) -> Result<Array> {
        if depth >= MAX_NESTING {
            return Err(Error::Malformed(format!("metadata arrays nested deeper than {MAX_NESTING}")));
        }
        let et = self.u32()?;
        // The smallest item of each type, to reject counts the file cannot hold before reading.
        let min = match et {
            0 | 1 | 7 => 1,
            2 | 3 => 2,
            4 | 5 | 6 => 4,
            8 | 10 | 11 | 12 => 8,
            9 => 12,
            _ => return Err(Error::UnknownValueType(et)),
        };
        let n = self.count(min, "array")?;
        Ok(match et {
            0 => Array::U8(self.take(n)?.to_vec()),
            1 => Array::I8(self.items(n, |[b]| b as i8)?),
            2 => Array::U16(self.items(n, u16::from_le_bytes)?),
            3 => Array::I16(self.items(n, i16::from_le_bytes)?),
            4 => Array::U32(self.items(n, u32::from_le_bytes)?),
            5 => Array::I32(self.items(n, i32::from_le_bytes)?),
            6 => Array::F32(self.items(n, f32::from_le_bytes)?),
            7 => Array::Bool(self.items(n, |[b]| b != 0)?),
            10 => Array::U64(self.items(n, u64::from_le_bytes)?),
            11 => Array::I64(self.items(n, i64::from_le_bytes)?),
            12 => Array::F64(self.items(n, f64::from_le_bytes)?),
            8 => Array::String((0..n).map(|_| self.string()).collect::<Result<_>>()?),
            // Each inner array: its element type, count and elements (no type tag of its own).
            _ => Array::Array((0..n).map(|_| self.array(depth + 1)).collect::<Result<_>>()?),
        })
    }

    fn value(&mut self, t: u32) -> Result<Value> {
        Ok(match t {
            0 => Value::U8(self.arr::<1>()?[0]),
            1 => Value::I8(self.arr::<1>()?[0] as i8),
            2 => Value::U16(u16::from_le_bytes(self.arr()?)),
            3 => Value::I16(i16::from_le_bytes(self.arr()?)),
            4 => Value::U32(self.u32()?),
            5 => Value::I32(i32::from_le_bytes(self.arr()?)),
            6 => Value::F32(f32::from_le_bytes(self.arr()?)),
            7 => Value::Bool(self.arr::<1>()?[0] != 0),
            8 => Value::String(self.string()?),
            9 => Value::Array(self.array(0)?),
            10 => Value::U64(self.u64()?),
            11 => Value::I64(i64::from_le_bytes(self.arr()?)),
            12 => Value::F64(f64::from_le_bytes(self.arr()?)),
            _ => return Err(Error::UnknownValueType(t)),
        })
    }
}

impl<'a> Gguf<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let mut r = Reader { b: bytes, pos: 0 };
        let magic = r.u32()?;
        if magic != MAGIC {
            return Err(Error::BadMagic(magic));
        }
        let version = r.u32()?;
        if !(2..=3).contains(&version) {
            return Err(Error::UnsupportedVersion(version));
        }
        let n_tensors = r.count(24, "tensor")?;
        let n_kv = r.count(12, "metadata")?;
        let mut metadata = BTreeMap::new();
        for _ in 0..n_kv {
            let key = r.string()?;
            let t = r.u32()?;
            let v = r.value(t)?;
            if metadata.contains_key(&key) {
                return Err(Error::DuplicateKey(key));
            }
            metadata.insert(key, v);
        }
        let alignment = match metadata.get("general.alignment") {
            None => 32,
            Some(v) => v
                .as_u64()
                .filter(|a| a.is_power_of_two())
                .ok_or_else(|| Error::BadAlignment(v.to_string()))?,
        };
        let mut infos = Vec::with_capacity(n_tensors as usize);
        for _ in 0..n_tensors {
            let name = r.string()?;
            let n_dims = r.u32()?;
            if n_dims == 0 || n_dims > 4 {
                return Err(Error::Malformed(format!("tensor {name} has {n_dims} dimensions")));
            }
            let dims = (0..n_dims).map(|_| r.u64()).collect::<Result<Vec<_>>>()?;
            if dims.contains(&0) {
                return Err(Error::BadDimensions { tensor: name, dims });
            }
            let ggml_type = GgmlType::from_u32(r.u32()?)?;
            let offset = r.u64()?;
            infos.push((name, dims, ggml_type, offset));
        }
        let data_offset = (r.pos as u64)
            .div_ceil(alignment)
            .checked_mul(alignment)
            .ok_or_else(|| Error::Malformed(format!("general.alignment {alignment} is too large")))?;
        let len = bytes.len() as u64;
        let mut tensors: Vec<TensorInfo> = Vec::with_capacity(infos.len());
        let mut names = std::collections::HashSet::new();
        for (name, dims, ggml_type, rel) in infos {
            if !names.insert(name.clone()) {
                return Err(Error::DuplicateTensor(name));
            }
            if rel % alignment != 0 {
                return Err(Error::Misaligned { tensor: name, offset: rel, alignment });
            }
            let Some(n) = dims.iter().try_fold(1u64, |a, &d| a.checked_mul(d)) else {
                return Err(Error::BadDimensions { tensor: name, dims });
            };
            let (bw, bb) = ggml_type.block();
            if dims[0] % bw as u64 != 0 {
                return Err(Error::Malformed(format!(
                    "tensor {name}: row of {} is not a multiple of the {} block ({bw})",
                    dims[0],
                    ggml_type.name()
                )));
            }
            let n_bytes = (n / bw as u64)
                .checked_mul(bb as u64)
                .ok_or_else(|| Error::Malformed(format!("tensor {name}: byte size overflows")))?;
            let offset = data_offset
                .checked_add(rel)
                .filter(|o| o.checked_add(n_bytes).is_some_and(|e| e <= len))
                .ok_or(Error::Truncated { offset: data_offset.saturating_add(rel), needed: n_bytes, len })?;
            tensors.push(TensorInfo { name, dims, ggml_type, offset, n_bytes });
        }
        // No two tensors share a byte.
        let mut spans: Vec<&TensorInfo> = tensors.iter().collect();
        spans.sort_by_key(|t| t.offset);
        if let Some(w) = spans.windows(2).find(|w| w[0].offset + w[0].n_bytes > w[1].offset) {
            return Err(Error::OverlappingTensors(w[0].name.clone(), w[1].name.clone()));
        }
        Ok(Gguf { version, metadata, tensors, alignment, data_offset, bytes })
    }

    pub fn tensor(&self, name: &str) -> Result<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name).ok_or_else(|| Error::TensorNotFound(name.to_string()))
    }

    /// The raw bytes of a tensor (bounds were checked in [`Self::parse`]).
    pub fn tensor_data(&self, t: &TensorInfo) -> &'a [u8] {
        &self.bytes[t.offset as usize..(t.offset + t.n_bytes) as usize]
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.get(key)
    }

    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(Value::as_u64)
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    /// Rows `first..first+count` of a tensor, dequantized to f32.
    pub fn dequantize_rows(&self, t: &TensorInfo, first: usize, count: usize) -> Result<Vec<f32>> {
        let (rows, cols) = t.matrix_shape();
        if first + count > rows {
            return Err(Error::Shape(format!("rows {first}..{} of {} ({rows} rows)", first + count, t.name)));
        }
        let (bw, bb) = t.ggml_type.block();
        let row_bytes = cols / bw * bb;
        let data = self.tensor_data(t);
        dequantize(t.ggml_type, &data[first * row_bytes..(first + count) * row_bytes])
    }

    pub fn dequantize_tensor(&self, t: &TensorInfo) -> Result<Vec<f32>> {
        dequantize(t.ggml_type, self.tensor_data(t))
    }
}

/// Dequantize whole blocks of `t` to f32 (see [`crate::ggml`]).
pub fn dequantize(t: GgmlType, data: &[u8]) -> Result<Vec<f32>> {
    crate::ggml::dequantize(t, data)
}

/// A tensor to write: name, dims (innermost first), type and its raw bytes.
pub struct TensorOut<'b> {
    pub name: String,
    pub dims: Vec<u64>,
    pub ggml_type: GgmlType,
    pub data: &'b [u8],
}

fn value_type(v: &Value) -> u32 {
    match v {
        Value::U8(_) => 0,
        Value::I8(_) => 1,
        Value::U16(_) => 2,
        Value::I16(_) => 3,
        Value::U32(_) => 4,
        Value::I32(_) => 5,
        Value::F32(_) => 6,
        Value::Bool(_) => 7,
        Value::String(_) => 8,
        Value::Array(_) => 9,
        Value::U64(_) => 10,
        Value::I64(_) => 11,
        Value::F64(_) => 12,
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => out.push(*x),
        Value::I8(x) => out.push(*x as u8),
        Value::U16(x) => out.extend(x.to_le_bytes()),
        Value::I16(x) => out.extend(x.to_le_bytes()),
        Value::U32(x) => out.extend(x.to_le_bytes()),
        Value::I32(x) => out.extend(x.to_le_bytes()),
        Value::F32(x) => out.extend(x.to_le_bytes()),
        Value::Bool(x) => out.push(*x as u8),
        Value::String(s) => put_str(out, s),
        Value::Array(a) => put_array(out, a),
        Value::U64(x) => out.extend(x.to_le_bytes()),
        Value::I64(x) => out.extend(x.to_le_bytes()),
        Value::F64(x) => out.extend(x.to_le_bytes()),
    }
}

fn put_array(out: &mut Vec<u8>, a: &Array) {
    out.extend(a.element_type().to_le_bytes());
    out.extend((a.len() as u64).to_le_bytes());
    match a {
        Array::U8(v) => out.extend(v),
        Array::I8(v) => out.extend(v.iter().map(|&x| x as u8)),
        Array::U16(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        Array::I16(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        Array::U32(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        Array::I32(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        Array::U64(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        Array::I64(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        Array::F32(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        Array::F64(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        Array::Bool(v) => out.extend(v.iter().map(|&x| x as u8)),
        Array::String(v) => v.iter().for_each(|x| put_str(out, x)),
        Array::Array(v) => v.iter().for_each(|x| put_array(out, x)),
    }
}

fn ggml_type_id(t: GgmlType) -> u32 {
    (0..=30u32).find(|&i| GgmlType::from_u32(i).ok() == Some(t)).unwrap_or(0)
}

/// Serialize a GGUF v3 file. Arrays must hold one value type.
pub fn write(metadata: &[(String, Value)], tensors: &[TensorOut], alignment: u64) -> Vec<u8> {
    let align = |n: u64| n.div_ceil(alignment) * alignment;
    let mut out = Vec::new();
    out.extend(MAGIC.to_le_bytes());
    out.extend(3u32.to_le_bytes());
    out.extend((tensors.len() as u64).to_le_bytes());
    out.extend((metadata.len() as u64).to_le_bytes());
    for (k, v) in metadata {
        put_str(&mut out, k);
        out.extend(value_type(v).to_le_bytes());
        put_value(&mut out, v);
    }
    let mut offset = 0u64;
    for t in tensors {
        put_str(&mut out, &t.name);
        out.extend((t.dims.len() as u32).to_le_bytes());
        for d in &t.dims {
            out.extend(d.to_le_bytes());
        }
        out.extend(ggml_type_id(t.ggml_type).to_le_bytes());
        out.extend(offset.to_le_bytes());
        offset = align(offset + t.data.len() as u64);
    }
    out.resize(align(out.len() as u64) as usize, 0);
    // Reserved exactly: a model's bytes are most of the worker's memory.
    out.reserve_exact(offset as usize);
    for t in tensors {
        out.extend(t.data);
        out.resize(align(out.len() as u64) as usize, 0);
    }
    out
}

/// ggml's Q8_0 blocks of a `[rows, cols]` matrix: lowbit's INT8 block is bit-identical to
/// `block_q8_0` (f16 d, 32 × i8).
pub fn q8_0_bytes(values: &[f32], rows: usize, cols: usize) -> Result<Vec<u8>> {
    let q = crate::layout::QuantMatrix::quantize(values, rows, cols, crate::Precision::Int8)?;
    let crate::layout::Blocks::Int8(blocks) = q.blocks else { unreachable!("quantized to int8") };
    Ok(bytemuck::cast_slice(&blocks).to_vec())
}

/// ggml's Q4_0 blocks of a `[rows, cols]` matrix, as ggml's reference quantizer makes them
/// (`quantize_row_q4_0_ref`): `d` = the block's value of largest magnitude / −8, `q = min(15,
/// trunc(x/d + 8.5))`, weights j and j+16 in byte j. Symmetric blocks that lowbit's INT4 (scale
/// and min) keeps exactly only by copying them (`QuantMatrix::from_ggml`).
pub fn q4_0_bytes(values: &[f32], rows: usize, cols: usize) -> Result<Vec<u8>> {
    if values.len() != rows * cols || cols % 32 != 0 {
        return Err(Error::Shape(format!("q4_0: {} values as {rows} rows of {cols}", values.len())));
    }
    let mut out = Vec::with_capacity(values.len() / 32 * 18);
    for x in values.chunks_exact(32) {
        let max = x.iter().fold(0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
        let d = max / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend(f16::from_f32(d).to_bits().to_le_bytes());
        let q = |v: f32| ((v * id + 8.5) as i8).min(15) as u8;
        out.extend((0..16).map(|j| q(x[j]) | q(x[j + 16]) << 4));
    }
    Ok(out)
}

/// Target types of [`convert`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvertTo {
    F16,
    Q8_0,
    Q4_0,
}

impl ConvertTo {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "f16" => Ok(ConvertTo::F16),
            "q8_0" => Ok(ConvertTo::Q8_0),
            "q4_0" => Ok(ConvertTo::Q4_0),
            other => Err(Error::Usage(format!("convert --to {other}: expected f16, q8_0 or q4_0"))),
        }
    }
}

/// Re-encode every weight matrix (tensors of 2 or more dimensions) of a GGUF file as F16, Q8_0 or
/// Q4_0, keeping 1-D tensors (norms) and all metadata; `general.file_type` is updated.
pub fn convert(g: &Gguf, to: ConvertTo) -> Result<Vec<u8>> {
    let mut metadata: Vec<(String, Value)> = g.metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    // LLAMA_FTYPE_MOSTLY_F16 / _Q8_0 / _Q4_0
    let file_type = match to {
        ConvertTo::F16 => 1,
        ConvertTo::Q8_0 => 7,
        ConvertTo::Q4_0 => 2,
    };
    metadata.retain(|(k, _)| k != "general.file_type");
    metadata.push(("general.file_type".into(), Value::U32(file_type)));
    let mut encoded: Vec<(GgmlType, Vec<u8>)> = Vec::with_capacity(g.tensors.len());
    for t in &g.tensors {
        if t.dims.len() < 2 {
            encoded.push((t.ggml_type, g.tensor_data(t).to_vec()));
            continue;
        }
        let values = g.dequantize_tensor(t)?;
        encoded.push(match to {
            ConvertTo::F16 => (GgmlType::F16, values.iter().flat_map(|&v| f16::from_f32(v).to_bits().to_le_bytes()).collect()),
            ConvertTo::Q8_0 | ConvertTo::Q4_0 => {
                if t.dims[0] % 32 != 0 {
                    return Err(Error::Shape(format!("{}: rows of {} cannot be {to:?} blocks", t.name, t.dims[0])));
                }
                let (rows, cols) = t.matrix_shape();
                match to {
                    ConvertTo::Q8_0 => (GgmlType::Q8_0, q8_0_bytes(&values, rows, cols)?),
                    _ => (GgmlType::Q4_0, q4_0_bytes(&values, rows, cols)?),
                }
            }
        });
    }
    let tensors: Vec<TensorOut> = g
        .tensors
        .iter()
        .zip(&encoded)
        .map(|(t, (ty, data))| TensorOut { name: t.name.clone(), dims: t.dims.clone(), ggml_type: *ty, data })
        .collect();
    Ok(write(&metadata, &tensors, g.alignment))
}
