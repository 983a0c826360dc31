//! ONNX reader: the graph's nodes and its float/int64 initializers, decoded with hand-written `prost` messages.
//!
//! Only the handful of `onnx.proto` fields a small convolutional network needs are declared; protobuf decoding
//! skips every other field, so no `protoc` or build script is needed. Field numbers follow `onnx.proto`
//! (proto2: repeated numbers may arrive packed or unpacked, and prost accepts both).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use prost::Message;

use super::WeightMap;

/// Why an ONNX file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    #[error("cannot read ONNX file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid ONNX model (truncated or corrupt file?): {source}")]
    Decode {
        path: PathBuf,
        source: prost::DecodeError,
    },
    #[error("ONNX file {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

// ---- The protobuf messages (a subset of onnx.proto) ----

#[derive(Clone, PartialEq, Message)]
struct ModelProto {
    #[prost(message, optional, tag = "7")]
    graph: Option<GraphProto>,
}

#[derive(Clone, PartialEq, Message)]
struct GraphProto {
    #[prost(message, repeated, tag = "1")]
    node: Vec<NodeProto>,
    #[prost(message, repeated, tag = "5")]
    initializer: Vec<TensorProto>,
    #[prost(message, repeated, tag = "11")]
    input: Vec<ValueInfoProto>,
    #[prost(message, repeated, tag = "12")]
    output: Vec<ValueInfoProto>,
}

#[derive(Clone, PartialEq, Message)]
struct ValueInfoProto {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct NodeProto {
    #[prost(string, repeated, tag = "1")]
    input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    output: Vec<String>,
    #[prost(string, optional, tag = "3")]
    name: Option<String>,
    #[prost(string, optional, tag = "4")]
    op_type: Option<String>,
    #[prost(message, repeated, tag = "5")]
    attribute: Vec<AttributeProto>,
}

#[derive(Clone, PartialEq, Message)]
struct AttributeProto {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(float, optional, tag = "2")]
    f: Option<f32>,
    #[prost(int64, optional, tag = "3")]
    i: Option<i64>,
    #[prost(bytes = "vec", optional, tag = "4")]
    s: Option<Vec<u8>>,
    #[prost(float, repeated, packed = "false", tag = "7")]
    floats: Vec<f32>,
    #[prost(int64, repeated, packed = "false", tag = "8")]
    ints: Vec<i64>,
    /// AttributeType: 1 FLOAT, 2 INT, 3 STRING, 6 FLOATS, 7 INTS (others are not used by our models).
    #[prost(int32, optional, tag = "20")]
    r#type: Option<i32>,
}

#[derive(Clone, PartialEq, Message)]
struct TensorProto {
    #[prost(int64, repeated, packed = "false", tag = "1")]
    dims: Vec<i64>,
    /// DataType: 1 FLOAT, 7 INT64 (the only two our models store).
    #[prost(int32, optional, tag = "2")]
    data_type: Option<i32>,
    #[prost(float, repeated, packed = "true", tag = "4")]
    float_data: Vec<f32>,
    #[prost(int64, repeated, packed = "true", tag = "7")]
    int64_data: Vec<i64>,
    #[prost(string, optional, tag = "8")]
    name: Option<String>,
    #[prost(bytes = "vec", optional, tag = "9")]
    raw_data: Option<Vec<u8>>,
    /// 1 = EXTERNAL: the data lives in another file, which we do not support.
    #[prost(int32, optional, tag = "14")]
    data_location: Option<i32>,
}

const DATA_FLOAT: i32 = 1;
const DATA_INT64: i32 = 7;

// ---- What the rest of facegate sees ----

/// A node attribute (only the kinds our models use).
#[derive(Clone, Debug, PartialEq)]
pub enum Attribute {
    Float(f32),
    Int(i64),
    String(String),
    Floats(Vec<f32>),
    Ints(Vec<i64>),
    /// A kind we do not read (tensor, graph, ...).
    Other,
}

/// One operator of the graph.
#[derive(Clone, Debug)]
pub struct OnnxNode {
    pub name: String,
    pub op_type: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub attributes: HashMap<String, Attribute>,
}

impl OnnxNode {
    /// An integer-list attribute (`kernel_shape`, `pads`, ...), if present.
    pub fn ints(&self, name: &str) -> Option<&[i64]> {
        match self.attributes.get(name) {
            Some(Attribute::Ints(v)) => Some(v),
            _ => None,
        }
    }

    /// An integer attribute (`group`, ...), if present.
    pub fn int(&self, name: &str) -> Option<i64> {
        match self.attributes.get(name) {
            Some(Attribute::Int(v)) => Some(*v),
            _ => None,
        }
    }

