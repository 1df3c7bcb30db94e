package desc

import (
	"errors"
	"strings"
	"testing"

	"github.com/backpropgen/backpropgen/derive"
	"github.com/backpropgen/backpropgen/emit"
	"github.com/backpropgen/backpropgen/ir"
)

const header = "model m\nbatch 4\ninput x: [3]\nlabel y: class(2)\n"

func TestParseMLP(t *testing.T) {
	src := header + "h = dense(x, 5, relu)\nlogits = dense(h, 2)\nloss = softmax_cross_entropy(logits, y)\n"
	g, err := Parse("m.bpg", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if g.Model != "m" || g.Batch != 4 || len(g.Params) != 4 || g.Loss.Name != "loss" || g.Output.Name != "logits" {
		t.Fatalf("unexpected graph:\n%v", g)
	}
	want := []string{"h.W", "h.b", "logits.W", "logits.b"}
	for i, p := range g.Params {
		if p.Name != want[i] {
			t.Errorf("param %d = %s, want %s", i, p.Name, want[i])
		}
	}
}

func TestParseExpressions(t *testing.T) {
	src := `model expr   # every operator and function once
batch 8
input x: [4]
input t: [2]
param W: [4, 2] init lecun_normal
param c: [2]
a = x @ W + c
r = relu(a) + a            # a DAG: a has two uses
s = sigmoid(r) * tanh(r) - exp(-r) / 2
u = log(s * s + 1) + sqrt(s * s + 1)
v = reshape(transpose(transpose(u)), [batch, 2])
w = softmax(v) + log_softmax(v) + mean(v, axis=1, keepdims=true) + sum(v, 0)
loss = mse(w, t) + 0.01 * sum(W * W) + mean(matmul(x, W))
output w
`
	g, err := Parse("expr.bpg", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if g.Output.Name != "w" || len(g.Statements) != 7 {
		t.Fatalf("output %s, %d statements", g.Output.Name, len(g.Statements))
	}
	for _, n := range g.Nodes {
		if n.Op.Name == "transpose" {
			t.Errorf("double transpose survived: %v", ir.FormatNode(n))
		}
	}
}

// TestErrors feeds malformed descriptions; each must give one error at the
// right line and column whose message names the problem.
func TestErrors(t *testing.T) {
	cases := []struct {
		name, src string
		pos       string // line:col
		want      []string
	}{
		{"unknown name", header + "h = dense(z, 5)\n", "5:11", []string{"unknown name z", "x, y"}},
		{"duplicate name", header + "h = relu(x)\nh = relu(x)\n", "6:1", []string{"h is already defined at line 5"}},
		{"shape mismatch", header + "param b: [4]\nh = x + b\n", "6:7", []string{"shape mismatch", "(N, 3)", "(4)"}},
		{"matmul mismatch", header + "param W: [4, 2]\nh = x @ W\n", "6:7", []string{"(N, 3)", "(4, 2)", "inner dimensions"}},
		{"missing loss", header + "h = relu(x)\n", "6:1", []string{"missing loss"}},
		{"loss not scalar", header + "loss = relu(x)\n", "5:1", []string{"loss must be a scalar", "(N, 3)"}},
		{"missing model", "batch 4\ninput x: [3]\nloss = sum(x)\n", "1:1", []string{"missing model"}},
		{"missing batch", "model m\nparam p: [2]\nloss = sum(p)\n", "1:1", []string{"missing batch"}},
		{"input before batch", "model m\ninput x: [3]\n", "2:1", []string{"input before batch"}},
		{"unknown function", header + "h = relux(x)\n", "5:5", []string{"unknown function relux", "relu"}},
		{"unknown activation", header + "h = dense(x, 4, rlu)\n", "5:17", []string{"unknown activation", "relu"}},
		{"bad units", header + "h = dense(x, 0)\n", "5:14", []string{"units", "at least 1"}},
		{"bad init", header + "param W: [3, 3] init glorot\n", "5:22", []string{"glorot_uniform"}},
		{"unterminated call", header + "h = dense(x, 4\n", "5:15", []string{"\")\""}},
		{"unclosed paren", header + "h = (x + x\n", "5:11", []string{"\")\"", "column 5"}},
		{"trailing tokens", header + "h = relu(x) x\n", "5:13", []string{"unexpected name \"x\""}},
		{"bad character", header + "h = x $ x\n", "5:7", []string{"unexpected character '$'"}},
		{"empty rhs", header + "h =\n", "5:4", []string{"missing expression"}},
		{"keyword as name", header + "input = relu(x)\n", "5:1", []string{"keyword"}},
		{"label arithmetic", header + "h = y + 1\n", "5:7", []string{"class labels cannot"}},
		{"sce needs labels", header + "input t: [2]\nh = dense(x, 2)\nloss = softmax_cross_entropy(h, t)\n", "7:33", []string{"must be class labels"}},
		{"sce classes", header + "h = dense(x, 3)\nloss = softmax_cross_entropy(h, y)\n", "6:8", []string{"2 classes", "3 columns"}},
		{"bad batch", "model m\nbatch -3\n", "2:7", []string{"batch needs a whole number"}},
		{"bad class count", "model m\nbatch 2\nlabel y: class(1)\n", "3:16", []string{"from 2 to"}},
		{"reshape count", header + "h = reshape(x, [batch, 4])\n", "5:5", []string{"reshape (N, 3) to (N, 4)", "element counts differ"}},
		{"dense on images", "model m\nbatch 2\ninput x: [3, 4, 1]\nh = dense(x, 2)\n", "4:11", []string{"(N, features)", "(N, 3, 4, 1)", "flatten(x)"}},
		{"sequence labels", "model m\nbatch 2\ninput x: [3, 4]\nlabel y: [2] class(5)\nh = dense(x, 5)\nloss = softmax_cross_entropy(h, y)\n", "6:8", []string{"labels (N, 2) do not match logits (N, 3, 5)"}},
		{"too many args", header + "h = relu(x, x)\n", "5:5", []string{"relu takes 1 argument, got 2"}},
		{"unknown keyword", header + "h = dense(x, 2, acivation=relu)\n", "5:17", []string{"no argument acivation"}},
		{"bad axis", header + "h = sum(x, axis=5)\n", "5:5", []string{"axis 5 out of range"}},
		{"mse shapes", header + "input t: [2]\nloss = mse(x, t)\n", "6:8", []string{"prediction (N, 3), target (N, 2)"}},
		{"bad number", header + "h = x * 1.2.3\n", "5:9", []string{"malformed number"}},
		{"unknown statement", header + "layer h\n", "5:1", []string{"unknown statement \"layer\""}},
		{"duplicate model", "model a\nmodel b\nbatch 2\nparam p: [2]\nloss = sum(p)\n", "2:1", []string{"already named"}},
		{"dotted declaration", "model m\nbatch 2\ninput a.b: [2]\n", "3:7", []string{"cannot contain dots"}},
		{"list as tensor", header + "h = x + [1, 2]\n", "5:9", []string{"only an argument"}},
		{"unknown output", header + "loss = sum(x)\noutput q\n", "6:8", []string{"unknown name q"}},
		{"empty shape", "model m\nbatch 2\ninput x: []\n", "3:10", []string{"empty shape"}},
		{"tensor called", header + "h = x(1)\n", "5:5", []string{"x is a tensor, not a function"}},
		{"conv kernel too large", "model m\nbatch 2\ninput x: [4, 4, 1]\nc = conv2d(x, 2, 5)\n", "4:5", []string{"(N, 4, 4, 1)", "(5, 5, 1, 2)", "larger than the padded input 4x4"}},
		{"conv dilation too large", "model m\nbatch 2\ninput x: [6, 6, 1]\nc = conv2d(x, 2, 3, dilation=3)\n", "4:5", []string{"(N, 6, 6, 1)", "(3, 3, 1, 2)", "7x7 with dilation"}},
		{"pool too large", "model m\nbatch 2\ninput x: [3, 3, 1]\np = maxpool2d(x, 4)\n", "4:5", []string{"maxpool2d 4x4 over input (N, 3, 3, 1)", "larger"}},
		{"conv on 2-D", header + "c = conv2d(x, 2, 3)\n", "5:12", []string{"(N, height, width, channels)", "(N, 3)"}},
		{"unused line", header + "h = dense(x, 2)\ng = dense(x, 2)\nloss = softmax_cross_entropy(h, y)\n", "6:1", []string{"line g is never used", "neither the loss nor the output"}},
		{"unused chain", header + "h = dense(x, 2)\ng = dense(x, 2)\nf = relu(g)\nloss = softmax_cross_entropy(h, y)\n", "7:1", []string{"line f is never used"}},
		{"unused input", header + "input z: [2]\nh = dense(x, 2)\nloss = softmax_cross_entropy(h, y)\n", "5:7", []string{"input z is never used", "remove the declaration"}},
		{"unused parameter", header + "param p: [2]\nh = dense(x, 2)\nloss = softmax_cross_entropy(h, y)\n", "5:7", []string{"parameter p is never used"}},
		{"unused label", "model m\nbatch 4\ninput x: [3]\nlabel y: class(2)\nloss = sum(x)\noutput x\n", "4:7", []string{"label y is never used"}},
		{"embedding of labels", "model m\nbatch 2\ninput t: [4] tokens(6)\nlabel y: [4] class(6)\ne = embedding(y, 3)\n", "5:15", []string{"y is a label", "tokens(VOCAB)"}},
		{"conv padding", "model m\nbatch 2\ninput x: [6, 6, 1]\nc = conv2d(x, 2, 3, padding=full)\n", "4:29", []string{"valid or same"}},
	}
	if len(cases) < 20 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("m.bpg", []byte(c.src))
			if err == nil {
				t.Fatalf("no error for\n%s", c.src)
			}
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error %T %v is not an ErrorList", err, err)
			}
			first := list[0].Error()
			if !strings.HasPrefix(first, "m.bpg:"+c.pos+": ") {
				t.Errorf("error %q, want position m.bpg:%s", first, c.pos)
			}
			for _, w := range c.want {
				if !strings.Contains(first, w) {
					t.Errorf("error %q does not mention %q", first, w)
				}
			}
		})
	}
}

