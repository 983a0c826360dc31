//! Conv kernels: candle's own conv2d (`Conv2d::forward_reference`) against facegate's kernels
//! (`Conv2d::forward`), on the layer shapes of the four models.
//!
//! Run: `cargo bench --bench kernels` (threads: `RAYON_NUM_THREADS=1|2`). Each id is `<shape>/<path>`.

use candle_core::{Device, Module, Tensor};
use criterion::{criterion_group, criterion_main, Criterion};
use facegate::vision::nn::{Activation, Conv2d, ConvCfg};

/// One benchmarked layer: name, input (C, H, W), output channels, kernel, stride, padding, groups.
struct Shape {
    name: &'static str,
    input: [usize; 3],
    cout: usize,
    k: usize,
    stride: usize,
    pad: usize,
    groups: usize,
}

const fn s(
    name: &'static str,
    input: [usize; 3],
    cout: usize,
    k: usize,
    stride: usize,
    pad: usize,
    groups: usize,
) -> Shape {
    Shape {
        name,
        input,
        cout,
        k,
        stride,
        pad,
        groups,
    }
}

const SHAPES: &[Shape] = &[
    s(
        "yunet_stem_3x3s2_3to16_480x640",
        [3, 480, 640],
        16,
        3,
        2,
        1,
        1,
    ),
    s("yunet_1x1_64_120x160", [64, 120, 160], 64, 1, 1, 0, 1),
    s("yunet_dw3x3_64_120x160", [64, 120, 160], 64, 3, 1, 1, 64),
    s("dlib_stem_7x7s2_3to32_150", [3, 150, 150], 32, 7, 2, 0, 1),
    s("dlib_3x3_32_36x36", [32, 36, 36], 32, 3, 1, 1, 1),
    s("dlib_3x3s2_32to64_36x36", [32, 36, 36], 64, 3, 2, 0, 1),
    s("dlib_3x3_64_18x18", [64, 18, 18], 64, 3, 1, 1, 1),
    s("dlib_3x3_128_9x9", [128, 9, 9], 128, 3, 1, 1, 1),
    s("dlib_3x3_256_5x5", [256, 5, 5], 256, 3, 1, 1, 1),
    s("facemesh_dw3x3_32_96x96", [32, 96, 96], 32, 3, 1, 1, 32),
    s("facemesh_1x1_16to32_96x96", [16, 96, 96], 32, 1, 1, 0, 1),
    s("minifas_dw3x3_64_20x20", [64, 20, 20], 64, 3, 1, 1, 64),
    s(
        "minifas_dw3x3s2_128_20x20",
        [128, 20, 20],
        128,
        3,
        2,
        1,
        128,
    ),
    s("minifas_1x1_64to128_20x20", [64, 20, 20], 128, 1, 1, 0, 1),
    s("minifas_gdc_dw5x5_512_5x5", [512, 5, 5], 512, 5, 1, 0, 512),
];

fn tensor(shape: &[usize], seed: u32) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|i| {
            ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8) as f32
                / (1u32 << 24) as f32
                - 0.5
        })
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("conv");
    g.sample_size(10);
    g.warm_up_time(std::time::Duration::from_millis(300));
    g.measurement_time(std::time::Duration::from_secs(1));
    for sh in SHAPES {
        let w = tensor(&[sh.cout, sh.input[0] / sh.groups, sh.k, sh.k], 1);
        let b = tensor(&[sh.cout], 2);
        let conv = Conv2d::new(
            w,
            Some(b),
            ConvCfg::new(sh.stride, sh.pad, sh.groups),
            Activation::Relu,
        )
        .unwrap();
        let x = tensor(&[1, sh.input[0], sh.input[1], sh.input[2]], 3);
        g.bench_function(format!("{}/candle", sh.name), |bch| {
            bch.iter(|| conv.forward_reference(&x).unwrap())
        });
        g.bench_function(format!("{}/fast", sh.name), |bch| {
            bch.iter(|| conv.forward(&x).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
