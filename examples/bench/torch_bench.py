#!/usr/bin/env python3
"""PyTorch reference timings for the generated models' BenchmarkTrainStep.

Builds each model of generated/<name>/<name>.bpg in PyTorch (same layers,
sizes, batch, softmax cross-entropy and Adam(lr=1e-3), float32, one intra-op
and one inter-op thread) and times one full training step: zero_grad,
forward, loss, backward, optimizer step, on fixed synthetic inputs.

Each model is warmed up, then timed in --count runs of N steps each, N chosen
so that one run lasts about --benchtime seconds. The output is Go benchmark
format, e.g.

    BenchmarkTrainStep/model=mlp/impl=torch  	    1000	    123456 ns/op

one line per model with the median run (or one line per run with --each, for
benchstat). Layout difference: the CNN is NCHW here (PyTorch's native layout)
while the generated model is NHWC; the arithmetic is the same.

Usage: python3 torch_bench.py [--models mlp,cnn] [--count 5] [--each]
"""

import argparse
import os
import platform
import statistics
import math
import sys
import time

# Debian's torch uses the system BLAS (libblas.so.3), whose threads
# torch.set_num_threads does not control: give it --threads (default 1)
# before torch loads it.
def _threads_arg(argv):
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--threads="):
            return a.split("=", 1)[1]
    return "1"


for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ.setdefault(_v, _threads_arg(sys.argv[1:]))
if _threads_arg(sys.argv[1:]) != "1":
    # The BLAS's pthreads and torch's OpenMP pool must not spin against each
    # other: both at 2 threads with OpenMP's default active wait made the wide
    # MLP 2.4x slower than with passive waits, the fastest setting measured.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    import torch
    from torch import nn
except ImportError:
    sys.exit(
        "torch_bench.py: PyTorch is not installed for %s; on Debian: "
        "apt-get install python3-torch (make bench-compare does it), then run "
        "it with /usr/bin/python3" % sys.executable
    )


