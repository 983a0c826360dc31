//! YuNet's detection heads: the four per level (cls 1, obj 1, bbox 4, kps 10 channels) run as one layer, and
//! the head maps handed to the decoder as plain arrays.
//!
//! Each head is a 1x1 conv + 3x3 depthwise pair reading the same 64-channel feature map. Run separately they
//! read that map four times and fill four 8-channel register blocks for 16 channels of output (1, 1, 4 and
//! 10 round up to 8, 8, 8, 16); as one 16-channel pair ([`nn::PointwiseDepthwise::concat_outputs`]) they read
//! it once and fill exactly two blocks. The merged layer's output channels are the heads' in order, so each
//! head is a channel range of it ([`HeadRef::channel`]).

use candle_core::Tensor;

use super::steps::{HeadRef, LevelOut, Op, Step, HEADS};
use crate::vision::nn;

/// Merges each level's four head layers into one when they are fused pairs reading the same map, read by
/// nothing but the decoder. Levels that do not fit are left as they are.
pub(super) fn merge_heads(
    mut steps: Vec<Step>,
    mut heads: [[HeadRef; 4]; 3],
) -> (Vec<Step>, [[HeadRef; 4]; 3]) {
    for level in heads.iter_mut() {
        let Some(found) = level_steps(&steps, level) else {
            continue;
        };
        let layers: Vec<&nn::PointwiseDepthwise> = found
            .iter()
            .map(|&i| match &steps[i].op {
                Op::PwDw(l) => l,
                _ => unreachable!("level_steps returns fused pairs only"),
            })
            .collect();
        let Some(merged) = nn::PointwiseDepthwise::concat_outputs(&layers) else {
            continue;
        };
        let total = merged.channels().1;
        // The merged step takes the place (and output slot) of the first head step; the others go.
        let first = *found.iter().min().expect("four steps");
        let slot = steps[first].output;
        steps[first].op = Op::PwDw(merged);
        let mut channel = 0;
        for (h, head) in level.iter_mut().enumerate() {
            *head = HeadRef {
                slot,
                channel,
                slot_channels: total,
                sigmoid: head.sigmoid,
            };
            channel += HEADS[h].1;
        }
        let drop: Vec<usize> = found.iter().copied().filter(|&i| i != first).collect();
        steps = steps
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !drop.contains(i))
            .map(|(_, s)| s)
            .collect();
    }
    (steps, heads)
}

/// The steps computing a level's four heads, when each is a fused pair with the expected channel count,
/// all read the same slot, and no step reads their outputs.
fn level_steps(steps: &[Step], level: &[HeadRef; 4]) -> Option<[usize; 4]> {
    let mut found = [0usize; 4];
    for (h, head) in level.iter().enumerate() {
        let i = steps.iter().position(|s| s.output == head.slot)?;
        match &steps[i].op {
            Op::PwDw(l) if l.channels().1 == HEADS[h].1 => found[h] = i,
            _ => return None,
        }
        let read = steps
            .iter()
            .any(|s| s.input == head.slot || s.op.second_input() == Some(head.slot));
        if read || level[..h].iter().any(|o| o.slot == head.slot) {
            return None;
        }
    }
    let input = steps[found[0]].input;
    found
        .iter()
        .all(|&i| steps[i].input == input)
        .then_some(found)
}

/// A level's head maps from the computed slots, checked against the channel counts of [`HEADS`].
pub(super) fn level_out(
    slots: &[Option<Tensor>],
    level: &[HeadRef; 4],
) -> candle_core::Result<LevelOut> {
    let mut rows_cols = None;
    let mut maps: [Vec<f32>; 4] = Default::default();
    for ((h, head), map) in level.iter().enumerate().zip(maps.iter_mut()) {
        let t = slots[head.slot]
            .as_ref()
            .ok_or_else(|| candle_core::Error::Msg("head map missing".into()))?;
        let (_, c, rows, cols) = t.dims4()?;
        let (kind, channels) = HEADS[h];
        if t.dims()[0] != 1 || c != head.slot_channels || head.channel + channels > c {
            candle_core::bail!("head {kind} has shape {:?}", t.dims());
        }
        if *rows_cols.get_or_insert((rows, cols)) != (rows, cols) {
            candle_core::bail!("head {kind} has shape {:?}", t.dims());
        }
        let n = rows * cols;
        let flat = t
            .flatten_all()?
            .narrow(0, head.channel * n, channels * n)?
            .to_vec1::<f32>()?;
        *map = flat;
        if head.sigmoid {
            for v in map.iter_mut() {
                *v = 1.0 / (1.0 + (-*v).exp());
            }
        }
    }
    let (rows, cols) = rows_cols.unwrap_or((0, 0));
    Ok(LevelOut { rows, cols, maps })
}
