package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/backpropgen/backpropgen/ir"
)

const tiny = `model tiny
batch 4
input x: [3]
label y: class(2)
logits = dense(x, 2)
loss = softmax_cross_entropy(logits, y)
`

func runCLI(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestUsage(t *testing.T) {
	if code, _, e := runCLI(); code != 2 || !strings.Contains(e, "usage: backpropgen") {
		t.Errorf("no args: exit %d, stderr %q; want 2 and usage", code, e)
	}
	if code, _, _ := runCLI("-nosuchflag", "m.bpg"); code != 2 {
		t.Errorf("bad flag: exit %d, want 2", code)
	}
	if code, _, e := runCLI("-h"); code != 0 || !strings.Contains(e, "-check") {
		t.Errorf("-h: exit %d, stderr %q", code, e)
	}
	if code, _, _ := runCLI("model.txt"); code != 2 {
		t.Errorf("wrong extension: exit %d, want 2", code)
	}
	if code, o, _ := runCLI("-version"); code != 0 || !strings.HasPrefix(o, "backpropgen v") {
		t.Errorf("-version: exit %d, %q", code, o)
	}
}

func TestDescriptionError(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.bpg")
	os.WriteFile(path, []byte("model bad\nbatch 2\ninput x: [3]\nloss = sum(q)\n"), 0o644)
	code, _, e := runCLI(path)
	if code != 1 || !strings.Contains(e, "bad.bpg:4:12: unknown name q") {
		t.Errorf("exit %d, stderr %q", code, e)
	}
}

// TestWriteAndCheck: files are written once, rewritten only when content
// changes, and -check reports staleness without writing.
func TestWriteAndCheck(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tiny.bpg")
	os.WriteFile(path, []byte(tiny), 0o644)
	if code, _, e := runCLI("-check", path); code != 1 || !strings.Contains(e, "stale or missing") {
		t.Fatalf("-check before generating: exit %d, %q", code, e)
	}
	if _, err := os.Stat(filepath.Join(dir, "tiny.go")); err == nil {
		t.Fatal("-check wrote a file")
	}
	if code, _, e := runCLI(path); code != 0 {
		t.Fatalf("generate: exit %d, %s", code, e)
	}
	for _, f := range []string{"tiny.go", "tiny_test.go"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-time.Hour)
	os.Chtimes(filepath.Join(dir, "tiny.go"), old, old)
	if code, _, e := runCLI(path); code != 0 {
		t.Fatalf("regenerate: exit %d, %s", code, e)
	}
	if st, _ := os.Stat(filepath.Join(dir, "tiny.go")); !st.ModTime().Equal(old) {
		t.Error("unchanged output was rewritten")
	}
	if code, _, _ := runCLI("-check", path); code != 0 {
		t.Errorf("-check on current files: exit %d", code)
	}
	os.WriteFile(path, []byte(strings.Replace(tiny, "batch 4", "batch 5", 1)), 0o644)
	if code, _, _ := runCLI("-check", path); code != 1 {
		t.Errorf("-check after editing the description: exit %d, want 1", code)
	}
	if code, o, _ := runCLI("-ir", path); code != 0 || !strings.Contains(o, "softmax_cross_entropy_grad") {
		t.Errorf("-ir: exit %d, %q", code, o)
	}
}

// module creates a Go module in a temporary directory that uses this
// repository through a replace directive.
func module(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds generated packages; skipped with -short")
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	dir := t.TempDir()
	gomod := "module example.com/user\n\ngo 1.26\n\nrequire github.com/backpropgen/backpropgen v0.0.0\n\nreplace github.com/backpropgen/backpropgen => " + root + "\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644)
	return dir
}

func goCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// opCases exercise every differentiable op (in several forms: broadcasts,
// transposes, axes, partial batches) in a generated model whose own
// TestGradients checks each parameter against central finite differences
// in float64. TestOpGradients fails for an op with an adjoint rule and no
// case here.
var opCases = map[string]string{
	"matmul": `input x: [5]
param W: [5, 3]
param V: [2, 3]
a = x @ W
b = transpose(x) @ a
c = a @ transpose(V)
d = transpose(W) @ b
loss = mean(a * a) + mean(b * b) + mean(c * c) + mean(d * d)
output a`,
	"transpose": `input x: [5]
param W: [5, 3]
h = transpose(x @ W)
loss = mean(h * h) + mean(transpose(W) * transpose(W) * transpose(W))
output h`,
	"reshape": `input x: [2, 3]
param W: [6, 2]
r = reshape(x, [batch, 6])
h = r @ W
q = reshape(W, [3, 4])
loss = mean(h * h) + mean(q * q * q)
output h`,
	"sum": `input x: [3, 2]
param W: [3, 2]
h = x * W
a = sum(h, axis=0)
b = sum(h, axis=[1, 2], keepdims=true)
c = sum(h, 2)
loss = mean(a * a) + mean(b * b) + mean(c * c) + sum(W) * sum(W)
output h`,
	"mean": `input x: [3, 2]
param W: [3, 2]
h = x * W
a = mean(h, axis=0)
b = mean(h, axis=[1, 2], keepdims=true)
c = mean(h, 2)
loss = mean(a * a) + mean(b * b) + mean(c * c) + mean(W) * mean(W)
output h`,
	"softmax": `input x: [5]
param W: [5, 4]
h = softmax(x @ W)
loss = mean(h * h * h)
output h`,
	"log_softmax": `input x: [5]
param W: [5, 4]
h = log_softmax(x @ W)
loss = mean(h * h)
output h`,
	"softmax_cross_entropy": `input x: [5]
label y: class(4)
param W: [5, 4]
param b: [4]
logits = x @ W + b
loss = softmax_cross_entropy(logits, y)`,
	"mse": `input x: [5]
input t: [2]
p = dense(x, 2, tanh)
loss = mse(p, t)`,
	"bce": `input x: [5]
input t: [3]
p = dense(x, 3, sigmoid)
loss = bce(p, t)`,
	"conv2d": `input x: [7, 5, 2]
c = conv2d(x, 3, [3, 2], stride=[2, 1], padding=same)
d = conv2d(x, 2, 3, dilation=2)
e = conv2d(c, 2, 1, bias=false)
g = conv2d(c, 2, 3, stride=2, padding=same, activation=tanh)
loss = mean(c * c) + mean(d * d) + mean(e * e) + mean(g * g)
output e`,
	// r and u are pools of a relu: derive moves the bias and relu after
	// the max (a's with its bias, u's alone since c has other readers).
	"maxpool2d": `input x: [7, 6, 2]
c = conv2d(x, 2, 2)
p = maxpool2d(c, 2)
q = maxpool2d(c, 3, stride=2, padding=same)
a = conv2d(x, 3, 2, activation=relu)
r = maxpool2d(a, 2)
u = maxpool2d(relu(c), 3, stride=2)
loss = mean(p * p) + mean(q * q) + mean(r * r) + mean(u * u)
output p`,
	"avgpool2d": `input x: [7, 6, 2]
c = conv2d(x, 2, 2)
p = avgpool2d(c, 2)
q = avgpool2d(c, 3, stride=2, padding=same)
r = global_avg_pool(c)
loss = mean(p * p) + mean(q * q) + mean(r * r)
output p`,
	"simple_rnn": `input x: [4, 3]
input h0: [5]
label y: class(2)
r1 = simple_rnn(x, 5, return_sequences=true, initial=h0)
r2 = simple_rnn(r1, 3)
logits = dense(r2, 2)
loss = softmax_cross_entropy(logits, y) + mean(r1 * r1)`,
	"lstm": `input x: [4, 3]
input h0: [5]
input c0: [5]
label y: class(2)
r1 = lstm(x, 5, return_sequences=true, initial=[h0, c0])
r2 = lstm(r1, 3)
logits = dense(r2, 2)
loss = softmax_cross_entropy(logits, y) + mean(r1 * r1)`,
	"gru": `input x: [4, 3]
input h0: [5]
label y: class(2)
r1 = gru(x, 5, return_sequences=true, initial=h0)
r2 = gru(r1, 3)
logits = dense(r2, 2)
loss = softmax_cross_entropy(logits, y) + mean(r1 * r1)`,
	"sequence_dense": `input x: [4, 3]
label y: [4] class(5)
h = gru(x, 6, return_sequences=true)
logits = dense(h, 5)
loss = softmax_cross_entropy(logits, y)`,
	// A dense layer with an activation on a sequence: the product with its
	// bias and activation as epilogue (matmul_bias_act) on (N, T, H) rows.
	"sequence_dense_act": `input x: [4, 3]
label y: [4] class(5)
h = gru(x, 6, return_sequences=true)
z = dense(h, 4, tanh)
logits = dense(z, 5)
loss = softmax_cross_entropy(logits, y)`,
	// Batch norm over image channels after a convolution (folded into it
	// at inference), after an activation, and over a dense layer's units.
	"batch_norm": `input x: [5, 4, 2]
label y: class(3)
c = conv2d(x, 3, 2)
b = batch_norm(c)
r = batch_norm(tanh(b), momentum=0.3, eps=0.001)
f = flatten(r)
h = dense(f, 4)
hb = batch_norm(h)
logits = dense(tanh(hb), 3)
loss = softmax_cross_entropy(logits, y)`,
	"layer_norm": `input x: [4, 3]
label y: [4] class(3)
l = layer_norm(x)
h = dense(l, 5, tanh)
k = layer_norm(h, eps=0.01)
logits = dense(k, 3)
loss = softmax_cross_entropy(logits, y)`,
	"dropout": `input x: [6]
label y: class(3)
h = dense(x, 8, tanh)
d = dropout(h, 0.3)
e = dropout(x, 0.5)
a = dense(d, 3)
logits = dense(e, 3) + a
loss = softmax_cross_entropy(logits, y)`,
	// GELU as a dense layer's activation: not fused into the product's
	// epilogue (its gradient reads the pre-activation).
	"dense_gelu": `input x: [6]
label y: class(3)
h = dense(x, 5, gelu)
k = dense(h, 4, activation=gelu_erf)
logits = dense(k, 3)
loss = softmax_cross_entropy(logits, y)`,
	// Token ids of a sequence, looked up in a table; a token repeated in a
	// row adds both positions' gradients into its row.
	"embedding": `input t: [4] tokens(6)
input u: [2] tokens(5)
label y: [4] class(3)
e = embedding(t, 3)
f = embedding(u, 4, init=glorot_uniform)
h = dense(e, 5, tanh)
logits = dense(h, 3)
loss = softmax_cross_entropy(logits, y) + mean(f * f)`,
	// Multi-head attention over a sequence, causal and not, reading the
	// same queries, keys and values.
	"attention": `input x: [5, 4]
label y: [5] class(3)
qkv = dense(x, 12)
a = attention(qkv, 2)
b = attention(qkv, 1, causal=false)
logits = dense(a + b, 3)
loss = softmax_cross_entropy(logits, y)`,
	// Products of stacks of matrices (rank 4 with the batch, rank 3
	// without), with every transpose folded in.
	"batch_matmul": `input x: [2, 5, 3]
input z: [2, 4, 3]
param A: [2, 3, 4]
param B: [2, 4, 5]
param P: [2, 5, 3]
a = x @ transpose(z)
b = transpose(x) @ (x * P)
c = transpose(a) @ (x * P)
e = transpose(b) @ transpose(z)
d = A @ B
f = transpose(B) @ transpose(A)
loss = mean(a * a) + mean(b * b) + mean(c * c) + mean(e * e) + mean(d * d) + mean(f * f * f)
output a`,
	// Weighted by parameters of the permuted shapes, so a wrong order
	// gives wrong gradients.
	"permute": `input x: [2, 3, 4]
param W: [2, 3, 4]
param Pa: [4, 2, 3]
param Pb: [4, 2, 3]
param Pc: [3, 4, 2]
a = permute(x, [0, 3, 1, 2])
b = permute(W, [2, 0, -2])
c = permute(permute(x * W, [0, 2, 1, 3]), [0, 1, 3, 2])
loss = mean(a * Pa) + mean(b * b * Pb) + mean(c * Pc)
output a`,
	// Scores of a sequence against itself, masked, then a softmax.
	"causal_mask": `input x: [3, 4]
param W: [4, 3]
param P: [3, 3]
s = x @ W
h = softmax(causal_mask(s))
g = softmax(causal_mask(x @ transpose(x)))
loss = mean(h * h * P) + mean(g * P)
output h`,
	// Parts of an input (their gradients add straight into dx) and of an
	// intermediate (summed).
	"split": `input x: [4, 6]
param P: [4, 2]
a = split(x, 3, 0)
b = split(x, 3, 2)
c = split(x * x, 2, 1)
loss = mean(a * P) + mean(b * b * P) + mean(c * c * c)
output a`,
	// Tensors named like the fields and methods every model has (saved,
	// aux, check, Init, Grad, ...): they get other names, and the package
	// builds.
	"reserved_names": `input x: [6]
label y: class(3)
param init: [6]
param grad: [6]
saved = layer_norm(x * init + grad)
check = dense(saved, 6, tanh)
backward = dense(check, 6)
anomaly = backward + check
aux = dense(anomaly, 3)
loss = softmax_cross_entropy(aux, y)`,
	"residual": `input x: [6]
label y: class(3)
h1 = dense(x, 6, tanh)
h2 = dense(h1, 6, relu) + h1
logits = dense(h2, 3)
loss = softmax_cross_entropy(logits, y) + 0.01 * sum(h1.W * h1.W)`,
}

func init() {
	unary := map[string]string{
		"relu": "relu(a)", "sigmoid": "sigmoid(a)", "tanh": "tanh(a)", "exp": "exp(a)",
		"log": "log(a * a + 1)", "sqrt": "sqrt(a * a + 0.5)", "neg": "-a",
		"gelu": "gelu(a)", "gelu_erf": "gelu_erf(a)",
	}
	for op, expr := range unary {
		opCases[op] = "input x: [5]\nparam W: [5, 5]\na = x @ W - 0.25\nh = " + expr + "\nloss = mean(h * h)\noutput h"
	}
	binary := map[string]string{"add": "+", "sub": "-", "mul": "*", "div": "/"}
	for op, sym := range binary {
		f := func(v string) string { return v }
		if op == "div" {
			f = func(v string) string { return "exp(" + v + ")" } // positive denominators
		}
		opCases[op] = strings.NewReplacer("OP", sym).Replace(`input x: [3]
input z: [4, 3]
param b: [3]
param c: [1]
param s: [4, 1]
param w: [3]
h = x OP ` + f("b") + `
k = ` + f("b") + ` OP h
u = z OP ` + f("s") + `
v = ` + f("c") + ` OP h
q = h OP 2
r = 2 OP ` + f("h") + `
t = h OP h
loss = mean(k * k) + mean(u * u) + mean(v * v) + mean(q * q) + mean(r * r) + mean(t * t) + mean(h * w)
output h`)
	}
}

// inputGradCases are generated with -input-grads, so their gradient check
// also covers the inputs: through time to the sequence and initial states.
var inputGradCases = map[string]bool{"simple_rnn": true, "lstm": true, "gru": true, "conv2d": true, "sequence_dense": true, "sequence_dense_act": true,
	"batch_norm": true, "layer_norm": true, "dropout": true, "attention": true,
	"batch_matmul": true, "permute": true, "causal_mask": true, "split": true}

// TestOpGradients generates one package per case, then runs all of their
// generated tests in one go test call.
func TestOpGradients(t *testing.T) {
	covered := map[string]string{"rnn": "lstm", "time_last": "gru"} // ops exercised by a case of another name
	for _, op := range ir.Ops() {
		if op.Grad != nil {
			name := op.Name
			if c, ok := covered[name]; ok {
				name = c
			}
			if _, ok := opCases[name]; !ok {
				t.Errorf("op %s has an adjoint rule but no finite-difference case in opCases", op.Name)
			}
		}
	}
	dir := module(t)
	names := make([]string, 0, len(opCases))
	for name := range opCases {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		pkg := filepath.Join(dir, name)
		os.MkdirAll(pkg, 0o755)
		// Batch 5 so partial batches (n=3) and full ones differ.
		src := "model m\nbatch 5\n" + opCases[name] + "\n"
		path := filepath.Join(pkg, "m.bpg")
		os.WriteFile(path, []byte(src), 0o644)
		// -all-bounds: each generated TestCheckGrads also checks the
		// op's bound rule wherever one applies.
		args := []string{"-all-bounds", "-pkg", "op" + strings.ReplaceAll(name, "_", "")}
		if inputGradCases[name] {
			args = append(args, "-input-grads") // also check d(loss)/d(x, h0, c0)
		}
		if code, _, e := runCLI(append(args, path)...); code != 0 {
			t.Fatalf("%s: exit %d: %s\n%s", name, code, e, src)
		}
	}
	out := goCmd(t, dir, "test", "-count=1", "-v", "-run", "TestGradients|TestFloat32MatchesFloat64|TestTrainStepAllocs|TestRTRLMatchesBPTT|TestNonFiniteInputs|TestCheckGrads|TestAnomaly", "./...")
	if !strings.Contains(out, "--- PASS: TestRTRLMatchesBPTTR1") {
		t.Errorf("the simple_rnn case's generated RTRL test did not run and pass")
	}
	for _, name := range names {
		if !strings.Contains(out, "ok  \texample.com/user/"+name) {
			t.Errorf("%s: generated gradient check did not pass:\n%s", name, out)
		}
	}
}

// TestCompilerDoesNotLinkRuntime: the generator (ir, desc, derive, emit)
// shares with the runtime only the leaf package runtime/spec, so the
// command does not link the kernel library.
func TestCompilerDoesNotLinkRuntime(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "github.com/backpropgen/backpropgen/runtime" {
			t.Fatalf("cmd/backpropgen depends on package runtime:\n%s", out)
		}
	}
}