class MLP(nn.Module):
    """dense(relu) stack then a linear classifier: mlp and widemlp."""

    def __init__(self, sizes):
        super().__init__()
        layers = []
        for i in range(len(sizes) - 2):
            layers += [nn.Linear(sizes[i], sizes[i + 1]), nn.ReLU()]
        layers.append(nn.Linear(sizes[-2], sizes[-1]))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class CNN(nn.Module):
    """conv(32,3x3,relu,valid) -> maxpool2 -> conv(64,3x3,relu) -> maxpool2 ->
    flatten -> dense64 relu -> dense10, on NCHW 3x32x32."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 32, 3), nn.ReLU(), nn.MaxPool2d(2),   # 32x15x15
            nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),  # 64x6x6
            nn.Flatten(),                                      # 2304
            nn.Linear(64 * 6 * 6, 64), nn.ReLU(),
            nn.Linear(64, 10),
        )

    def forward(self, x):
        return self.net(x)


class Recurrent(nn.Module):
    """cell(128, return_sequences) -> cell(64), last step -> dense10, with
    cell nn.RNN (tanh) or nn.LSTM, batch_first, on (N, 100, 1)."""

    def __init__(self, cell):
        super().__init__()
        self.r1 = cell(1, 128, batch_first=True)
        self.r2 = cell(128, 64, batch_first=True)
        self.out = nn.Linear(64, 10)

    def forward(self, x):
        h, _ = self.r1(x)
        h, _ = self.r2(h)
        return self.out(h[:, -1, :])


class GPT(nn.Module):
    """generated/gpt: byte tokens (N, 64) -> token and position embeddings ->
    4 pre-layer-norm blocks (causal self-attention in 4 heads, MLP of 512
    with tanh GELU, residuals) -> layer norm -> logits tied to the token
    table, as llm.c's train_gpt2.c computes them."""

    def __init__(self, vocab=256, T=64, C=128, layers=4, heads=4):
        super().__init__()
        self.T, self.C, self.heads = T, C, heads
        self.wte = nn.Embedding(vocab, C)
        self.wpe = nn.Parameter(torch.zeros(T, C))
        self.blocks = nn.ModuleList()
        for _ in range(layers):
            self.blocks.append(nn.ModuleDict({
                "ln1": nn.LayerNorm(C), "attn": nn.Linear(C, 3 * C), "proj": nn.Linear(C, C),
                "ln2": nn.LayerNorm(C), "fc": nn.Linear(C, 4 * C), "out": nn.Linear(4 * C, C),
            }))
        self.lnf = nn.LayerNorm(C)
        self.register_buffer("mask", torch.triu(torch.ones(T, T, dtype=torch.bool), 1))

    def forward(self, t):
        n, T, C, H = t.shape[0], self.T, self.C, self.heads
        x = self.wte(t) + self.wpe
        for b in self.blocks:
            q, k, v = b["attn"](b["ln1"](x)).split(C, dim=2)
            split = lambda a: a.reshape(n, T, H, C // H).transpose(1, 2)
            s = split(q) @ split(k).transpose(-2, -1) / math.sqrt(C // H)
            a = s.masked_fill(self.mask, float("-inf")).softmax(-1) @ split(v)
            x = x + b["proj"](a.transpose(1, 2).reshape(n, T, C))
            x = x + b["out"](nn.functional.gelu(b["fc"](b["ln2"](x)), approximate="tanh"))
        return (self.lnf(x) @ self.wte.weight.t()).reshape(n * T, -1)


# name -> (batch, input shape without the batch, constructor); a shape of
# ("tokens", T, V) is T token ids below V per row, with a label per token.
MODELS = {
    "mlp": (32, (784,), lambda: MLP([784, 128, 64, 10])),
    "mlpb128": (128, (784,), lambda: MLP([784, 128, 64, 10])),
    "widemlp": (256, (1024,), lambda: MLP([1024, 1024, 1024, 10])),
    "cnn": (32, (3, 32, 32), CNN),
    "rnn": (32, (100, 1), lambda: Recurrent(lambda i, h, **kw: nn.RNN(i, h, nonlinearity="tanh", **kw))),
    "lstm": (32, (100, 1), lambda: Recurrent(nn.LSTM)),
    "gpt": (8, ("tokens", 64, 256), GPT),
    "gptlarge": (8, ("tokens", 128, 256), lambda: GPT(T=128, C=256, layers=6, heads=8)),
}


def make_step(name):
    batch, shape, ctor = MODELS[name]
    g = torch.Generator().manual_seed(1)
    model = ctor().float()
    if shape[0] == "tokens":
        _, T, V = shape
        x = torch.randint(0, V, (batch, T), generator=g)
        y = torch.randint(0, V, (batch * T,), generator=g)
    else:
        x = torch.rand((batch,) + shape, generator=g, dtype=torch.float32)
        y = torch.randint(0, 10, (batch,), generator=g)
    loss_fn = nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    nparams = sum(p.numel() for p in model.parameters())
    return step, batch, nparams


def blas_library():
    """The BLAS shared library torch has loaded (after a matmul), or "?"."""
    torch.ones(64, 64) @ torch.ones(64, 64)
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "blas" in line or "mkl" in line}
    except OSError:
        return "?"
    paths = sorted(os.path.realpath(p) for p in paths if p.startswith("/"))
    core = ""
    for p in paths:
        if "openblas" in p:
            try:
                import ctypes
                get = ctypes.CDLL(p).openblas_get_corename
                get.restype = ctypes.c_char_p
                core = " (OpenBLAS core %s, OPENBLAS_CORETYPE=%s)" % (get().decode(), os.environ.get("OPENBLAS_CORETYPE", "unset"))
            except (OSError, AttributeError):
                pass
    return (", ".join(paths) or "built in") + core


def run_n(step, n):
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    return time.perf_counter() - t0


def bench(name, count, benchtime, warmup):
    step, batch, nparams = make_step(name)
    # Warm-up: at least 5 steps and about `warmup` seconds (allocator caches,
    # oneDNN primitive creation, Adam state allocation on the first step).
    n, spent = 5, 0.0
    while True:
        spent += run_n(step, n)
        if spent >= warmup:
            break
        n *= 2
    # Steps per run: about benchtime seconds, estimated from a timed probe.
    probe = max(1, n // 2)
    per = run_n(step, probe) / probe
    steps = max(1, int(benchtime / per))
    runs = [run_n(step, steps) / steps * 1e9 for _ in range(count)]
    return batch, nparams, steps, runs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(MODELS),
                    help="comma-separated models (default %(default)s)")
    ap.add_argument("--count", type=int, default=5, help="timed runs per model (default 5)")
    ap.add_argument("--benchtime", type=float, default=2.0,
                    help="seconds per timed run (default 2, like -benchtime 2s)")
    ap.add_argument("--warmup", type=float, default=0.5, help="warm-up seconds per model")
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    ap.add_argument("--each", action="store_true",
                    help="print one line per run (for benchstat) instead of the median")
    ap.add_argument("-v", "--verbose", action="store_true", help="details on stderr")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    torch.set_default_dtype(torch.float32)
    torch.manual_seed(1)

    names = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in names if m not in MODELS]
    if unknown:
        sys.exit("torch_bench.py: unknown model(s) %s; known: %s" % (", ".join(unknown), ", ".join(MODELS)))
    if args.count < 1:
        sys.exit("torch_bench.py: --count must be at least 1")

    blas = blas_library()
    print("# torch %s, python %s, threads=%d, interop threads=%d, blas %s"
          % (torch.__version__, platform.python_version(),
             torch.get_num_threads(), torch.get_num_interop_threads(), blas))
    if "/blas/libblas" in blas:
        print("torch_bench.py: warning: torch is using the reference (Netlib) BLAS, "
              "which is many times slower than a tuned one and makes PyTorch a weak "
              "baseline; install one: apt-get install libopenblas0-pthread",
              file=sys.stderr)
    sys.stdout.flush()
    for name in names:
        batch, nparams, steps, runs = bench(name, args.count, args.benchtime, args.warmup)
        label = "BenchmarkTrainStep/model=%s/impl=torch" % name
        if args.verbose:
            print("%s: batch %d, %d params, %d steps/run, runs (ns/op): %s"
                  % (name, batch, nparams, steps, " ".join("%.0f" % r for r in runs)),
                  file=sys.stderr)
        for r in runs if args.each else [statistics.median(runs)]:
            print("%s \t%8d\t%12.0f ns/op" % (label, steps, r))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
