//! The fast CPU kernels behind `vision::nn` against candle's own ops, on random tensors, for every shape
//! class the four models use: dense 3x3 stride 1/2, 7x7 stride 2, 1x1 (pointwise and strided), convs with a
//! 1x1 output, depthwise 3x3/5x5 stride 1/2, asymmetric padding, groups, batch > 1, with bias, ReLU, PReLU;
//! each on a 1-thread and a 2-thread rayon pool (the kernels split work differently).
//!
//! Tolerance: max |fast - reference| <= 1e-4 * max(1, max |reference|) (the two sum in different orders and
//! the fast path may fuse multiply-adds).

use candle_core::{Device, Module, Tensor};
use facegate::vision::nn::{self, Activation, Conv2d, ConvCfg};

/// Deterministic pseudo-random values in [-1, 1) (xorshift), so failures reproduce.
fn rand_vec(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn rand_tensor(shape: &[usize], seed: u64) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(rand_vec(n, seed), shape, &Device::Cpu).unwrap()
}

fn assert_close(fast: &Tensor, reference: &Tensor, what: &str) {
    assert_eq!(fast.dims(), reference.dims(), "{what}: shape");
    let f = fast.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let r = reference.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let scale = r.iter().fold(1f32, |m, v| m.max(v.abs()));
    let worst = f
        .iter()
        .zip(&r)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(f.iter().all(|v| v.is_finite()), "{what}: non-finite output");
    assert!(
        worst <= 1e-4 * scale,
        "{what}: max abs diff {worst} (scale {scale})"
    );
}

#[derive(Clone, Copy)]
enum Act {
    None,
    Relu,
    PRelu,
}

struct Case {
    name: &'static str,
    /// Input N, C, H, W.
    input: [usize; 4],
    cout: usize,
    k: (usize, usize),
    stride: usize,
    pad: [usize; 4],
    groups: usize,
    bias: bool,
    act: Act,
}

fn layer(c: &Case, seed: u64) -> Conv2d {
    let cin_g = c.input[1] / c.groups;
    // Kaiming-like scale keeps outputs O(1) so the tolerance means the same thing for every case.
    let fan_in = (cin_g * c.k.0 * c.k.1) as f32;
    let w =
        (rand_tensor(&[c.cout, cin_g, c.k.0, c.k.1], seed) * (3.0 / fan_in as f64).sqrt()).unwrap();
    let bias = c.bias.then(|| rand_tensor(&[c.cout], seed + 1));
    let act = match c.act {
        Act::None => Activation::None,
        Act::Relu => Activation::Relu,
        Act::PRelu => Activation::PRelu((rand_tensor(&[c.cout], seed + 2) * 0.5).unwrap()),
    };
    let cfg = ConvCfg {
        stride: c.stride,
        pad: c.pad,
        groups: c.groups,
    };
    Conv2d::new(w, bias, cfg, act).unwrap()
}

#[allow(clippy::too_many_arguments)]
const fn case(
    name: &'static str,
    input: [usize; 4],
    cout: usize,
    k: usize,
    stride: usize,
    pad: [usize; 4],
    groups: usize,
    act: Act,
) -> Case {
    Case {
        name,
        input,
        cout,
        k: (k, k),
        stride,
        pad,
        groups,
        bias: true,
        act,
    }
}

const P1: [usize; 4] = [1, 1, 1, 1];
const P0: [usize; 4] = [0, 0, 0, 0];
/// TFLite SAME padding for a stride-2 3x3 conv on an even size: nothing before, one after.
const SAME2: [usize; 4] = [0, 0, 1, 1];

