//! Reader for the legacy (pre-zip, PyTorch < 1.6) `torch.save` format, which MiniFASNet's files use.
//!
//! The file is five parts back to back: a pickle of a magic number, a pickle of the protocol version (1001),
//! a pickle of system info (endianness), the pickled object (here a state dict), a pickle of the list of
//! storage keys, then each storage's raw bytes in that order, each preceded by its element count as a
//! little-endian u64. In the object, a tensor is `torch._utils._rebuild_tensor_v2(storage, offset, size,
//! stride, ...)` where `storage` is the persistent id `('storage', <type>, key, location, numel[, view])`.
//!
//! Tensors keep their stored dtype; `num_batches_tracked` counters are `I64`. The `module.` prefix that
//! `DataParallel` adds to every name is removed.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use super::pickle::{self, PickleError, Value};
use super::WeightMap;

/// The magic number `torch.save` writes first (0x1950a86a20f9469cfc6c), as little-endian bytes.
const MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
const PROTOCOL_VERSION: i64 = 1001;

/// Why a `.pth` file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PthError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("not a legacy PyTorch file: {0}")]
    NotPth(String),
    #[error("corrupt PyTorch file, {part}: {source}")]
    Pickle {
        part: &'static str,
        source: PickleError,
    },
    #[error("corrupt PyTorch file: {0}")]
    Format(String),
    #[error("PyTorch file ends early: {0}")]
    Truncated(String),
}

/// Reads every tensor of a legacy `.pth` file.
pub fn read(path: &Path) -> Result<WeightMap, PthError> {
    let bytes = std::fs::read(path).map_err(|source| PthError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse(&bytes)
}

/// Reads every tensor of a legacy `.pth` file held in memory.
pub fn parse(bytes: &[u8]) -> Result<WeightMap, PthError> {
    if bytes.starts_with(b"PK\x03\x04") {
        return Err(PthError::NotPth(
            "this is the zip format of PyTorch >= 1.6 (candle_core::pickle reads it), not the legacy one"
                .into(),
        ));
    }
    if bytes.first() != Some(&0x80) {
        return Err(PthError::NotPth("it does not start with a pickle".into()));
    }
    let pk = |part| move |source| PthError::Pickle { part, source };
    let (magic, pos) = pickle::load(bytes, 0).map_err(pk("magic number"))?;
    if magic != Value::BigInt(MAGIC.to_vec()) {
        return Err(PthError::NotPth("wrong magic number".into()));
    }
    let (version, pos) = pickle::load(bytes, pos).map_err(pk("protocol version"))?;
    if version != Value::Int(PROTOCOL_VERSION) {
        return Err(PthError::NotPth(format!(
            "protocol version {version:?}, expected {PROTOCOL_VERSION}"
        )));
    }
    let (sys_info, pos) = pickle::load(bytes, pos).map_err(pk("system info"))?;
    if dict_get(&sys_info, "little_endian") == Some(&Value::Bool(false)) {
        return Err(PthError::Format(
            "saved on a big-endian machine, not supported".into(),
        ));
    }
    let (object, pos) = pickle::load(bytes, pos).map_err(pk("state dict"))?;
    let (keys, pos) = pickle::load(bytes, pos).map_err(pk("storage keys"))?;

    let mut object = object;
    if let Some(inner @ Value::Dict(_)) = dict_get(&object, "state_dict") {
        object = inner.clone();
    }
    let Value::Dict(items) = object else {
        return Err(PthError::Format(
            "the saved object is not a state dict".into(),
        ));
    };
    let mut specs = Vec::new();
    for (name, value) in &items {
        let (Value::Str(name), Some(spec)) = (name, tensor_spec(value)) else {
            continue; // not a named tensor (metadata)
        };
        let spec = spec.map_err(|e| PthError::Format(format!("tensor {name}: {e}")))?;
        specs.push((name.clone(), spec));
    }
    let dtypes: HashMap<&str, DType> = specs
        .iter()
        .map(|(_, s)| (s.key.as_str(), s.dtype))
        .collect();
    let storages = read_storages(bytes, pos, &keys, &dtypes)?;

    let mut out = HashMap::new();
    for (name, spec) in specs {
        let tensor = build_tensor(&spec, &storages)
            .map_err(|e| PthError::Format(format!("tensor {name}: {e}")))?;
        let name = name.strip_prefix("module.").unwrap_or(&name).to_string();
        out.insert(name, tensor);
    }
    Ok(out)
}

/// What `_rebuild_tensor_v2` was called with.
struct TensorSpec {
    key: String,
    dtype: DType,
    offset: usize,
    size: Vec<usize>,
    stride: Vec<usize>,
}

fn dict_get<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    match v {
        Value::Dict(items) => items
            .iter()
            .find(|(k, _)| matches!(k, Value::Str(s) if s == key))
            .map(|(_, v)| v),
        _ => None,
    }
}

/// `None` when `v` is not a tensor; an error when it is one but its arguments make no sense.
fn tensor_spec(v: &Value) -> Option<Result<TensorSpec, String>> {
    let Value::Call(call) = v else { return None };
    let (f, args) = &**call;
    let Value::Global(module, name) = f else {
        return None;
    };
    match (module.as_str(), name.as_str()) {
        // nn.Parameter(data, requires_grad, hooks): the tensor is the first argument.
        ("torch._utils", "_rebuild_parameter") => match args {
            Value::Tuple(a) if !a.is_empty() => tensor_spec(&a[0]),
            _ => Some(Err("bad _rebuild_parameter arguments".into())),
        },
        ("torch._utils", "_rebuild_tensor_v2" | "_rebuild_tensor") => Some(rebuild_args(args)),
        _ => None,
    }
}

