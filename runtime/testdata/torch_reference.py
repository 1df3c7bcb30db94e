# torch_reference.py writes torch_reference.json: PyTorch's results for the
# layers and optimizers whose semantics the runtime copies (batch norm in
# training and inference mode with its running statistics, layer norm,
# AdamW, both GELUs, causal attention, embedding), in float64, on inputs given by formulas (no RNG to match).
# TestMatchesPyTorch compares the runtime's kernels with it;
# TestPyTorchReferenceCurrent reruns this script where torch is installed.
#
#   python3 runtime/testdata/torch_reference.py > runtime/testdata/torch_reference.json
import json, math, sys
import torch

torch.set_default_dtype(torch.float64)

def vals(n, a, b):
    return [math.sin(i * a + b) * 1.5 + 0.2 * math.cos(i * 0.11) for i in range(n)]

def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]

out = {}

# Batch norm over the channels of rows (N·H·W, C): PyTorch's BatchNorm1d on
# (rows, C) is BatchNorm2d on NCHW with the same values per channel.
rows, C = 12, 5
x = torch.tensor(vals(rows * C, 0.37, 0.5)).reshape(rows, C).requires_grad_()
w = torch.tensor(vals(rows * C, 0.71, 1.3)).reshape(rows, C)
bn = torch.nn.BatchNorm1d(C, momentum=0.1, eps=1e-5)
with torch.no_grad():
    bn.weight.copy_(torch.tensor(vals(C, 0.9, 0.1)) + 1)
    bn.bias.copy_(torch.tensor(vals(C, 1.7, 0.4)))
bn.train()
y = bn(x)
(y * w).sum().backward()
bn.eval()
x2 = torch.tensor(vals(rows * C, 0.53, 2.0)).reshape(rows, C)
out["batch_norm"] = {
    "rows": rows, "C": C, "eps": 1e-5, "momentum": 0.1,
    "x": flat(x), "w": flat(w), "gamma": flat(bn.weight), "beta": flat(bn.bias),
    "y": flat(y), "dx": flat(x.grad), "dgamma": flat(bn.weight.grad), "dbeta": flat(bn.bias.grad),
    "running_mean": flat(bn.running_mean), "running_var": flat(bn.running_var),
    "x_infer": flat(x2), "y_infer": flat(bn(x2)),
}

# Layer norm over the last axis.
rows, C = 4, 7
x = torch.tensor(vals(rows * C, 0.29, 0.2)).reshape(rows, C).requires_grad_()
w = torch.tensor(vals(rows * C, 0.61, 0.9)).reshape(rows, C)
ln = torch.nn.LayerNorm(C, eps=1e-5)
with torch.no_grad():
    ln.weight.copy_(torch.tensor(vals(C, 0.8, 0.3)) + 1)
    ln.bias.copy_(torch.tensor(vals(C, 1.1, 0.6)))
y = ln(x)
(y * w).sum().backward()
out["layer_norm"] = {
    "rows": rows, "C": C, "eps": 1e-5,
    "x": flat(x), "w": flat(w), "gamma": flat(ln.weight), "beta": flat(ln.bias),
    "y": flat(y), "dx": flat(x.grad), "dgamma": flat(ln.weight.grad), "dbeta": flat(ln.bias.grad),
}

# AdamW, three steps on fixed gradients.
n = 9
p = torch.tensor(vals(n, 0.43, 0.7)).requires_grad_()
opt = torch.optim.AdamW([p], lr=0.01, weight_decay=0.01)
grads = [vals(n, 0.3 + 0.1 * k, k) for k in range(3)]
p0 = flat(p)
for g in grads:
    opt.zero_grad()
    p.grad = torch.tensor(g)
    opt.step()
out["adamw"] = {"lr": 0.01, "weight_decay": 0.01, "params": p0, "grads": grads, "after": flat(p)}

# GELU, exact (nn.GELU()) and GPT-2's tanh approximation
# (approximate="tanh"), values and gradients.
x = torch.tensor([v * 4 for v in vals(40, 0.23, 0.1)] + [-12.0, -7.0, 0.0, 7.0, 12.0]).requires_grad_()
gelu = {"x": flat(x)}
for name, approx in (("erf", "none"), ("tanh", "tanh")):
    x.grad = None
    y = torch.nn.functional.gelu(x, approximate=approx)
    y.sum().backward()
    gelu["y_" + name] = flat(y)
    gelu["dx_" + name] = flat(x.grad)
out["gelu"] = gelu

# Causal multi-head attention on (n, T, 3C) as GPT-2 (and llm.c) compute
# it, and an embedding lookup with repeated tokens.
n, T, C, H = 2, 5, 6, 2
qkv = torch.tensor(vals(n * T * 3 * C, 0.31, 0.8)).reshape(n, T, 3 * C).requires_grad_()
w = torch.tensor(vals(n * T * C, 0.47, 1.9)).reshape(n, T, C)
q, k, v = qkv.split(C, dim=2)
split = lambda a: a.reshape(n, T, H, C // H).transpose(1, 2)
scores = split(q) @ split(k).transpose(-2, -1) / math.sqrt(C // H)
scores = scores.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf"))
y = (scores.softmax(-1) @ split(v)).transpose(1, 2).reshape(n, T, C)
(y * w).sum().backward()
out["attention"] = {"n": n, "T": T, "C": C, "heads": H, "qkv": flat(qkv), "w": flat(w), "y": flat(y), "dqkv": flat(qkv.grad)}

V, D = 7, 3
emb = torch.nn.Embedding(V, D)
with torch.no_grad():
    emb.weight.copy_(torch.tensor(vals(V * D, 0.59, 0.3)).reshape(V, D))
tokens = [3, 0, 6, 3, 3, 1, 0, 5]
y = emb(torch.tensor(tokens))
w = torch.tensor(vals(len(tokens) * D, 0.83, 0.2)).reshape(len(tokens), D)
(y * w).sum().backward()
out["embedding"] = {"vocab": V, "dim": D, "tokens": tokens, "table": flat(emb.weight), "w": flat(w), "y": flat(y), "dtable": flat(emb.weight.grad)}

json.dump(out, sys.stdout, indent=1, sort_keys=True)
print()