fn cases() -> Vec<Case> {
    vec![
        case(
            "dense 3x3 s1 relu",
            [1, 32, 36, 36],
            32,
            3,
            1,
            P1,
            1,
            Act::Relu,
        ),
        case(
            "dense 3x3 s1 odd size prelu",
            [1, 16, 23, 17],
            24,
            3,
            1,
            P1,
            1,
            Act::PRelu,
        ),
        case(
            "dense 3x3 s2 same-pad",
            [1, 32, 36, 36],
            64,
            3,
            2,
            SAME2,
            1,
            Act::Relu,
        ),
        case(
            "dense 3x3 s2 pad1 (yunet stem)",
            [1, 3, 96, 128],
            16,
            3,
            2,
            P1,
            1,
            Act::Relu,
        ),
        case(
            "dense 7x7 s2 (dlib stem)",
            [1, 3, 150, 150],
            32,
            7,
            2,
            P0,
            1,
            Act::Relu,
        ),
        case(
            "dense 3x3 deep few pixels",
            [1, 128, 9, 9],
            128,
            3,
            1,
            P1,
            1,
            Act::Relu,
        ),
        case(
            "dense 3x3 1x1-output",
            [1, 256, 3, 3],
            256,
            3,
            1,
            P0,
            1,
            Act::None,
        ),
        case(
            "dense 3x3 asymmetric pad",
            [1, 8, 11, 13],
            8,
            3,
            1,
            [2, 0, 1, 3],
            1,
            Act::PRelu,
        ),
        case(
            "pointwise 1x1 prelu",
            [1, 64, 30, 40],
            64,
            1,
            1,
            P0,
            1,
            Act::PRelu,
        ),
        case(
            "pointwise 1x1 large",
            [1, 64, 120, 160],
            64,
            1,
            1,
            P0,
            1,
            Act::None,
        ),
        case(
            "pointwise 1x1 to 1 channel",
            [1, 64, 20, 20],
            1,
            1,
            1,
            P0,
            1,
            Act::None,
        ),
        case("1x1 stride 2", [1, 16, 20, 21], 8, 1, 2, P0, 1, Act::Relu),
        case("1x1 padded", [1, 4, 5, 6], 6, 1, 1, P1, 1, Act::None),
        // Few taps per output (cin*kh*kw <= 32): the per-row kernel, with a partial 8-channel block and
        // rows longer than one 32-pixel block.
        case(
            "few taps 3x3 s1 prelu",
            [1, 3, 21, 37],
            10,
            3,
            1,
            P1,
            1,
            Act::PRelu,
        ),
        case(
            "few taps 2x2 s2 odd",
            [1, 8, 9, 71],
            17,
            2,
            2,
            P0,
            1,
            Act::Relu,
        ),
        case(
            "depthwise 3x3 s1",
            [1, 64, 30, 40],
            64,
            3,
            1,
            P1,
            64,
            Act::Relu,
        ),
        case(
            "depthwise 3x3 s1 large",
            [1, 64, 120, 160],
            64,
            3,
            1,
            P1,
            64,
            Act::Relu,
        ),
        case(
            "depthwise 3x3 s2 same-pad",
            [1, 32, 24, 24],
            32,
            3,
            2,
            SAME2,
            32,
            Act::PRelu,
        ),
        case(
            "depthwise 3x3 s2 pad1 odd",
            [1, 16, 25, 19],
            16,
            3,
            2,
            P1,
            16,
            Act::None,
        ),
        case(
            "depthwise 5x5 s1",
            [1, 24, 16, 20],
            24,
            5,
            1,
            [2, 2, 2, 2],
            24,
            Act::PRelu,
        ),
        case(
            "depthwise 5x5 s2",
            [1, 24, 17, 16],
            24,
            5,
            2,
            [1, 2, 2, 1],
            24,
            Act::Relu,
        ),
        case(
            "depthwise 5x5 1x1-output (GDC)",
            [1, 512, 5, 5],
            512,
            5,
            1,
            P0,
            512,
            Act::None,
        ),
        case("grouped 3x3", [1, 16, 12, 10], 32, 3, 1, P1, 4, Act::Relu),
        case("grouped 1x1", [1, 16, 12, 10], 16, 1, 1, P0, 2, Act::PRelu),
        case("batch of 2", [2, 8, 14, 15], 16, 3, 2, P1, 1, Act::Relu),
        Case {
            bias: false,
            ..case("no bias no act", [1, 8, 10, 10], 8, 3, 1, P1, 1, Act::None)
        },
        Case {
            bias: false,
            ..case(
                "depthwise no bias",
                [1, 8, 10, 10],
                8,
                3,
                1,
                P1,
                8,
                Act::None,
            )
        },
        Case {
            k: (1, 5),
            ..case(
                "non-square kernel",
                [1, 4, 9, 12],
                6,
                1,
                1,
                [0, 2, 0, 2],
                1,
                Act::Relu,
            )
        },
    ]
}

