#!/usr/bin/env python3
"""PyTorch's loss and gradients for generated/gpt, on the Go model's own
parameters and batch (examples/gpt's TestMatchesPyTorch writes them).

Usage: python3 torch_gpt.py DIR

DIR holds manifest.json (the parameters' names, offsets and shapes in
Go's layout, the token ids and labels) and params.f32 (the Go model's
Params, little-endian float32). The script builds the GPT of
examples/bench/torch_bench.py (PyTorch's own nn.Embedding, nn.LayerNorm,
nn.Linear, tanh GELU, masked softmax attention, tied output), loads the
parameters into it in float64, and writes DIR/torch.json: the mean
cross-entropy and the gradient of every parameter, in Go's layout (a
dense layer's W is (in, out) there and nn.Linear's weight (out, in)).
"""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
from torch_bench import GPT  # noqa: E402


def main():
    d = sys.argv[1]
    with open(os.path.join(d, "manifest.json")) as f:
        man = json.load(f)
    with open(os.path.join(d, "params.f32"), "rb") as f:
        flat = torch.frombuffer(bytearray(f.read()), dtype=torch.float32).double()
    model = GPT(vocab=man["vocab"], T=man["T"], C=man["C"], layers=man["layers"], heads=man["heads"]).double()

    # Go's name -> (PyTorch parameter, whether Go's layout is its transpose).
    where = {"wpe": (model.wpe, False), "x0.W": (model.wte.weight, False),
             "lnf.gamma": (model.lnf.weight, False), "lnf.beta": (model.lnf.bias, False)}
    for i, b in enumerate(model.blocks, start=1):
        for go, (mod, attr, t) in {
            f"ln{i}a.gamma": ("ln1", "weight", False), f"ln{i}a.beta": ("ln1", "bias", False),
            f"qkv{i}.W": ("attn", "weight", True), f"qkv{i}.b": ("attn", "bias", False),
            f"r{i}.W": ("proj", "weight", True), f"r{i}.b": ("proj", "bias", False),
            f"ln{i}b.gamma": ("ln2", "weight", False), f"ln{i}b.beta": ("ln2", "bias", False),
            f"fc{i}.W": ("fc", "weight", True), f"fc{i}.b": ("fc", "bias", False),
            f"x{i}.W": ("out", "weight", True), f"x{i}.b": ("out", "bias", False),
        }.items():
            where[go] = (getattr(b[mod], attr), t)
    if sorted(where) != sorted(man["names"]):
        sys.exit(f"torch_gpt.py: parameters differ: Go has {sorted(set(man['names']) - set(where))}, "
                 f"PyTorch {sorted(set(where) - set(man['names']))}")
    with torch.no_grad():
        for name, off, shape in zip(man["names"], man["offsets"], man["shapes"]):
            p, t = where[name]
            n = 1
            for s in shape:
                n *= s
            v = flat[off:off + n].reshape(shape)
            p.copy_(v.t() if t else v)

    tokens = torch.tensor(man["tokens"], dtype=torch.long).reshape(-1, man["T"])
    labels = torch.tensor(man["labels"], dtype=torch.long)
    loss = torch.nn.functional.cross_entropy(model(tokens), labels)
    loss.backward()
    grads = {}
    for name in man["names"]:
        p, t = where[name]
        g = p.grad.t() if t else p.grad
        grads[name] = g.contiguous().reshape(-1).tolist()
    with open(os.path.join(d, "torch.json"), "w") as f:
        json.dump({"torch": torch.__version__, "loss": loss.item(), "grads": grads}, f)


if __name__ == "__main__":
    main()
