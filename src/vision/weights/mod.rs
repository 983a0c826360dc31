//! Readers for the model files as their upstreams publish them, so no conversion step is needed at install
//! time: ONNX (YuNet), legacy PyTorch pickles (MiniFASNet), tfjs shards (dlib ResNet) and safetensors
//! (FaceMesh, converted from TFLite by `models/convert_facemesh.py`).
//!
//! Each reader returns named tensors; the model code picks the ones it needs and checks their shapes.

pub mod onnx;
pub mod pickle;
pub mod pth;
pub mod tfjs;

use std::collections::HashMap;

use candle_core::Tensor;

/// Named tensors read from a model file.
pub type WeightMap = HashMap<String, Tensor>;