/// `(storage, storage_offset, size, stride, ...)`.
fn rebuild_args(args: &Value) -> Result<TensorSpec, String> {
    let Value::Tuple(a) = args else {
        return Err("arguments are not a tuple".into());
    };
    if a.len() < 4 {
        return Err("too few arguments".into());
    }
    let Value::Persistent(id) = &a[0] else {
        return Err("storage is not a persistent id".into());
    };
    let Value::Tuple(id) = &**id else {
        return Err("storage id is not a tuple".into());
    };
    // ('storage', storage_type, key, location, numel[, view_metadata])
    if id.len() < 5 || id[0] != Value::Str("storage".into()) {
        return Err(format!("unexpected storage id {id:?}"));
    }
    let Value::Global(_, ty) = &id[1] else {
        return Err("storage type is not a class".into());
    };
    let dtype = match ty.as_str() {
        "FloatStorage" => DType::F32,
        "DoubleStorage" => DType::F64,
        "HalfStorage" => DType::F16,
        "BFloat16Storage" => DType::BF16,
        "LongStorage" => DType::I64,
        "ByteStorage" => DType::U8,
        other => return Err(format!("unsupported storage type {other}")),
    };
    let Value::Str(key) = &id[2] else {
        return Err("storage key is not a string".into());
    };
    // Old files name a view of a storage as (view_key, offset, size): its elements start at that offset.
    let view_offset = match id.get(5) {
        Some(Value::Tuple(v)) if v.len() == 3 => uint(&v[1])?,
        _ => 0,
    };
    Ok(TensorSpec {
        key: key.clone(),
        dtype,
        offset: uint(&a[1])?
            .checked_add(view_offset)
            .ok_or("offset overflows")?,
        size: uints(&a[2])?,
        stride: uints(&a[3])?,
    })
}

fn uint(v: &Value) -> Result<usize, String> {
    match v {
        Value::Int(i) if *i >= 0 => Ok(*i as usize),
        other => Err(format!("expected a non-negative integer, got {other:?}")),
    }
}

fn uints(v: &Value) -> Result<Vec<usize>, String> {
    match v {
        Value::Tuple(t) => t.iter().map(uint).collect(),
        other => Err(format!("expected a tuple of integers, got {other:?}")),
    }
}

/// The raw storages that follow the pickles, in key order, each announced by its element count.
fn read_storages<'a>(
    bytes: &'a [u8],
    mut pos: usize,
    keys: &Value,
    dtypes: &HashMap<&str, DType>,
) -> Result<HashMap<String, &'a [u8]>, PthError> {
    let Value::List(keys) = keys else {
        return Err(PthError::Format("storage key list is not a list".into()));
    };
    let mut out = HashMap::new();
    for key in keys {
        let Value::Str(key) = key else {
            return Err(PthError::Format("storage key is not a string".into()));
        };
        // Storages lie back to back, so each one's length (count x element size) is needed to find the next.
        let dtype = dtypes.get(key.as_str()).ok_or_else(|| {
            PthError::Format(format!(
                "storage {key} is used by no tensor: its size is unknown"
            ))
        })?;
        let head = bytes
            .get(pos..)
            .and_then(|b| b.get(..8))
            .ok_or_else(|| PthError::Truncated(format!("no header for storage {key}")))?;
        let numel = u64::from_le_bytes(head.try_into().expect("8 bytes"));
        pos += 8;
        let len = usize::try_from(numel)
            .ok()
            .and_then(|n| n.checked_mul(dtype.size_in_bytes()))
            .ok_or_else(|| PthError::Format(format!("storage {key} is impossibly large")))?;
        let data = bytes.get(pos..).and_then(|b| b.get(..len)).ok_or_else(|| {
            PthError::Truncated(format!(
                "storage {key} needs {len} bytes at offset {pos}, the file has {}",
                bytes.len()
            ))
        })?;
        pos += len;
        out.insert(key.clone(), data);
    }
    Ok(out)
}

/// Copies a (possibly strided) view of a storage into a contiguous tensor.
fn build_tensor(spec: &TensorSpec, storages: &HashMap<String, &[u8]>) -> Result<Tensor, String> {
    let data = storages
        .get(&spec.key)
        .ok_or_else(|| format!("storage {} is not in the file", spec.key))?;
    if spec.size.len() != spec.stride.len() {
        return Err("size and stride differ in length".into());
    }
    let es = spec.dtype.size_in_bytes();
    let numel_storage = data.len() / es;
    let count = spec
        .size
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or("size overflows")?;
    if count > 0 {
        let last = spec
            .size
            .iter()
            .zip(&spec.stride)
            .try_fold(spec.offset, |a, (&d, &s)| {
                (d - 1).checked_mul(s).and_then(|x| x.checked_add(a))
            })
            .ok_or("strides overflow")?;
        // A state dict never broadcasts (stride 0); refusing views larger than their storage also bounds
        // the allocation below by the file size.
        if last >= numel_storage || count > numel_storage {
            return Err(format!(
                "view reaches element {last} of a storage of {numel_storage}"
            ));
        }
    }
    let mut buf = Vec::with_capacity(count * es);
    let mut idx = vec![0usize; spec.size.len()];
    for _ in 0..count {
        let e: usize = spec.offset
            + idx
                .iter()
                .zip(&spec.stride)
                .map(|(i, s)| i * s)
                .sum::<usize>();
        buf.extend_from_slice(&data[e * es..(e + 1) * es]);
        for d in (0..idx.len()).rev() {
            idx[d] += 1;
            if idx[d] < spec.size[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    Tensor::from_raw_buffer(&buf, spec.dtype, &spec.size, &Device::Cpu).map_err(|e| e.to_string())
}
