//! The four networks end to end on one real frame (640x480, cut from `misc/face_recognition` in
//! `../shared/faces`), each stage alone and the whole per-frame pipeline: YuNet detect at 640x480,
//! FaceMesh on the face, dlib chip + embedding, both MiniFASNets.
//!
//! Run: `FACEGATE_SHARED=/path/to/shared cargo bench --bench models` (threads: `RAYON_NUM_THREADS=1|2`).

#[path = "../tests/common/mod.rs"]
mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use facegate::imageio::load_image;
use facegate::vision::antispoof::AntiSpoof;
use facegate::vision::detect::Detector;
use facegate::vision::embed::Embedder;
use facegate::vision::landmarks::FaceMesh;
use facegate::vision::{align, Detection};
use image::RgbImage;

const THRESHOLD: f32 = 0.6;

fn frame() -> RgbImage {
    let img = load_image(common::face(
        "misc/face_recognition/examples_obama-480p.jpg",
    ))
    .unwrap();
    let x0 = (img.width() - 640) / 2;
    image::imageops::crop_imm(&img, x0, 0, 640, 480).to_image()
}

fn bench(c: &mut Criterion) {
    let store = common::models();
    let detector = Detector::load(&store).unwrap().with_max_input(640, 480);
    let mesh = FaceMesh::load(&store).unwrap();
    let embedder = Embedder::load(&store).unwrap();
    let spoof = AntiSpoof::load(&store).unwrap();
    let img = frame();
    let faces = detector.detect(&img, THRESHOLD).unwrap();
    let face: Detection = faces.first().expect("the frame shows a face").clone();
    let chip = align::chip(&img, &face);

    let mut g = c.benchmark_group("models");
    g.sample_size(20);
    g.warm_up_time(std::time::Duration::from_millis(500));
    g.measurement_time(std::time::Duration::from_secs(2));
    g.bench_function("yunet_640x480", |b| {
        b.iter(|| detector.detect(&img, THRESHOLD).unwrap())
    });
    g.bench_function("facemesh_192", |b| {
        b.iter(|| mesh.landmarks(&img, &face).unwrap())
    });
    g.bench_function("dlib_resnet_150", |b| {
        b.iter(|| embedder.embed(&chip).unwrap())
    });
    g.bench_function("minifasnet_v2_v1se_80", |b| {
        b.iter(|| spoof.score(&img, &face).unwrap())
    });
    g.bench_function("pipeline_one_face", |b| {
        b.iter(|| {
            let faces = detector.detect(&img, THRESHOLD).unwrap();
            let f = &faces[0];
            let marks = mesh.landmarks(&img, f).unwrap();
            let emb = embedder.embed(&align::chip(&img, f)).unwrap();
            let live = spoof.score(&img, f).unwrap();
            (marks, emb, live)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
