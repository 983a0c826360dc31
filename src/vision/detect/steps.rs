//! The vocabulary of YuNet's compiled network: the [`Step`]s over numbered value slots and their [`Op`]s, the
//! head references and the per-level head maps. `net` compiles the graph into these; `plan` and `heads`
//! rewrite them; `net` runs them. (Shared here so that those files depend on it and not on each other.)

use crate::vision::nn;

/// Head kinds in the order the decoder expects them, with their channel counts.
pub(super) const HEADS: [(&str, usize); 4] = [("cls", 1), ("obj", 1), ("bbox", 4), ("kps", 10)];
/// Feature strides of the three detection levels.
pub(super) const STRIDES: [usize; 3] = [8, 16, 32];

/// What a step computes.
pub(super) enum Op {
    Conv(nn::Conv2d),
    /// A 1x1 conv and the 3x3 depthwise conv reading only it, fused.
    PwDw(nn::PointwiseDepthwise),
    Relu,
    MaxPool {
        kernel: usize,
        stride: usize,
    },
    Upsample(usize),
    Add(usize),
    /// `input + nearest_upsample_2x(slot)`: a 2x Resize whose only reader is an Add.
    Upsample2Add(usize),
    /// A fused pair applied to `input + nearest_upsample_2x(slot)`, the sum made row by row inside it.
    UpAddPwDw(nn::PointwiseDepthwise, usize),
}

impl Op {
    /// The slot a two-input op reads besides the step's input.
    pub(super) fn second_input(&self) -> Option<usize> {
        match self {
            Op::Add(b) | Op::Upsample2Add(b) | Op::UpAddPwDw(_, b) => Some(*b),
            _ => None,
        }
    }

    /// A short name for profiles.
    pub(super) fn describe(&self) -> String {
        match self {
            Op::Conv(c) => {
                let (cout, cin_g, kh, kw, cfg, _, _) = c.packed_parts();
                format!(
                    "conv {kh}x{kw}/{} {}->{cout} g{}",
                    cfg.stride,
                    cin_g * cfg.groups,
                    cfg.groups
                )
            }
            Op::PwDw(l) => {
                let (cin, cout) = l.channels();
                let pre = if l.has_input_conv() { "conv+" } else { "" };
                let pool = if l.pools() { "+pool" } else { "" };
                format!("{pre}pw+dw{pool} {cin}->{cout}")
            }
            Op::Relu => "relu".into(),
            Op::MaxPool { kernel, stride } => format!("maxpool {kernel}/{stride}"),
            Op::Upsample(f) => format!("upsample x{f}"),
            Op::Add(_) => "add".into(),
            Op::Upsample2Add(_) => "upsample2+add".into(),
            Op::UpAddPwDw(l, _) => {
                let (cin, cout) = l.channels();
                format!("upsample2+add+pw+dw {cin}->{cout}")
            }
        }
    }
}

/// One step of the forward pass: `op` on slot `input` (and a second slot for two-input ops) into `output`.
pub(super) struct Step {
    pub op: Op,
    pub input: usize,
    pub output: usize,
    /// Slots no later step reads: dropped right after this step to keep peak memory low.
    pub free: Vec<usize>,
}

/// One head map of one level: channels `channel..channel + C` of the NCHW tensor in a slot (which holds
/// `slot_channels` in all: more than C when the level's heads run as one layer), and whether the graph
/// applies a sigmoid to it.
#[derive(Clone, Copy)]
pub(super) struct HeadRef {
    pub slot: usize,
    pub channel: usize,
    pub slot_channels: usize,
    pub sigmoid: bool,
}

/// Head maps of one level, each channel-major (C, rows, cols) in [`HEADS`] order, sigmoid already applied
/// where the graph does.
pub(super) struct LevelOut {
    pub rows: usize,
    pub cols: usize,
    pub maps: [Vec<f32>; 4],
}