// TestNoCascade: uses of a name whose line failed are not reported again.
func TestNoCascade(t *testing.T) {
	_, err := Parse("m.bpg", []byte(header+"h = relu(q)\nlogits = dense(h, 2)\nloss = softmax_cross_entropy(logits, y)\n"))
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 1 || list[0].Pos.Line != 5 {
		t.Fatalf("got %v, want only the error on line 5", err)
	}
}

// TestSeveralErrors reports every bad line, not just the first.
func TestSeveralErrors(t *testing.T) {
	_, err := Parse("m.bpg", []byte(header+"a = relu(q)\nb = relu(r)\n"))
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 3 || list[1].Pos.Line != 6 || !strings.Contains(list[2].Msg, "missing loss") {
		t.Fatalf("got %v, want errors on lines 5 and 6 and the missing loss", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(header + "h = dense(x, 5, relu)\nlogits = dense(h, 2)\nloss = softmax_cross_entropy(logits, y)\n"))
	f.Add([]byte("model m\nbatch 2\ninput x: [2, 2]\nparam W: [2, 2]\nr = reshape(x, [batch, 4])\nloss = mean(r) + sum(W @ W, axis=[0, 1], keepdims=false)\n"))
	f.Add([]byte("model m\nbatch 1\ninput t: [1]\ninput x: [1]\np = sigmoid(dense(x, 1))\nloss = bce(p, t)\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		g, err := Parse("fuzz.bpg", src)
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			for _, e := range list {
				if e.Pos.Line < 1 || e.Pos.Col < 1 {
					t.Fatalf("error without a position: %v", e)
				}
			}
			return
		}
		if err := g.Verify(); err != nil {
			t.Fatal(err)
		}
		// A description that parses must also derive and emit (or fail
		// with an error), never panic.
		if p, err := derive.Derive(g, derive.Options{InputGrads: true}); err == nil {
			if _, err := emit.Generate(p, emit.Options{}); err != nil {
				t.Fatal(err)
			}
		}
	})
}
