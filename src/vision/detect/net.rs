//! The YuNet network, built from the ONNX graph's own wiring onto facegate's layers.
//!
//! The graph is compiled once at load time into a list of steps over numbered value slots: every `Conv` becomes
//! an [`nn::Conv2d`] (a following `Relu` is fused into it), `MaxPool`/`Resize`/`Add` become candle ops, with
//! fast paths for 2x2 pooling and for a 2x `Resize` feeding an `Add` (see [`super::ops`]). The
//! `Transpose -> Reshape -> [Sigmoid]` tails that flatten each head to (1, cells, C) are not run: the decoder
//! reads the NCHW head maps directly, so only the sigmoid is kept. Anything else in the graph is refused
//! with the node's name, so a different model file cannot silently produce wrong boxes.
//!
//! Then neighbours are fused so that few maps ever go to memory: each 1x1 conv + 3x3 depthwise pair becomes
//! one [`nn::PointwiseDepthwise`], which also absorbs a 2x2 max-pool that only it feeds, the first conv (over
//! the image) when only it reads that conv, and an FPN merge (upsample + add) that only it reads; the four
//! heads of a level become one layer ([`super::heads`]). `FACEGATE_PROFILE_YUNET=1` prints each step's time.

use std::collections::HashMap;

use candle_core::{Module, Tensor};

use super::steps::{HeadRef, LevelOut, Op, Step, HEADS, STRIDES};
use crate::vision::nn::{self, Activation, ConvCfg};
use crate::vision::weights::onnx::{OnnxGraph, OnnxNode};

/// A Conv node's parameters, kept until a following Relu has had the chance to be fused into it.
struct ConvSpec {
    weight: Tensor,
    bias: Option<Tensor>,
    cfg: ConvCfg,
    act: Activation,
}

/// What a graph value is while compiling.
#[derive(Clone, Copy)]
enum Value {
    /// A tensor the steps compute (NCHW).
    Slot(usize),
    /// A head map on its way to a graph output: transposed, then reshaped, then maybe a sigmoid.
    Tail {
        slot: usize,
        reshaped: bool,
        sigmoid: bool,
    },
}

/// The compiled network.
pub(super) struct YuNet {
    steps: Vec<Step>,
    slots: usize,
    /// [level][head] in the order of [`STRIDES`] and [`HEADS`].
    heads: [[HeadRef; 4]; 3],
}