// TestFoldMatchesUnfolded generates the batch_norm case twice, with its
// inference-mode batch norms folded into the products before them (the
// default) and kept as passes of their own (-no-fold), trains the second a
// few steps (so the running statistics are not their initial values),
// loads its checkpoint into the first, and requires both to infer the same
// outputs to float32 rounding.
func TestFoldMatchesUnfolded(t *testing.T) {
	dir := module(t)
	// At a batch of 40 both the convolution's and the dense layer's batch
	// norms fold (their weights are smaller than the norms' outputs).
	src := "model m\nbatch 40\n" + opCases["batch_norm"] + "\n"
	for _, pkg := range []string{"folded", "unfolded"} {
		os.MkdirAll(filepath.Join(dir, pkg), 0o755)
		path := filepath.Join(dir, pkg, "m.bpg")
		os.WriteFile(path, []byte(src), 0o644)
		args := []string{"-pkg", pkg, "-tests=false"}
		if pkg == "unfolded" {
			args = append(args, "-no-fold")
		}
		if code, _, e := runCLI(append(args, path)...); code != 0 {
			t.Fatalf("%s: exit %d: %s", pkg, code, e)
		}
	}
	if _, out, _ := runCLI("-ir", filepath.Join(dir, "folded", "m.bpg")); !strings.Contains(out, "batch_norm_fold %2 c.W") || !strings.Contains(out, "batch_norm_fold %20 h.W") {
		t.Fatalf("the folded package does not fold both c's and h's batch norms:\n%s", out)
	}
	test := `package fold

import (
	"math"
	"path/filepath"
	"testing"

	"example.com/user/folded"
	"example.com/user/unfolded"
	"github.com/backpropgen/backpropgen/runtime"
)

func TestFold(t *testing.T) {
	u, f := unfolded.New(), folded.New()
	u.Init(1)
	opt := runtime.NewAdam[float32](unfolded.NumParams, 0.05)
	rng := runtime.NewRNG(2)
	for range 5 {
		for i := range u.X {
			u.X[i] = float32(rng.NormFloat64())
		}
		for i := range u.Y {
			u.Y[i] = int32(rng.IntN(3))
		}
		if _, err := u.TrainStep(unfolded.Batch, opt); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "m.safetensors")
	if err := u.SaveCheckpoint(path, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.LoadCheckpoint(path, nil); err != nil {
		t.Fatal(err)
	}
	copy(f.X, u.X)
	if err := u.Infer(unfolded.Batch); err != nil {
		t.Fatal(err)
	}
	if err := f.Infer(folded.Batch); err != nil {
		t.Fatal(err)
	}
	a, b := u.Output(unfolded.Batch), f.Output(folded.Batch)
	for i := range a {
		if math.Abs(float64(a[i]-b[i])) > 1e-5*(1+math.Abs(float64(a[i]))) {
			t.Fatalf("output %d: unfolded %v, folded %v", i, a[i], b[i])
		}
	}
}
`
	os.MkdirAll(filepath.Join(dir, "fold"), 0o755)
	os.WriteFile(filepath.Join(dir, "fold", "fold_test.go"), []byte(test), 0o644)
	goCmd(t, dir, "test", "-count=1", "./fold")
}

