#!/usr/bin/env python3
"""Convert MediaPipe FaceMesh (face_landmark.tflite) into models/facemesh.safetensors for facegate.

Source: PyPI wheel mediapipe==0.10.14, path mediapipe/modules/face_landmark/face_landmark.tflite
(Apache-2.0, sha256 1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814).

The TFLite file stores fp16 weights behind DEQUANTIZE ops. This script reads them with the `tflite`
flatbuffer parser, renames them after the fixed architecture in src/vision/landmarks/ (see `LAYERS` below),
transposes TFLite's NHWC kernels to candle's OIHW layout and writes them as f16 (lossless: the originals are
fp16). Before writing, it checks that every operator of the graph is accounted for and that a numpy forward
pass of the renamed weights reproduces the TFLite interpreter on random inputs, so the Rust architecture and
this naming cannot drift apart silently.

Run: /var/cache/facegate/pyref/bin/python models/convert_facemesh.py [TFLITE] [OUT]
"""

import hashlib
import json
import struct
import sys
from pathlib import Path

import numpy as np
import tflite

TFLITE_SHA256 = "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814"
DEFAULT_SRC = "/var/cache/facegate/dl/mediapipe/modules/face_landmark/face_landmark.tflite"
DEFAULT_OUT = str(Path(__file__).resolve().parent / "facemesh.safetensors")

# Residual block: depthwise 3x3 (stride s) -> 1x1 conv -> + shortcut -> PReLU. The shortcut is the input
# (stride 1) or a 2x2 max-pool of it (stride 2), zero-padded in channels when the 1x1 conv widens.
# (our name, depthwise layer, 1x1 layer, prelu layer, stride)
BACKBONE = [
    ("backbone.0", "depthwise_conv2d_1", "conv2d_2", "p_re_lu_2", 1),
    ("backbone.1", "depthwise_conv2d_2", "conv2d_3", "p_re_lu_3", 1),
    ("backbone.2", "depthwise_conv2d_3", "conv2d_4", "p_re_lu_4", 2),
    ("backbone.3", "depthwise_conv2d_4", "conv2d_5", "p_re_lu_5", 1),
    ("backbone.4", "depthwise_conv2d_5", "conv2d_6", "p_re_lu_6", 1),
    ("backbone.5", "depthwise_conv2d_6", "conv2d_7", "p_re_lu_7", 2),
    ("backbone.6", "depthwise_conv2d_7", "conv2d_8", "p_re_lu_8", 1),
    ("backbone.7", "depthwise_conv2d_8", "conv2d_9", "p_re_lu_9", 1),
    ("backbone.8", "depthwise_conv2d_9", "conv2d_10", "p_re_lu_10", 2),
    ("backbone.9", "depthwise_conv2d_10", "conv2d_11", "p_re_lu_11", 1),
    ("backbone.10", "depthwise_conv2d_11", "conv2d_12", "p_re_lu_12", 1),
    ("backbone.11", "depthwise_conv2d_12", "conv2d_13", "p_re_lu_13", 2),
    ("backbone.12", "depthwise_conv2d_13", "conv2d_14", "p_re_lu_14", 1),
    ("backbone.13", "depthwise_conv2d_14", "conv2d_15", "p_re_lu_15", 1),
]
# Landmark head (from the 6x6 backbone output): three blocks, a 1x1 reduction to 32 channels + PReLU, one
# block, then a 3x3 VALID stride-3 conv to 1404 = 468 x (x, y, z).
MESH_BLOCKS = [
    ("mesh.block0", "depthwise_conv2d_15", "conv2d_16", "p_re_lu_16", 2),
    ("mesh.block1", "depthwise_conv2d_16", "conv2d_17", "p_re_lu_17", 1),
    ("mesh.block2", "depthwise_conv2d_17", "conv2d_18", "p_re_lu_18", 1),
]
MESH_REDUCE = ("mesh.reduce", "conv2d_19", "p_re_lu_19")
MESH_BLOCK3 = ("mesh.block3", "depthwise_conv2d_18", "conv2d_20", "p_re_lu_20", 1)
MESH_OUT = ("mesh.out", "conv2d_21")
# Face-presence head: the same shape with one block before the reduction and a 1-channel output (a logit).
FACE_BLOCK0 = ("face.block0", "depthwise_conv2d_23", "conv2d_28", "p_re_lu_26", 2)
FACE_REDUCE = ("face.reduce", "conv2d_29", "p_re_lu_27")
FACE_BLOCK1 = ("face.block1", "depthwise_conv2d_24", "conv2d_30", "p_re_lu_28", 1)
FACE_OUT = ("face.out", "conv2d_31")
STEM = ("stem", "conv2d_1", "p_re_lu_1")

