#!/usr/bin/env python3
"""A ViT/DeiT forward pass and top-k token pruning in numpy, written from docs/trace-format.md.

It runs cases of vitprune's conformance suite and writes a trace bundle for each, which
`vitprune check CASE OUT/CASE` compares with the expected one:

    python3 port.py fixtures/conformance/cases/*.dense fixtures/conformance/cases/*.topk-* --out /tmp/numpy-port
    npx vitprune check fixtures/conformance/cases/timm-d9-h3.smooth.topk-1 /tmp/numpy-port/timm-d9-h3.smooth.topk-1

Options: --dtype float64|float32 (the arithmetic; default float64), --break softmax-f16|topk-tiebreak
(deliberate bugs, to see the checker name them). Cases of other methods are skipped with a line.
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np

DTYPES = {"F64": np.float64, "F32": np.float32, "I32": np.int32}


def read_safetensors(path):
    """{name: array} from a safetensors file (8-byte header length, JSON header, data)."""
    with open(path, "rb") as f:
        data = f.read()
    (header_length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_length])
    start = 8 + header_length
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if entry["dtype"] not in DTYPES:
            sys.exit(f"{path}: tensor {name}: dtype {entry['dtype']} is not supported here")
        begin, end = entry["data_offsets"]
        dtype = np.dtype(DTYPES[entry["dtype"]]).newbyteorder("<")
        tensors[name] = np.frombuffer(data[start + begin : start + end], dtype=dtype).reshape(entry["shape"])
    return tensors


def write_safetensors(path, tensors):
    """Write {name: array} (float64, float32 or int32) as safetensors, in insertion order."""
    names = {np.dtype(np.float64): "F64", np.dtype(np.float32): "F32", np.dtype(np.int32): "I32"}
    header, offset, blobs = {"__metadata__": {"format": "vitprune-trace"}}, 0, []
    for name, array in tensors.items():
        blob = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": names[array.dtype], "shape": list(array.shape), "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def load_weights(folder, layout):
    """The weights under timm names; ViTForImageClassification names (query, key, value apart) are mapped onto them."""
    w = read_safetensors(os.path.join(folder, "model.safetensors"))
    if layout == "timm":
        return w
    top = {
        "cls_token": "vit.embeddings.cls_token", "pos_embed": "vit.embeddings.position_embeddings",
        "patch_embed.proj.weight": "vit.embeddings.patch_embeddings.projection.weight",
        "patch_embed.proj.bias": "vit.embeddings.patch_embeddings.projection.bias",
        "norm.weight": "vit.layernorm.weight", "norm.bias": "vit.layernorm.bias",
        "head.weight": "classifier.weight", "head.bias": "classifier.bias",
    }
    per_block = {
        "norm1": "layernorm_before", "attn.proj": "attention.output.dense", "norm2": "layernorm_after",
        "mlp.fc1": "intermediate.dense", "mlp.fc2": "output.dense",
    }
    timm = {ours: w[theirs] for ours, theirs in top.items()}
    b = 0
    while f"vit.encoder.layer.{b}.layernorm_before.weight" in w:
        layer = f"vit.encoder.layer.{b}"
        for suffix in ["weight", "bias"]:
            for ours, theirs in per_block.items():
                timm[f"blocks.{b}.{ours}.{suffix}"] = w[f"{layer}.{theirs}.{suffix}"]
            parts = [w[f"{layer}.attention.attention.{p}.{suffix}"] for p in ["query", "key", "value"]]
            timm[f"blocks.{b}.attn.qkv.{suffix}"] = np.concatenate(parts)  # stacked: W_qkv
        b += 1
    return timm


def layer_norm(x, weight, bias, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)  # population variance
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def gelu(x):
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return (x * 0.5 * (1 + erf(x.astype(np.float64) / math.sqrt(2)))).astype(x.dtype)


def softmax(logits, broken):
    if broken == "softmax-f16":  # deliberately wrong: float16, no max subtraction
        e = np.exp(logits.astype(np.float16))
        return (e / e.sum(-1, keepdims=True)).astype(logits.dtype)
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def topk_keep(a, n, prefix, keep_rate, broken):
    """Positions kept: the prefix and the k tokens of largest a (ties: lower position first), in order."""
    k = min(n - prefix, math.ceil(keep_rate * (n - prefix) - 1e-9))
    if k == n - prefix:
        return None
    tie = -1 if broken == "topk-tiebreak" else 1  # deliberately wrong: higher position first on ties
    ranked = sorted(range(prefix, n), key=lambda j: (-a[j], tie * j))
    return list(range(prefix)) + sorted(ranked[:k])


def forward(c, w, x_in, method, dtype, broken, record):
    """The forward pass of docs/trace-format.md §5, top-k of §6.1; `record(name, array)` sees every tensor."""
    D, H, L, P, S, prefix = c["dim"], c["heads"], c["depth"], c["patchSize"], c["imageSize"], c["prefixTokens"]
    f = lambda name: w[name].astype(dtype)
    linear = lambda x, name: x @ f(name + ".weight").T + f(name + ".bias")
    side = S // P
    patches = x_in.reshape(c["inChannels"], side, P, side, P).transpose(1, 3, 0, 2, 4).reshape(side * side, -1)
    tokens = [f("cls_token").reshape(1, D)] + ([f("dist_token").reshape(1, D)] if c["distilled"] else [])
    x = np.concatenate(tokens + [patches @ f("patch_embed.proj.weight").reshape(D, -1).T + f("patch_embed.proj.bias")])
    x = x + f("pos_embed").reshape(-1, D)
    record("embed", x)
    ids = np.arange(x.shape[0], dtype=np.int32)
    for b in range(L):
        widths = c.get("blockWidths")
        qk, v = (widths[b]["qkDim"], widths[b]["vDim"]) if widths else (c["qkDim"], c["vDim"])
        n = x.shape[0]
        h = layer_norm(x, f(f"blocks.{b}.norm1.weight"), f(f"blocks.{b}.norm1.bias"), c["eps"])
        record(f"block.{b}.ln1", h)
        qkv = linear(h, f"blocks.{b}.attn.qkv")
        record(f"block.{b}.qkv", qkv)
        q = qkv[:, : H * qk].reshape(n, H, qk).transpose(1, 0, 2)
        k = qkv[:, H * qk : 2 * H * qk].reshape(n, H, qk).transpose(1, 0, 2)
        vv = qkv[:, 2 * H * qk :].reshape(n, H, v).transpose(1, 0, 2)
        probs = softmax(q @ k.transpose(0, 2, 1) / np.sqrt(dtype(qk)), broken)
        record(f"block.{b}.attn.probs", probs)
        out = (probs @ vv).transpose(1, 0, 2).reshape(n, H * v)
        record(f"block.{b}.attn.out", out)
        x = x + linear(out, f"blocks.{b}.attn.proj")
        record(f"block.{b}.x.attn", x)
        if method and method["name"] == "topk" and b in method["settings"]["blocks"]:
            a = probs[:, 0, :].mean(0)
            keep = topk_keep(a, n, prefix, method["settings"]["keepRate"], broken)
            if keep is not None:
                record(f"block.{b}.after_attention.attentiveness", a)
                x, ids = x[keep], ids[keep]
                record(f"block.{b}.after_attention.ids", ids)
        h = layer_norm(x, f(f"blocks.{b}.norm2.weight"), f(f"blocks.{b}.norm2.bias"), c["eps"])
        record(f"block.{b}.ln2", h)
        hidden = gelu(linear(h, f"blocks.{b}.mlp.fc1"))
        record(f"block.{b}.mlp.hidden", hidden)
        x = x + linear(hidden, f"blocks.{b}.mlp.fc2")
        record(f"block.{b}.x.mlp", x)
    final = layer_norm(x[:prefix], f("norm.weight"), f("norm.bias"), c["eps"])
    record("final.norm", final)
    logits = linear(final[:1], "head")[0]
    if c["distilled"]:
        logits = (logits + linear(final[1:2], "head_dist")[0]) / 2
    record("logits", logits)


def run_case(case_dir, out_dir, dtype, broken):
    with open(os.path.join(case_dir, "manifest.json")) as f:
        manifest = json.load(f)
    method = manifest.get("method")
    if method and method["name"] != "topk":
        print(f"{case_dir}: skipped, this port implements dense and topk, not {method['name']}")
        return False
    c = manifest["config"]
    w = load_weights(os.path.join(case_dir, manifest["model"]["source"]), manifest["model"]["layout"])
    x_in = read_safetensors(os.path.join(case_dir, "tensors.safetensors"))["input"].astype(dtype)
    tensors = {"input": x_in}

    def record(name, array):
        tensors[name] = array if array.dtype == np.int32 else array.astype(dtype)

    forward(c, w, x_in, method, dtype, broken, record)
    os.makedirs(out_dir, exist_ok=True)
    write_safetensors(os.path.join(out_dir, "tensors.safetensors"), tensors)
    port = {"format": "vitprune-trace", "version": 1, "method": method, "config": c,
            "producer": {"name": "numpy-port", "floatDtype": "F64" if dtype == np.float64 else "F32"}}
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(port, f, indent=1)
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="+", help="case folders of the conformance suite")
    parser.add_argument("--out", required=True, help="a bundle is written to OUT/<case folder name>")
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    parser.add_argument("--break", dest="broken", choices=["softmax-f16", "topk-tiebreak"])
    args = parser.parse_args()
    written = 0
    for case in args.cases:
        name = os.path.basename(os.path.normpath(case))
        written += run_case(case, os.path.join(args.out, name), np.dtype(args.dtype).type, args.broken)
    print(f"wrote {written} bundles to {args.out}")


if __name__ == "__main__":
    main()