// attentionByHand is the fused attention written with primitives: the
// queries, keys and values split off qkv, heads split by a reshape and a
// permute, scaled scores, the causal mask, the softmax, the weighted sum,
// and the heads merged back. CAUSAL is replaced by the mask or nothing.
const attentionByHand = `qkv = dense(x, 12)
q = permute(reshape(split(qkv, 3, 0), [batch, 5, 2, 2]), [0, 2, 1, 3])
k = permute(reshape(split(qkv, 3, 1), [batch, 5, 2, 2]), [0, 2, 1, 3])
v = permute(reshape(split(qkv, 3, 2), [batch, 5, 2, 2]), [0, 2, 1, 3])
s = q @ transpose(k) / sqrt(2)
p = softmax(CAUSAL)
a = reshape(permute(p @ v, [0, 2, -3, -1]), [batch, 5, 4])`

// TestAttentionPrimitives generates the fused attention op and the same
// attention written with primitives (causal and not) as float64 packages
// with input gradients, gives both the same parameters and batch, and
// requires the same loss and the same gradients of every parameter and of
// the input, to 1e-12.
func TestAttentionPrimitives(t *testing.T) {
	dir := module(t)
	head := "model m\nbatch 5\ninput x: [5, 4]\nlabel y: [5] class(3)\n"
	tail := "\nlogits = dense(a, 3)\nloss = softmax_cross_entropy(logits, y)\n"
	srcs := map[string]string{
		"fused":      head + "qkv = dense(x, 12)\na = attention(qkv, 2)" + tail,
		"byhand":     head + strings.ReplaceAll(attentionByHand, "CAUSAL", "causal_mask(s)") + tail,
		"fusedfull":  head + "qkv = dense(x, 12)\na = attention(qkv, 2, causal=false)" + tail,
		"byhandfull": head + strings.ReplaceAll(attentionByHand, "CAUSAL", "s") + tail,
	}
	for pkg, src := range srcs {
		os.MkdirAll(filepath.Join(dir, pkg), 0o755)
		path := filepath.Join(dir, pkg, "m.bpg")
		os.WriteFile(path, []byte(src), 0o644)
		if code, _, e := runCLI("-pkg", pkg, "-float64", "-input-grads", "-tests=false", path); code != 0 {
			t.Fatalf("%s: exit %d: %s\n%s", pkg, code, e, src)
		}
	}
	// The primitives go through split, permute, the product of stacks and
	// the mask, not the fused op.
	if _, out, _ := runCLI("-ir", filepath.Join(dir, "byhand", "m.bpg")); strings.Contains(out, "attention") ||
		!strings.Contains(out, "batch_matmul") || !strings.Contains(out, "causal_mask") || !strings.Contains(out, "[transB]") {
		t.Fatalf("the primitives' IR is not made of split, permute, batch_matmul (with k's transpose folded in) and causal_mask:\n%s", out)
	}
	test := `package same

import (
	"math"
	"math/rand/v2"
	"testing"

	"example.com/user/byhand"
	"example.com/user/byhandfull"
	"example.com/user/fused"
	"example.com/user/fusedfull"
)

type model interface {
	Init(seed uint64)
	Param(name string) []float64
	Grad(name string) []float64
	Gradients(n int) (float64, error)
}

func compare(t *testing.T, f, h model, fx, hx, fdx, hdx []float64, fy, hy []int32) {
	f.Init(1)
	h.Init(2)
	names := []string{"qkv.W", "qkv.b", "logits.W", "logits.b"}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, name := range names {
		p := f.Param(name)
		for i := range p {
			p[i] = rng.NormFloat64() // the biases too, so they are not 0
		}
		copy(h.Param(name), p)
	}
	for i := range fx {
		fx[i] = rng.NormFloat64()
	}
	copy(hx, fx)
	for i := range fy {
		fy[i] = int32(rng.IntN(3))
	}
	copy(hy, fy)
	for _, n := range []int{5, 3} {
		lf, err := f.Gradients(n)
		if err != nil {
			t.Fatal(err)
		}
		lh, err := h.Gradients(n)
		if err != nil {
			t.Fatal(err)
		}
		close := func(what string, a, b []float64) {
			t.Helper()
			for i := range a {
				if math.Abs(a[i]-b[i]) > 1e-12*(1+math.Abs(a[i])) {
					t.Fatalf("n=%d %s[%d]: fused %v, by hand %v", n, what, i, a[i], b[i])
				}
			}
		}
		close("loss", []float64{lf}, []float64{lh})
		for _, name := range names {
			close("d"+name, f.Grad(name), h.Grad(name))
		}
		close("dx", fdx[:n*20], hdx[:n*20])
	}
}

func TestSame(t *testing.T) {
	t.Run("causal", func(t *testing.T) {
		f, h := fused.New(), byhand.New()
		compare(t, f, h, f.X, h.X, f.DX, h.DX, f.Y, h.Y)
	})
	t.Run("full", func(t *testing.T) {
		f, h := fusedfull.New(), byhandfull.New()
		compare(t, f, h, f.X, h.X, f.DX, h.DX, f.Y, h.Y)
	})
}
`
	os.MkdirAll(filepath.Join(dir, "same"), 0o755)
	os.WriteFile(filepath.Join(dir, "same", "same_test.go"), []byte(test), 0o644)
	goCmd(t, dir, "test", "-count=1", "./same")
}