OPS = {v: k for k, v in tflite.BuiltinOperator.__dict__.items() if not k.startswith("_")}


def read_constants(buf):
    """All constant tensors of the graph by name, as float32 numpy arrays in TFLite layout."""
    model = tflite.Model.GetRootAsModel(buf, 0)
    g = model.Subgraphs(0)
    consts = {}
    op_counts = {}
    for k in range(g.OperatorsLength()):
        op = g.Operators(k)
        code = model.OperatorCodes(op.OpcodeIndex())
        name = OPS[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        op_counts[name] = op_counts.get(name, 0) + 1
        if name != "DEQUANTIZE":
            continue
        t = g.Tensors(op.Inputs(0))
        assert t.Type() == tflite.TensorType.FLOAT16, t.Name()
        data = model.Buffers(t.Buffer()).DataAsNumpy().tobytes()
        arr = np.frombuffer(data, dtype="<f2").reshape(t.ShapeAsNumpy()).astype(np.float32)
        consts[t.Name().decode()] = arr
    return consts, op_counts


def convert(consts):
    """Our tensor name -> float32 array in candle layout (OIHW kernels, flat biases and PReLU slopes)."""
    out = {}
    used = set()

    def take(name):
        used.add(name)
        return consts[name]

    def conv(ours, layer):
        out[f"{ours}.weight"] = take(f"{layer}/Kernel").transpose(0, 3, 1, 2)  # OHWI -> OIHW
        out[f"{ours}.bias"] = take(f"{layer}/Bias")

    def dw(ours, layer):
        out[f"{ours}.weight"] = take(f"{layer}/Kernel").transpose(3, 0, 1, 2)  # 1HWC -> C1HW
        out[f"{ours}.bias"] = take(f"{layer}/Bias")

    def prelu(ours, layer):
        out[f"{ours}.alpha"] = take(f"{layer}/Alpha").reshape(-1)

    def block(spec):
        ours, dwl, pwl, prl, _stride = spec
        dw(f"{ours}.dw", dwl)
        conv(f"{ours}.pw", pwl)
        prelu(ours, prl)

    conv(STEM[0], STEM[1])
    prelu(STEM[0], STEM[2])
    for spec in BACKBONE + MESH_BLOCKS + [MESH_BLOCK3, FACE_BLOCK0, FACE_BLOCK1]:
        block(spec)
    for ours, cl, prl in (MESH_REDUCE, FACE_REDUCE):
        conv(ours, cl)
        prelu(ours, prl)
    for ours, cl in (MESH_OUT, FACE_OUT):
        conv(ours, cl)
    missing = set(consts) - used
    assert not missing, f"constants not mapped: {sorted(missing)}"
    return {k: np.ascontiguousarray(v) for k, v in out.items()}


# ---- numpy forward of the converted weights (NCHW), mirroring the Rust model ----

def conv2d(x, w, b, stride, pad):
    """Plain conv, x (C,H,W), w (O,I/g,kh,kw); groups inferred (depthwise when I/g == 1 and O == C)."""
    t, l, bo, r = pad
    x = np.pad(x, ((0, 0), (t, bo), (l, r)))
    c, h, wd = x.shape
    o, ig, kh, kw = w.shape
    oh = (h - kh) // stride + 1
    ow = (wd - kw) // stride + 1
    cols = np.empty((c, kh, kw, oh, ow), np.float32)
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = x[:, i : i + stride * oh : stride, j : j + stride * ow : stride]
    if ig == 1 and o == c and c > 1:
        y = np.einsum("cijhw,cij->chw", cols, w[:, 0])
    else:
        y = np.einsum("cijhw,ocij->ohw", cols, w)
    return y + b[:, None, None]


def same_pad(size, k, s):
    """TFLite SAME padding as (before, after): the extra pixel goes after."""
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def prelu_np(x, a):
    return np.where(x > 0, x, x * a[:, None, None])


def block_np(x, W, ours, stride):
    pb, pa = same_pad(x.shape[1], 3, stride)
    y = conv2d(x, W[f"{ours}.dw.weight"], W[f"{ours}.dw.bias"], stride, (pb, pb, pa, pa))
    y = conv2d(y, W[f"{ours}.pw.weight"], W[f"{ours}.pw.bias"], 1, (0, 0, 0, 0))
    sc = x
    if stride == 2:
        c, h, w = x.shape
        sc = x.reshape(c, h // 2, 2, w // 2, 2).max(axis=(2, 4))
    if y.shape[0] > sc.shape[0]:
        sc = np.pad(sc, ((0, y.shape[0] - sc.shape[0]), (0, 0), (0, 0)))
    return prelu_np(y + sc, W[f"{ours}.alpha"])


def forward_np(W, img):
    """img (192,192,3) in [0,1] -> (1404 values, face logit)."""
    x = img.transpose(2, 0, 1).astype(np.float32)
    pb, pa = same_pad(192, 3, 2)
    x = prelu_np(conv2d(x, W["stem.weight"], W["stem.bias"], 2, (pb, pb, pa, pa)), W["stem.alpha"])
    for ours, *_l, s in BACKBONE:
        x = block_np(x, W, ours, s)
    m = x
    for ours, *_l, s in MESH_BLOCKS:
        m = block_np(m, W, ours, s)
    m = prelu_np(conv2d(m, W["mesh.reduce.weight"], W["mesh.reduce.bias"], 1, (0,) * 4), W["mesh.reduce.alpha"])
    m = block_np(m, W, MESH_BLOCK3[0], 1)
    m = conv2d(m, W["mesh.out.weight"], W["mesh.out.bias"], 3, (0,) * 4)
    f = block_np(x, W, FACE_BLOCK0[0], 2)
    f = prelu_np(conv2d(f, W["face.reduce.weight"], W["face.reduce.bias"], 1, (0,) * 4), W["face.reduce.alpha"])
    f = block_np(f, W, FACE_BLOCK1[0], 1)
    f = conv2d(f, W["face.out.weight"], W["face.out.bias"], 3, (0,) * 4)
    return m.reshape(-1), float(f.reshape(-1)[0])


def check_against_tflite(path, W):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=path)
    it.allocate_tensors()
    inp = it.get_input_details()[0]["index"]
    outs = {d["name"]: d["index"] for d in it.get_output_details()}
    rng = np.random.default_rng(7)
    worst = 0.0
    for _ in range(3):
        img = rng.random((192, 192, 3), dtype=np.float32)
        it.set_tensor(inp, img[None])
        it.invoke()
        ref_pts = it.get_tensor(outs["conv2d_21"]).reshape(-1)
        ref_face = float(it.get_tensor(outs["conv2d_31"]).reshape(-1)[0])
        pts, face = forward_np(W, img)
        worst = max(worst, float(np.abs(pts - ref_pts).max()), abs(face - ref_face))
    assert worst < 1e-3, f"numpy forward differs from TFLite by {worst}"
    return worst


def write_safetensors(path, tensors, metadata):
    """The safetensors format by hand: u64 header length, JSON header, raw little-endian data."""
    header = {"__metadata__": metadata}
    blobs = []
    off = 0
    for name in sorted(tensors):
        data = tensors[name].astype("<f2").tobytes()
        header[name] = {
            "dtype": "F16",
            "shape": list(tensors[name].shape),
            "data_offsets": [off, off + len(data)],
        }
        blobs.append(data)
        off += len(data)
    hjson = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    hjson += b" " * (-len(hjson) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_SRC
    out = sys.argv[2] if len(sys.argv) > 2 else DEFAULT_OUT
    buf = open(src, "rb").read()
    digest = hashlib.sha256(buf).hexdigest()
    assert digest == TFLITE_SHA256, f"{src}: sha256 {digest}, expected {TFLITE_SHA256}"
    consts, op_counts = read_constants(buf)
    expected_ops = {"DEQUANTIZE": 113, "CONV_2D": 25, "DEPTHWISE_CONV_2D": 20, "PRELU": 23, "ADD": 20,
                    "MAX_POOL_2D": 6, "PAD": 3}
    assert op_counts == expected_ops, op_counts
    W = convert(consts)
    worst = check_against_tflite(src, W)
    n = sum(v.size for v in W.values())
    write_safetensors(out, W, {
        "source": "PyPI mediapipe==0.10.14 mediapipe/modules/face_landmark/face_landmark.tflite",
        "source_sha256": TFLITE_SHA256,
        "licence": "Apache-2.0",
        "converter": "models/convert_facemesh.py",
    })
    sha = hashlib.sha256(open(out, "rb").read()).hexdigest()
    print(f"{len(W)} tensors, {n} values; numpy vs TFLite max diff {worst:.2e}")
    print(f"wrote {out}\nsha256 {sha}")


if __name__ == "__main__":
    main()