    /// A string attribute (`mode`, ...), if present.
    pub fn string(&self, name: &str) -> Option<&str> {
        match self.attributes.get(name) {
            Some(Attribute::String(v)) => Some(v),
            _ => None,
        }
    }
}

/// A decoded ONNX graph: nodes in file order (ONNX requires topological order) and the initializers.
#[derive(Debug)]
pub struct OnnxGraph {
    pub nodes: Vec<OnnxNode>,
    /// Float initializers as f32 CPU tensors with the file's dims.
    pub weights: WeightMap,
    /// Int64 initializers (shapes for Reshape and the like).
    pub int_weights: HashMap<String, Vec<i64>>,
    /// Graph inputs that are not initializers (the network's real inputs).
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
}

impl OnnxGraph {
    /// Reads and decodes an ONNX file.
    pub fn read(path: &Path) -> Result<Self, OnnxError> {
        let bytes = std::fs::read(path).map_err(|source| OnnxError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::decode(&bytes).map_err(|e| match e {
            DecodeFail::Proto(source) => OnnxError::Decode {
                path: path.to_path_buf(),
                source,
            },
            DecodeFail::Invalid(reason) => OnnxError::Invalid {
                path: path.to_path_buf(),
                reason,
            },
        })
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeFail> {
        let model = ModelProto::decode(bytes).map_err(DecodeFail::Proto)?;
        let graph = model
            .graph
            .ok_or_else(|| DecodeFail::Invalid("the model has no graph".into()))?;
        let mut weights = WeightMap::new();
        let mut int_weights = HashMap::new();
        for t in graph.initializer {
            let name = t.name.clone().unwrap_or_default();
            match t.data_type.unwrap_or(0) {
                DATA_FLOAT => {
                    let (dims, data) = float_tensor(&t).map_err(|r| {
                        DecodeFail::Invalid(format!("initializer '{name}': {r}"))
                    })?;
                    let tensor = Tensor::from_vec(data, dims, &Device::Cpu).map_err(|e| {
                        DecodeFail::Invalid(format!("initializer '{name}': {e}"))
                    })?;
                    weights.insert(name, tensor);
                }
                DATA_INT64 => {
                    let data = int64_tensor(&t).map_err(|r| {
                        DecodeFail::Invalid(format!("initializer '{name}': {r}"))
                    })?;
                    int_weights.insert(name, data);
                }
                other => {
                    return Err(DecodeFail::Invalid(format!(
                        "initializer '{name}' has data type {other}, only float32 and int64 are supported"
                    )))
                }
            }
        }
        let nodes = graph.node.into_iter().map(convert_node).collect();
        let inputs = graph
            .input
            .into_iter()
            .filter_map(|v| v.name)
            .filter(|n| !weights.contains_key(n) && !int_weights.contains_key(n))
            .collect();
        let outputs = graph.output.into_iter().filter_map(|v| v.name).collect();
        Ok(Self {
            nodes,
            weights,
            int_weights,
            inputs,
            outputs,
        })
    }
}

enum DecodeFail {
    Proto(prost::DecodeError),
    Invalid(String),
}

fn convert_node(n: NodeProto) -> OnnxNode {
    let attributes = n
        .attribute
        .into_iter()
        .map(|a| {
            let value = match a.r#type.unwrap_or(0) {
                1 => Attribute::Float(a.f.unwrap_or(0.0)),
                2 => Attribute::Int(a.i.unwrap_or(0)),
                3 => Attribute::String(String::from_utf8_lossy(&a.s.unwrap_or_default()).into()),
                6 => Attribute::Floats(a.floats),
                7 => Attribute::Ints(a.ints),
                _ => Attribute::Other,
            };
            (a.name.unwrap_or_default(), value)
        })
        .collect();
    OnnxNode {
        name: n.name.unwrap_or_default(),
        op_type: n.op_type.unwrap_or_default(),
        inputs: n.input,
        outputs: n.output,
        attributes,
    }
}

/// Element count implied by `dims`, rejecting negative or overflowing dims.
fn element_count(dims: &[i64]) -> Result<(Vec<usize>, usize), String> {
    let mut shape = Vec::with_capacity(dims.len());
    let mut n = 1usize;
    for &d in dims {
        let d = usize::try_from(d).map_err(|_| format!("negative dimension {d}"))?;
        n = n.checked_mul(d).ok_or("dimensions overflow")?;
        shape.push(d);
    }
    Ok((shape, n))
}

fn check_location(t: &TensorProto) -> Result<(), String> {
    if t.data_location == Some(1) {
        return Err("data stored in an external file is not supported".into());
    }
    Ok(())
}

fn float_tensor(t: &TensorProto) -> Result<(Vec<usize>, Vec<f32>), String> {
    check_location(t)?;
    let (shape, n) = element_count(&t.dims)?;
    let data: Vec<f32> = match t.raw_data.as_deref() {
        Some(raw) if !raw.is_empty() => {
            if raw.len() != 4 * n {
                return Err(format!("{} raw bytes for shape {:?}", raw.len(), t.dims));
            }
            raw.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        }
        _ => t.float_data.clone(),
    };
    if data.len() != n {
        return Err(format!("{} values for shape {:?}", data.len(), t.dims));
    }
    Ok((shape, data))
}

fn int64_tensor(t: &TensorProto) -> Result<Vec<i64>, String> {
    check_location(t)?;
    let (_, n) = element_count(&t.dims)?;
    let data: Vec<i64> = match t.raw_data.as_deref() {
        Some(raw) if !raw.is_empty() => {
            if raw.len() != 8 * n {
                return Err(format!("{} raw bytes for shape {:?}", raw.len(), t.dims));
            }
            raw.chunks_exact(8)
                .map(|c| {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(c);
                    i64::from_le_bytes(b)
                })
                .collect()
        }
        _ => t.int64_data.clone(),
    };
    if data.len() != n {
        return Err(format!("{} values for shape {:?}", data.len(), t.dims));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(name: &str, dims: Vec<i64>, raw: Vec<u8>) -> TensorProto {
        TensorProto {
            dims,
            data_type: Some(DATA_FLOAT),
            name: Some(name.into()),
            raw_data: Some(raw),
            ..Default::default()
        }
    }

    #[test]
    fn round_trips_a_small_graph() {
        let raw: Vec<u8> = [1.0f32, -2.0, 3.5, 0.25]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let model = ModelProto {
            graph: Some(GraphProto {
                node: vec![NodeProto {
                    input: vec!["x".into(), "w".into()],
                    output: vec!["y".into()],
                    name: Some("conv0".into()),
                    op_type: Some("Conv".into()),
                    attribute: vec![AttributeProto {
                        name: Some("pads".into()),
                        ints: vec![1, 1, 1, 1],
                        r#type: Some(7),
                        ..Default::default()
                    }],
                }],
                initializer: vec![
                    tensor("w", vec![1, 1, 2, 2], raw),
                    TensorProto {
                        dims: vec![2],
                        data_type: Some(DATA_INT64),
                        name: Some("shape".into()),
                        int64_data: vec![1, -1],
                        ..Default::default()
                    },
                ],
                input: vec![
                    ValueInfoProto {
                        name: Some("x".into()),
                    },
                    ValueInfoProto {
                        name: Some("w".into()),
                    },
                ],
                output: vec![ValueInfoProto {
                    name: Some("y".into()),
                }],
            }),
        };
        let g = OnnxGraph::decode(&model.encode_to_vec())
            .ok()
            .expect("decodes");
        assert_eq!(g.inputs, vec!["x".to_string()]);
        assert_eq!(g.outputs, vec!["y".to_string()]);
        assert_eq!(g.nodes[0].op_type, "Conv");
        assert_eq!(g.nodes[0].ints("pads"), Some(&[1i64, 1, 1, 1][..]));
        let w = &g.weights["w"];
        assert_eq!(w.dims(), &[1, 1, 2, 2]);
        let v: Vec<f32> = w.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(v, vec![1.0, -2.0, 3.5, 0.25]);
        assert_eq!(g.int_weights["shape"], vec![1, -1]);
    }

    #[test]
    fn rejects_a_size_mismatch() {
        let model = ModelProto {
            graph: Some(GraphProto {
                initializer: vec![tensor("w", vec![2, 2], vec![0; 12])],
                ..Default::default()
            }),
        };
        match OnnxGraph::decode(&model.encode_to_vec()) {
            Err(DecodeFail::Invalid(r)) => assert!(r.contains("'w'"), "{r}"),
            _ => panic!("a tensor with 3 values for shape [2, 2] must be rejected"),
        }
    }

    #[test]
    fn truncated_bytes_are_a_decode_error() {
        let model = ModelProto {
            graph: Some(GraphProto {
                initializer: vec![tensor("w", vec![4], vec![0; 16])],
                ..Default::default()
            }),
        };
        let bytes = model.encode_to_vec();
        assert!(matches!(
            OnnxGraph::decode(&bytes[..bytes.len() - 5]),
            Err(DecodeFail::Proto(_))
        ));
    }
}