impl YuNet {
    pub(super) fn compile(graph: &OnnxGraph) -> Result<Self, String> {
        let [input] = graph.inputs.as_slice() else {
            return Err(format!("expected one input, found {:?}", graph.inputs));
        };
        let mut uses: HashMap<&str, usize> = HashMap::new();
        for n in &graph.nodes {
            for i in &n.inputs {
                *uses.entry(i.as_str()).or_default() += 1;
            }
        }
        let mut values: HashMap<String, Value> = HashMap::new();
        values.insert(input.clone(), Value::Slot(0));
        let mut slots = 1;
        let mut steps: Vec<Step> = Vec::new();
        // Convs are built after the walk so a following Relu can still be fused into them.
        let mut pending: Vec<Option<ConvSpec>> = Vec::new();

        for node in &graph.nodes {
            let err = |r: String| format!("node '{}' ({}): {r}", node.name, node.op_type);
            let slot_of = |i: usize| -> Result<usize, String> {
                match node.inputs.get(i).and_then(|n| values.get(n)) {
                    Some(Value::Slot(s)) => Ok(*s),
                    Some(Value::Tail { .. }) => {
                        Err(err("input is an already flattened head".into()))
                    }
                    None => Err(err(format!("input {i} is not computed by an earlier node"))),
                }
            };
            let out_name = node
                .outputs
                .first()
                .ok_or_else(|| err("no output".into()))?;
            let mut push = |op: Op, input: usize, steps: &mut Vec<Step>| {
                steps.push(Step {
                    op,
                    input,
                    output: slots,
                    free: Vec::new(),
                });
                slots += 1;
                Value::Slot(slots - 1)
            };
            let value = match node.op_type.as_str() {
                "Conv" => {
                    let input = slot_of(0)?;
                    let (weight, bias, cfg) = conv_params(node, graph).map_err(err)?;
                    pending.resize_with(steps.len() + 1, || None);
                    pending[steps.len()] = Some(ConvSpec {
                        weight,
                        bias,
                        cfg,
                        act: Activation::None,
                    });
                    // Placeholder op, replaced by the real Conv2d below.
                    push(Op::Relu, input, &mut steps)
                }
                "Relu" => {
                    let input = slot_of(0)?;
                    let fusable = steps.last().is_some_and(|s| s.output == input)
                        && uses.get(node.inputs[0].as_str()) == Some(&1)
                        && pending.get(steps.len() - 1).is_some_and(|p| {
                            p.as_ref()
                                .is_some_and(|c| matches!(c.act, Activation::None))
                        });
                    if fusable {
                        if let Some(Some(conv)) = pending.get_mut(steps.len() - 1) {
                            conv.act = Activation::Relu;
                        }
                        Value::Slot(input)
                    } else {
                        push(Op::Relu, input, &mut steps)
                    }
                }
                "MaxPool" => {
                    let input = slot_of(0)?;
                    let k = square(node.ints("kernel_shape"))
                        .ok_or_else(|| err("kernel_shape".into()))?;
                    let s = square(node.ints("strides")).unwrap_or(1);
                    let no_pad = node.ints("pads").is_none_or(|p| p.iter().all(|&v| v == 0));
                    if !no_pad || node.int("ceil_mode").unwrap_or(0) != 0 {
                        return Err(err("only unpadded floor-mode pooling is supported".into()));
                    }
                    push(
                        Op::MaxPool {
                            kernel: k,
                            stride: s,
                        },
                        input,
                        &mut steps,
                    )
                }
                "Resize" => {
                    let input = slot_of(0)?;
                    let factor = resize_factor(node, graph).map_err(err)?;
                    push(Op::Upsample(factor), input, &mut steps)
                }
                "Add" => {
                    let (a, b) = (slot_of(0)?, slot_of(1)?);
                    // Fuse when the previous step is a 2x upsample read by nothing but this Add.
                    let fuse = steps.last().and_then(|s| match s.op {
                        Op::Upsample(2) => [(a, b, 0), (b, a, 1)]
                            .into_iter()
                            .find(|&(up, _, j)| {
                                up == s.output && uses.get(node.inputs[j].as_str()) == Some(&1)
                            })
                            .map(|(_, lateral, _)| (s.input, lateral)),
                        _ => None,
                    });
                    match fuse {
                        Some((small, lateral)) => {
                            steps.pop();
                            push(Op::Upsample2Add(small), lateral, &mut steps)
                        }
                        None => push(Op::Add(b), a, &mut steps),
                    }
                }
                "Transpose" => {
                    if node.ints("perm") != Some(&[0, 2, 3, 1]) {
                        return Err(err(
                            "only the NCHW -> NHWC head transpose is supported".into()
                        ));
                    }
                    Value::Tail {
                        slot: slot_of(0)?,
                        reshaped: false,
                        sigmoid: false,
                    }
                }
                "Reshape" | "Sigmoid" => {
                    let is_reshape = node.op_type == "Reshape";
                    match node.inputs.first().and_then(|n| values.get(n)) {
                        Some(Value::Tail {
                            slot,
                            reshaped,
                            sigmoid: false,
                        }) if *reshaped != is_reshape => Value::Tail {
                            slot: *slot,
                            reshaped: true,
                            sigmoid: !is_reshape,
                        },
                        _ => return Err(err("only used to flatten a head map".into())),
                    }
                }
                other => return Err(err(format!("operator {other} is not supported"))),
            };
            values.insert(out_name.clone(), value);
        }

        let heads = find_heads(graph, &values)?;
        for (i, step) in steps.iter_mut().enumerate() {
            if let Some(Some(c)) = pending.get_mut(i).map(Option::take) {
                let conv =
                    nn::Conv2d::new(c.weight, c.bias, c.cfg, c.act).map_err(|e| e.to_string())?;
                step.op = Op::Conv(conv);
            }
        }
        let steps = super::plan::fuse_pointwise_depthwise(steps, &heads, slots);
        let (mut steps, heads) = super::heads::merge_heads(steps, heads);
        super::plan::plan_frees(&mut steps, &heads, slots);
        Ok(Self {
            steps,
            slots,
            heads,
        })
    }

    /// Runs the network on a (1, 3, H, W) BGR input (H, W multiples of 32) and returns the head maps per level.
    pub(super) fn forward(&self, x: Tensor) -> candle_core::Result<[LevelOut; 3]> {
        let mut slots: Vec<Option<Tensor>> = vec![None; self.slots];
        slots[0] = Some(x);
        let profile = super::plan::profiling();
        for step in &self.steps {
            let t0 = profile.then(std::time::Instant::now);
            let get = |s: usize| {
                slots[s].as_ref().ok_or_else(|| {
                    candle_core::Error::Msg(format!("value {s} used after it was freed"))
                })
            };
            let x = get(step.input)?;
            let y = match &step.op {
                Op::Conv(conv) => conv.forward(x)?,
                Op::PwDw(layer) => layer.forward(x)?,
                Op::Relu => x.relu()?,
                Op::MaxPool {
                    kernel: 2,
                    stride: 2,
                } => super::ops::max_pool_2x2(x)?,
                Op::MaxPool { kernel, stride } => {
                    x.max_pool2d_with_stride((*kernel, *kernel), (*stride, *stride))?
                }
                Op::Upsample(f) => {
                    let (_, _, h, w) = x.dims4()?;
                    x.upsample_nearest2d(h * f, w * f)?
                }
                Op::Add(other) => (x + get(*other)?)?,
                Op::Upsample2Add(small) => super::ops::upsample2_add(x, get(*small)?)?,
                Op::UpAddPwDw(layer, small) => layer.forward_upsample2_add(x, get(*small)?)?,
            };
            if let Some(t0) = t0 {
                eprintln!(
                    "yunet step {:>2} {:<28} {:?} -> {:?}: {:.3} ms",
                    step.output,
                    step.op.describe(),
                    x.dims(),
                    y.dims(),
                    t0.elapsed().as_secs_f64() * 1e3
                );
            }
            slots[step.output] = Some(y);
            for &s in &step.free {
                slots[s] = None;
            }
        }
        let level = |l: usize| super::heads::level_out(&slots, &self.heads[l]);
        Ok([level(0)?, level(1)?, level(2)?])
    }
}