fn check_all(pool_threads: usize) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(pool_threads)
        .build()
        .unwrap();
    for (i, c) in cases().iter().enumerate() {
        let conv = layer(c, 100 + i as u64 * 7);
        let x = rand_tensor(&c.input, 1 + i as u64);
        let fast = pool.install(|| conv.forward(&x)).unwrap();
        let reference = conv.forward_reference(&x).unwrap();
        assert_close(
            &fast,
            &reference,
            &format!("{} ({pool_threads} threads)", c.name),
        );
    }
}

#[test]
fn conv_matches_candle_single_thread() {
    check_all(1);
}

#[test]
fn conv_matches_candle_two_threads() {
    check_all(2);
}

#[test]
fn conv_accepts_non_contiguous_input() {
    let c = case("t", [1, 8, 10, 12], 8, 3, 1, P1, 1, Act::Relu);
    let conv = layer(&c, 5);
    let x = rand_tensor(&[1, 8, 12, 10], 6).transpose(2, 3).unwrap();
    assert!(!x.is_contiguous());
    assert_close(
        &conv.forward(&x).unwrap(),
        &conv.forward_reference(&x).unwrap(),
        "transposed input",
    );
}

#[test]
fn conv_rejects_bad_shapes() {
    let c = case("t", [1, 8, 10, 12], 8, 3, 1, P0, 1, Act::Relu);
    let conv = layer(&c, 5);
    assert!(
        conv.forward(&rand_tensor(&[1, 7, 10, 12], 1)).is_err(),
        "wrong channel count"
    );
    assert!(
        conv.forward(&rand_tensor(&[1, 8, 2, 12], 1)).is_err(),
        "kernel taller than input"
    );
    let w = rand_tensor(&[8, 8, 3, 3], 1);
    let bad_bias = Conv2d::new(
        w.clone(),
        Some(rand_tensor(&[7], 2)),
        ConvCfg::new(1, 1, 1),
        Activation::None,
    );
    assert!(bad_bias.is_err());
    let bad_prelu = Conv2d::new(
        w.clone(),
        None,
        ConvCfg::new(1, 1, 1),
        Activation::PRelu(rand_tensor(&[3], 2)),
    );
    assert!(bad_prelu.is_err());
    assert!(
        Conv2d::new(w.clone(), None, ConvCfg::new(0, 1, 1), Activation::None).is_err(),
        "stride 0"
    );
    assert!(
        Conv2d::new(w, None, ConvCfg::new(1, 1, 3), Activation::None).is_err(),
        "groups not dividing"
    );
}

#[test]
fn prelu_and_affine_match_definition() {
    let x = rand_tensor(&[1, 5, 7, 9], 11);
    let a = rand_tensor(&[5], 12);
    let b = rand_tensor(&[5], 13);
    let xs = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let (av, bv) = (a.to_vec1::<f32>().unwrap(), b.to_vec1::<f32>().unwrap());
    let p = nn::prelu(&x, &a)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let f = nn::channel_affine(&x, &a, &b)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    for (i, v) in xs.iter().enumerate() {
        let c = i / 63;
        let want_p = if *v > 0.0 { *v } else { av[c] * v };
        assert!((p[i] - want_p).abs() <= 1e-6, "prelu at {i}");
        assert!((f[i] - (v * av[c] + bv[c])).abs() <= 1e-6, "affine at {i}");
    }
}

#[test]
fn pooling_and_upsampling_match_candle() {
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        for (i, dims) in [[1, 16, 64, 48], [1, 3, 7, 9], [2, 64, 20, 21]]
            .iter()
            .enumerate()
        {
            let x = rand_tensor(dims, 40 + i as u64);
            for (k, s) in [(2, 2), (3, 2), (3, 1)] {
                let fast = pool.install(|| nn::max_pool2d(&x, k, s)).unwrap();
                let want = x.max_pool2d_with_stride((k, k), (s, s)).unwrap();
                assert_close(
                    &fast,
                    &want,
                    &format!("max_pool {k}/{s} {dims:?} ({threads} threads)"),
                );
            }
            let fast = pool.install(|| nn::avg_pool2d(&x, 2)).unwrap();
            assert_close(
                &fast,
                &x.avg_pool2d(2).unwrap(),
                &format!("avg_pool {dims:?}"),
            );
            let (h, w) = (dims[2], dims[3]);
            let fast = pool.install(|| nn::upsample_nearest(&x, 2)).unwrap();
            let want = x.upsample_nearest2d(2 * h, 2 * w).unwrap();
            assert_close(&fast, &want, &format!("upsample {dims:?}"));
        }
    }
    let x = rand_tensor(&[1, 2, 3, 3], 1);
    assert!(
        nn::max_pool2d(&x, 4, 1).is_err(),
        "window larger than the input"
    );
    assert!(nn::avg_pool2d(&x, 0).is_err());
    assert!(nn::upsample_nearest(&x, 0).is_err());
    assert!(nn::prelu(&x, &rand_tensor(&[3], 2)).is_err(), "slope count");
}

