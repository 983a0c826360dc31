//! Passes over YuNet's compiled steps: fusing neighbours into single layers so that few maps go to memory,
//! planning when each slot can be freed, and whether to profile each step.

use super::steps::{HeadRef, Op, Step};
use crate::vision::nn;

/// Per-step timing on stderr, for finding where the forward pass spends its time: set
/// `FACEGATE_PROFILE_YUNET=1` (read once per process).
pub(super) fn profiling() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("FACEGATE_PROFILE_YUNET").is_some_and(|v| v == "1"))
}

/// Replaces each 1x1 conv whose only reader is the next step, a 3x3 depthwise conv, by the fused pair;
/// folds a 2x2 max-pool that is the only reader of such a pair into it, and a conv with few taps whose
/// only reader is such a pair (the first layer) too.
pub(super) fn fuse_pointwise_depthwise(
    steps: Vec<Step>,
    heads: &[[HeadRef; 4]; 3],
    slots: usize,
) -> Vec<Step> {
    let mut readers = vec![0usize; slots];
    for s in &steps {
        readers[s.input] += 1;
        if let Some(b) = s.op.second_input() {
            readers[b] += 1;
        }
    }
    for h in heads.iter().flatten() {
        readers[h.slot] += 1;
    }
    let mut out: Vec<Step> = Vec::with_capacity(steps.len());
    for step in steps {
        let fused = match (out.last(), &step.op) {
            (Some(prev), Op::Conv(dw))
                if prev.output == step.input && readers[prev.output] == 1 =>
            {
                match &prev.op {
                    Op::Conv(pw) => nn::PointwiseDepthwise::fuse(pw, dw),
                    _ => None,
                }
            }
            // A 2x2 max-pool reading nothing but a fused pair's output joins the pair.
            (
                Some(prev),
                Op::MaxPool {
                    kernel: 2,
                    stride: 2,
                },
            ) if prev.output == step.input && readers[prev.output] == 1 => match &prev.op {
                Op::PwDw(layer) if !layer.pools() => Some(layer.clone().with_max_pool2()),
                _ => None,
            },
            _ => None,
        };
        match fused {
            Some(layer) => {
                let prev = out.last_mut().expect("matched above");
                prev.op = Op::PwDw(layer);
                prev.output = step.output;
            }
            None => out.push(step),
        }
    }
    // A conv with few taps (the first layer), or an FPN merge (upsample + add), read only by a fused pair
    // runs inside it.
    let mut merged: Vec<Step> = Vec::with_capacity(out.len());
    for step in out {
        let joined = match (merged.last(), &step.op) {
            (Some(prev), Op::PwDw(layer))
                if prev.output == step.input && readers[prev.output] == 1 =>
            {
                match &prev.op {
                    Op::Conv(conv) => layer.clone().with_input_conv(conv).map(Op::PwDw),
                    Op::Upsample2Add(small) if !layer.has_input_conv() => {
                        Some(Op::UpAddPwDw(layer.clone(), *small))
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        match joined {
            Some(op) => {
                let prev = merged.last_mut().expect("matched above");
                prev.op = op;
                prev.output = step.output;
            }
            None => merged.push(step),
        }
    }
    merged
}

/// After each step, the slots that no later step (and no head) reads.
pub(super) fn plan_frees(steps: &mut [Step], heads: &[[HeadRef; 4]; 3], slots: usize) {
    let mut last_use = vec![None; slots];
    for (i, s) in steps.iter().enumerate() {
        last_use[s.input] = Some(i);
        if let Some(b) = s.op.second_input() {
            last_use[b] = Some(i);
        }
    }
    for h in heads.iter().flatten() {
        last_use[h.slot] = Some(usize::MAX);
    }
    for (slot, last) in last_use.iter().enumerate() {
        if let Some(i) = *last {
            if i < steps.len() {
                steps[i].free.push(slot);
            }
        }
    }
}