/// Weight, bias and geometry of a Conv node, checked against what `nn::Conv2d` supports.
fn conv_params(
    node: &OnnxNode,
    graph: &OnnxGraph,
) -> Result<(Tensor, Option<Tensor>, ConvCfg), String> {
    let weight = node
        .inputs
        .get(1)
        .and_then(|n| graph.weights.get(n))
        .ok_or("weight is not a float initializer")?
        .clone();
    let bias = match node.inputs.get(2).filter(|n| !n.is_empty()) {
        Some(n) => Some(
            graph
                .weights
                .get(n)
                .ok_or("bias is not a float initializer")?
                .clone(),
        ),
        None => None,
    };
    let (_, _, kh, kw) = weight.dims4().map_err(|e| e.to_string())?;
    if let Some(k) = node.ints("kernel_shape") {
        if k != [kh as i64, kw as i64] {
            return Err(format!(
                "kernel_shape {k:?} does not match the weight {:?}",
                weight.dims()
            ));
        }
    }
    if node
        .ints("dilations")
        .is_some_and(|d| d.iter().any(|&v| v != 1))
    {
        return Err("dilated convolutions are not supported".into());
    }
    if node.string("auto_pad").is_some_and(|p| p != "NOTSET") {
        return Err("auto_pad is not supported".into());
    }
    let stride = square(node.ints("strides")).unwrap_or(1);
    let pad = match node.ints("pads") {
        None => [0; 4],
        Some(p) if p.len() == 4 && p.iter().all(|&v| (0..16).contains(&v)) => {
            // ONNX order: top, left, bottom, right — the same as ConvCfg.
            [p[0] as usize, p[1] as usize, p[2] as usize, p[3] as usize]
        }
        Some(p) => return Err(format!("unsupported pads {p:?}")),
    };
    let groups = usize::try_from(node.int("group").unwrap_or(1)).map_err(|_| "bad group")?;
    Ok((
        weight,
        bias,
        ConvCfg {
            stride,
            pad,
            groups,
        },
    ))
}

/// The integer factor of a nearest-neighbour Resize that doubles (or n-tuples) H and W.
fn resize_factor(node: &OnnxNode, graph: &OnnxGraph) -> Result<usize, String> {
    if node.string("mode") != Some("nearest") {
        return Err("only nearest resizing is supported".into());
    }
    let scales = node
        .inputs
        .get(2)
        .and_then(|n| graph.weights.get(n))
        .ok_or("scales must be a float initializer")?;
    let s: Vec<f32> = scales
        .flatten_all()
        .and_then(|t| t.to_vec1())
        .map_err(|e| e.to_string())?;
    match s.as_slice() {
        [1.0, 1.0, h, w] if h == w && *h >= 1.0 && h.fract() == 0.0 => Ok(*h as usize),
        _ => Err(format!(
            "scales {s:?}: only equal integer H/W factors are supported"
        )),
    }
}

fn square(v: Option<&[i64]>) -> Option<usize> {
    match v? {
        [a, b] if a == b && *a > 0 => Some(*a as usize),
        _ => None,
    }
}

/// Finds the twelve outputs `cls_8` ... `kps_32` and checks their channel counts.
fn find_heads(
    graph: &OnnxGraph,
    values: &HashMap<String, Value>,
) -> Result<[[HeadRef; 4]; 3], String> {
    let mut heads = [[HeadRef {
        slot: 0,
        channel: 0,
        slot_channels: 0,
        sigmoid: false,
    }; 4]; 3];
    for (l, stride) in STRIDES.iter().enumerate() {
        for (h, (kind, _)) in HEADS.iter().enumerate() {
            let name = format!("{kind}_{stride}");
            if !graph.outputs.contains(&name) {
                return Err(format!("output '{name}' is missing: not a YuNet model"));
            }
            match values.get(&name) {
                Some(Value::Tail {
                    slot,
                    reshaped: true,
                    sigmoid,
                }) => {
                    heads[l][h] = HeadRef {
                        slot: *slot,
                        channel: 0,
                        slot_channels: HEADS[h].1,
                        sigmoid: *sigmoid,
                    }
                }
                _ => return Err(format!("output '{name}' is not a flattened head map")),
            }
        }
    }
    Ok(heads)
}