#[test]
fn residual_add_matches_padded_candle_add() {
    let y = rand_tensor(&[2, 8, 6, 7], 70);
    let alpha = rand_tensor(&[8], 71);
    for (sdims, act) in [
        ([2, 8, 6, 7], Activation::Relu),
        ([2, 5, 6, 7], Activation::PRelu(alpha.clone())),
        ([2, 4, 5, 6], Activation::None),
    ] {
        let s = rand_tensor(&sdims, 72);
        let padded = s
            .pad_with_zeros(1, 0, 8 - sdims[1])
            .and_then(|t| t.pad_with_zeros(2, 0, 6 - sdims[2]))
            .and_then(|t| t.pad_with_zeros(3, 0, 7 - sdims[3]))
            .unwrap();
        let sum = (&y + &padded).unwrap();
        let want = match &act {
            Activation::None => sum,
            Activation::Relu => sum.relu().unwrap(),
            Activation::PRelu(a) => nn::prelu(&sum, a).unwrap(),
        };
        assert_close(
            &nn::add_residual(&y, &s, &act).unwrap(),
            &want,
            &format!("residual {sdims:?}"),
        );
    }
    assert!(nn::add_residual(&y, &rand_tensor(&[2, 9, 6, 7], 1), &Activation::None).is_err());
    assert!(nn::add_residual(&y, &rand_tensor(&[1, 8, 6, 7], 1), &Activation::None).is_err());
}

/// 1x1 conv + 3x3 depthwise fused (YuNet's block) against the two layers run by candle: channel counts
/// that do and do not fill the 8-channel blocks, rows shorter and longer than the 16-pixel blocks, batch 2,
/// with and without biases and ReLU, on 1 and 2 threads (the 2-thread pool splits rows into bands); and the
/// same with a 2x2 max-pool folded in, against candle's pool of the reference.
#[test]
fn pointwise_depthwise_fused_matches_candle() {
    let shapes: [([usize; 4], usize, bool, Act); 7] = [
        ([1, 16, 48, 64], 16, true, Act::Relu),
        ([1, 32, 30, 40], 64, true, Act::Relu),
        ([1, 64, 15, 20], 1, true, Act::None),
        ([1, 64, 15, 20], 10, false, Act::None),
        ([2, 3, 7, 5], 4, true, Act::PRelu),
        ([1, 8, 1, 1], 12, true, Act::Relu),
        ([1, 5, 66, 35], 9, true, Act::Relu),
    ];
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        for (i, (input, cout, bias, act)) in shapes.into_iter().enumerate() {
            let mut pc = case("pw", input, cout, 1, 1, P0, 1, Act::None);
            pc.bias = bias;
            let dc_in = [input[0], cout, input[2], input[3]];
            let dc = case("dw", dc_in, cout, 3, 1, P1, cout, act);
            let (pw, dw) = (layer(&pc, 300 + i as u64), layer(&dc, 400 + i as u64));
            let fused = nn::PointwiseDepthwise::fuse(&pw, &dw).expect("fusable pair");
            let x = rand_tensor(&input, 500 + i as u64);
            let fast = pool.install(|| fused.forward(&x)).unwrap();
            let reference = fused.forward_reference(&x).unwrap();
            assert_close(
                &fast,
                &reference,
                &format!("pw+dw {input:?} -> {cout} ({threads} threads)"),
            );
            // With a 2x2 max-pool folded in: candle's pool of the reference pair (odd sizes drop the last
            // row / column).
            if input[2] >= 2 && input[3] >= 2 {
                let pooled = fused.clone().with_max_pool2();
                assert!(pooled.pools() && !fused.pools());
                let fast = pool.install(|| pooled.forward(&x)).unwrap();
                let reference = reference.max_pool2d(2).unwrap();
                assert_eq!(
                    pooled.forward_reference(&x).unwrap().dims(),
                    reference.dims()
                );
                assert_close(
                    &fast,
                    &reference,
                    &format!("pw+dw+pool {input:?} -> {cout} ({threads} threads)"),
                );
            }
        }
    }
    // Not the pair: a 3x3 dense conv first, or a stride-2 depthwise conv second.
    let dense = layer(&case("d", [1, 8, 9, 9], 8, 3, 1, P1, 1, Act::None), 1);
    let dw = layer(&case("dw", [1, 8, 9, 9], 8, 3, 1, P1, 8, Act::Relu), 2);
    let pw = layer(&case("pw", [1, 8, 9, 9], 8, 1, 1, P0, 1, Act::None), 3);
    let dw2 = layer(&case("dw2", [1, 8, 9, 9], 8, 3, 2, P1, 8, Act::Relu), 4);
    assert!(nn::PointwiseDepthwise::fuse(&dense, &dw).is_none());
    assert!(nn::PointwiseDepthwise::fuse(&pw, &dw2).is_none());
    assert!(nn::PointwiseDepthwise::fuse(&pw, &dw).is_some());
}

