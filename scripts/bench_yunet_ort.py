#!/usr/bin/env python3
"""onnxruntime timing of YuNet on the frames `facegate bench` uses, for the side-by-side comparison.

Frames are built like facegate's bench (src/bench/frames.rs): the photo scaled (bilinear) to cover the size,
centre-cropped. Then as facegate's detector prepares them: scaled down (bilinear, aspect kept) to fit
640x640 if larger, BGR, NCHW float32 0..255, zero-padded bottom/right to multiples of 32. The model is
yunet_s_dynamic.onnx (the same network as yunet_s_640_640.onnx with free input size). Timed: the
onnxruntime session.run alone (median / p95 over --runs after --warmup), with intra_op_num_threads = the
thread count and sequential execution. Pixel values differ from facegate's frames only by resampling
rounding, which does not change a convolutional network's run time.

    /var/cache/facegate/pyref/bin/python scripts/bench_yunet_ort.py --models ../shared/models [--json]
"""

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

MAX_INPUT = (640, 640)


def cover(img, w, h):
    scale = max(w / img.width, h / img.height)
    sw, sh = max(round(img.width * scale), w), max(round(img.height * scale), h)
    if (sw, sh) != img.size:
        img = img.resize((sw, sh), Image.BILINEAR)
    x0, y0 = (sw - w) // 2, (sh - h) // 2
    return img.crop((x0, y0, x0 + w, y0 + h))


def network_input(frame):
    w, h = frame.size
    if w > MAX_INPUT[0] or h > MAX_INPUT[1]:
        s = min(MAX_INPUT[0] / w, MAX_INPUT[1] / h)
        frame = frame.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BILINEAR)
    a = np.asarray(frame, dtype=np.float32)[:, :, ::-1]  # RGB -> BGR
    ph, pw = math.ceil(a.shape[0] / 32) * 32, math.ceil(a.shape[1] / 32) * 32
    x = np.zeros((1, 3, ph, pw), dtype=np.float32)
    x[0, :, : a.shape[0], : a.shape[1]] = a.transpose(2, 0, 1)
    return x


def stats(samples):
    s = sorted(samples)
    n = len(s)
    median = s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
    return {"runs": n, "median_ms": median, "p95_ms": s[min(n, max(1, math.ceil(0.95 * n))) - 1],
            "mean_ms": sum(s) / n, "min_ms": s[0]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", required=True, help="folder with yunet_s_dynamic.onnx")
    ap.add_argument("--image", required=True)
    ap.add_argument("--sizes", default="640x480,1280x720")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    photo = Image.open(args.image).convert("RGB")
    out = {"onnxruntime": ort.__version__, "model": "yunet_s_dynamic.onnx", "results": []}
    for t in [int(v) for v in args.threads.split(",")]:
        so = ort.SessionOptions()
        so.intra_op_num_threads = t
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        sess = ort.InferenceSession(str(Path(args.models) / "yunet_s_dynamic.onnx"), so,
                                    providers=["CPUExecutionProvider"])
        for size in args.sizes.split(","):
            w, h = (int(v) for v in size.split("x"))
            x = network_input(cover(photo, w, h))
            for _ in range(args.warmup):
                sess.run(None, {"input": x})
            samples = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                sess.run(None, {"input": x})
                samples.append((time.perf_counter() - t0) * 1e3)
            out["results"].append({"threads": t, "width": w, "height": h,
                                   "input": [x.shape[3], x.shape[2]], "run": stats(samples)})
    if args.json:
        print(json.dumps(out))
    else:
        for r in out["results"]:
            print(f"{r['threads']} thr {r['width']}x{r['height']} (net {r['input'][0]}x{r['input'][1]}): "
                  f"median {r['run']['median_ms']:.2f} ms, p95 {r['run']['p95_ms']:.2f} ms")


if __name__ == "__main__":
    main()
