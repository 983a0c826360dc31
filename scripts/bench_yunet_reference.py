#!/usr/bin/env python3
"""YuNet detection latency: facegate (candle) next to onnxruntime, same images, same run, 1 and 2 threads.

Run from the repository root with the reference venv:

    /var/cache/facegate/pyref/bin/python scripts/bench_yunet_reference.py [--runs N] [--json] [--no-build]

Cases: a 640x480 scene (network input 640x480) and a 1280x720 frame, the latter both at full size (network
1280x736) and as facegate runs it by default (scaled to 640x360, network 640x384). Threads: onnxruntime's
intra_op_num_threads (inter_op 1, sequential) vs RAYON_NUM_THREADS for facegate.

What is timed: onnxruntime = `session.run` on the prepared input tensor (the network only, its best case);
facegate = `Detector::detect` from an RgbImage (conversion, optional downscale, network, decode, NMS),
measured inside `examples/bench_yunet.rs`. Both report the median of N runs after warm-up.
"""

import argparse
import json
import os
import statistics
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
from PIL import Image

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
SHARED = os.environ.get("FACEGATE_SHARED") or os.path.normpath(os.path.join(ROOT, "../shared"))
TARGET = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
MODEL = os.path.join(SHARED, "models/yunet_s_640_640.onnx")

# (label, image under faces/, facegate max input (w, h))
CASES = [
    ("640x480", "negatives/people_scenes/coco_000000005001.jpg", (640, 640)),
    ("1280x720 full", "misc/face_recognition/examples_obama-720p.jpg", (1280, 736)),
    ("1280x720 default limit", "misc/face_recognition/examples_obama-720p.jpg", (640, 640)),
]
THREADS = (1, 2)


def session(threads):
    model = onnx.load(MODEL)
    # The graph is size-agnostic (reshapes use -1); only the declared input/output shapes are fixed at 640.
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "height", "width"
    for out in model.graph.output:
        out.type.tensor_type.shape.dim[1].dim_param = "cells"
    del model.graph.value_info[:]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def network_input(path, max_wh):
    """The same network input facegate builds: fit within max_wh (bilinear), BGR NCHW, zero-pad to 32."""
    img = Image.open(path).convert("RGB")
    w, h = img.size
    s = min(max_wh[0] / w, max_wh[1] / h)
    if s < 1:
        img = img.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BILINEAR)
    rgb = np.asarray(img)
    h, w, _ = rgb.shape
    x = np.zeros((1, 3, -(-h // 32) * 32, -(-w // 32) * 32), np.float32)
    x[0, :, :h, :w] = rgb[:, :, ::-1].transpose(2, 0, 1)
    return x


def time_ort(sess, x, runs):
    for _ in range(3):
        sess.run(None, {"input": x})
    ms = []
    for _ in range(runs):
        t = time.perf_counter()
        sess.run(None, {"input": x})
        ms.append((time.perf_counter() - t) * 1e3)
    return statistics.median(ms)


def time_facegate(binary, path, max_wh, threads, runs):
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads), FACEGATE_MODELS=os.path.join(SHARED, "models"))
    out = subprocess.run([binary, path, str(max_wh[0]), str(max_wh[1]), str(runs)], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--json", action="store_true", help="one JSON object per case and thread count")
    ap.add_argument("--no-build", action="store_true", help="use the already built example")
    args = ap.parse_args()
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--example", "bench_yunet"], cwd=ROOT, check=True)
    # The target folder may be shared by several checkouts: run a private copy of what was just built.
    tmp = tempfile.mkdtemp(prefix="bench_yunet.")
    binary = shutil.copy(os.path.join(TARGET, "release/examples/bench_yunet"), tmp)
    try:
        rows = run_cases(binary, args.runs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print_rows(rows, args.json)


def run_cases(binary, runs):
    rows = []
    for threads in THREADS:
        sess = session(threads)
        for label, rel, max_wh in CASES:
            path = os.path.join(SHARED, "faces", rel)
            x = network_input(path, max_wh)
            ort_ms = time_ort(sess, x, runs)
            fg = time_facegate(binary, path, max_wh, threads, runs)
            assert fg["network_wh"] == [x.shape[3], x.shape[2]], (fg, x.shape)
            rows.append({"case": label, "network_wh": fg["network_wh"], "threads": threads,
                         "onnxruntime_ms": round(ort_ms, 2), "facegate_ms": round(fg["median_ms"], 2),
                         "ratio": round(fg["median_ms"] / ort_ms, 2), "onnxruntime": ort.__version__})
    return rows


def print_rows(rows, as_json):
    if as_json:
        for r in rows:
            print(json.dumps(r))
        return
    print(f"{'case':<24} {'network':>9} {'thr':>3} {'onnxruntime ms':>15} {'facegate ms':>12} {'ratio':>6}")
    for r in rows:
        wh = "x".join(map(str, r["network_wh"]))
        print(f"{r['case']:<24} {wh:>9} {r['threads']:>3} {r['onnxruntime_ms']:>15.2f} {r['facegate_ms']:>12.2f} "
              f"{r['ratio']:>6.2f}")


if __name__ == "__main__":
    sys.exit(main())