/// Fused pairs reading the same input merged side by side (YuNet's four heads of 1, 1, 4 and 10 channels)
/// give the separate layers' outputs concatenated along channels; mismatched layers are refused.
#[test]
fn merged_heads_match_separate_layers() {
    let input = [1, 64, 15, 20];
    let x = rand_tensor(&input, 900);
    let mut separate = Vec::new();
    for (i, cout) in [1, 1, 4, 10].into_iter().enumerate() {
        let pc = case("pw", input, cout, 1, 1, P0, 1, Act::None);
        let dc = case("dw", [1, cout, 15, 20], cout, 3, 1, P1, cout, Act::None);
        let (pw, dw) = (layer(&pc, 910 + i as u64), layer(&dc, 920 + i as u64));
        separate.push(nn::PointwiseDepthwise::fuse(&pw, &dw).expect("fusable pair"));
    }
    let parts: Vec<&nn::PointwiseDepthwise> = separate.iter().collect();
    let merged = nn::PointwiseDepthwise::concat_outputs(&parts).expect("same input and kind");
    assert_eq!(merged.channels(), (64, 16));
    let want = Tensor::cat(
        &separate
            .iter()
            .map(|l| l.forward_reference(&x).unwrap())
            .collect::<Vec<_>>(),
        1,
    )
    .unwrap();
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let fast = pool.install(|| merged.forward(&x)).unwrap();
        assert_close(&fast, &want, &format!("merged heads ({threads} threads)"));
    }
    // A ReLU pair cannot join pairs without activation; different input channel counts cannot either.
    let relu = nn::PointwiseDepthwise::fuse(
        &layer(&case("pw", input, 4, 1, 1, P0, 1, Act::None), 930),
        &layer(&case("dw", [1, 4, 15, 20], 4, 3, 1, P1, 4, Act::Relu), 931),
    )
    .unwrap();
    assert!(nn::PointwiseDepthwise::concat_outputs(&[&separate[0], &relu]).is_none());
    let narrow = nn::PointwiseDepthwise::fuse(
        &layer(&case("pw", [1, 32, 15, 20], 4, 1, 1, P0, 1, Act::None), 940),
        &layer(&case("dw", [1, 4, 15, 20], 4, 3, 1, P1, 4, Act::None), 941),
    )
    .unwrap();
    assert!(nn::PointwiseDepthwise::concat_outputs(&[&separate[0], &narrow]).is_none());
}

/// A first conv (3x3 stride 2 over 3 channels, YuNet's first layer; also a 5x5 stride 1 one) run inside the
/// fused pair, with and without the max-pool, against the three or four layers run by candle; even and odd
/// sizes, 1 and 2 threads. Layers that cannot join are refused.
#[test]
fn input_conv_fused_matches_candle() {
    let firsts = [
        ([1, 3, 48, 64], 3, 2, P1, Act::Relu),
        ([1, 3, 37, 29], 3, 2, P1, Act::Relu),
        ([2, 1, 20, 18], 5, 1, [2, 2, 2, 2], Act::None),
    ];
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        for (i, (input, k, stride, pad, act)) in firsts.into_iter().enumerate() {
            let seed = 1000 + 10 * i as u64;
            let first = layer(&case("first", input, 16, k, stride, pad, 1, act), seed);
            let x = rand_tensor(&input, seed + 1);
            let mid = first.forward_reference(&x).unwrap().dims().to_vec();
            let pc = case(
                "pw",
                [mid[0], 16, mid[2], mid[3]],
                24,
                1,
                1,
                P0,
                1,
                Act::None,
            );
            let dc = case(
                "dw",
                [mid[0], 24, mid[2], mid[3]],
                24,
                3,
                1,
                P1,
                24,
                Act::Relu,
            );
            let pair =
                nn::PointwiseDepthwise::fuse(&layer(&pc, seed + 2), &layer(&dc, seed + 3)).unwrap();
            for pooled in [false, true] {
                let base = if pooled {
                    pair.clone().with_max_pool2()
                } else {
                    pair.clone()
                };
                let fused = base.with_input_conv(&first).expect("a first conv joins");
                assert!(fused.has_input_conv());
                assert_eq!(fused.channels(), (input[1], 24));
                let fast = pool.install(|| fused.forward(&x)).unwrap();
                let mut want = pair.forward_reference(&first.forward_reference(&x).unwrap());
                if pooled {
                    want = want.and_then(|y| y.max_pool2d(2));
                }
                let want = want.unwrap();
                assert_eq!(fused.forward_reference(&x).unwrap().dims(), want.dims());
                assert_close(
                    &fast,
                    &want,
                    &format!("conv+pw+dw {input:?} pool {pooled} ({threads} threads)"),
                );
            }
        }
    }
    // Too many taps (8 channels x 3x3 = 72), wrong channel count, or a second first conv: refused.
    let pc = case("pw", [1, 16, 10, 10], 8, 1, 1, P0, 1, Act::None);
    let dc = case("dw", [1, 8, 10, 10], 8, 3, 1, P1, 8, Act::Relu);
    let pair = nn::PointwiseDepthwise::fuse(&layer(&pc, 1), &layer(&dc, 2)).unwrap();
    let wide = layer(&case("wide", [1, 8, 20, 20], 16, 3, 2, P1, 1, Act::Relu), 3);
    assert!(pair.clone().with_input_conv(&wide).is_none());
    let narrow = layer(
        &case("narrow", [1, 3, 20, 20], 8, 3, 2, P1, 1, Act::Relu),
        4,
    );
    assert!(pair.clone().with_input_conv(&narrow).is_none());
    let ok = layer(&case("ok", [1, 3, 20, 20], 16, 3, 2, P1, 1, Act::Relu), 5);
    let once = pair.with_input_conv(&ok).unwrap();
    assert!(once.with_input_conv(&ok).is_none());
}

/// An FPN merge (`lateral + nearest_upsample_2x(small)`) made row by row inside the fused pair, with and
/// without the max-pool, against candle's upsample, add and the reference pair; 1 and 2 threads. A `small`
/// map of the wrong size is refused.
#[test]
fn upsample_add_fused_matches_candle() {
    for (i, (lateral, cout)) in [([1, 64, 30, 40], 64), ([2, 12, 14, 6], 20)]
        .into_iter()
        .enumerate()
    {
        let seed = 2000 + 10 * i as u64;
        let [n, c, h, w] = lateral;
        let pc = case("pw", lateral, cout, 1, 1, P0, 1, Act::None);
        let dc = case("dw", [n, cout, h, w], cout, 3, 1, P1, cout, Act::Relu);
        let pair = nn::PointwiseDepthwise::fuse(&layer(&pc, seed), &layer(&dc, seed + 1)).unwrap();
        let lat = rand_tensor(&lateral, seed + 2);
        let small = rand_tensor(&[n, c, h / 2, w / 2], seed + 3);
        let sum = (&lat + small.upsample_nearest2d(h, w).unwrap()).unwrap();
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            for pooled in [false, true] {
                let l = if pooled {
                    pair.clone().with_max_pool2()
                } else {
                    pair.clone()
                };
                let fast = pool
                    .install(|| l.forward_upsample2_add(&lat, &small))
                    .unwrap();
                let want = l.forward_reference(&sum).unwrap();
                let reference = l.forward_upsample2_add_reference(&lat, &small).unwrap();
                assert_close(&reference, &want, "reference forms");
                assert_close(
                    &fast,
                    &want,
                    &format!("upsample+add+pw+dw {lateral:?} pool {pooled} ({threads} threads)"),
                );
            }
        }
        let wrong = rand_tensor(&[n, c, h / 2, w / 2 + 1], seed + 4);
        assert!(pair.forward_upsample2_add(&lat, &wrong).is_err());
    }
}
