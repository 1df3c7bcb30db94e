package derive

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/backpropgen/backpropgen/ir"
	"github.com/backpropgen/backpropgen/ir/desc"
)

func derive(t *testing.T, src string, opt Options) *Program {
	t.Helper()
	g, err := desc.Parse("m.bpg", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Derive(g, opt)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mlp(t *testing.T) string {
	src, err := os.ReadFile("../generated/mlp/mlp.bpg")
	if err != nil {
		t.Fatal(err)
	}
	return string(src)
}

// descriptions covers the shapes of graph the invariants must hold for.
func descriptions(t *testing.T) map[string]string {
	d := map[string]string{"mlp": mlp(t)}
	files, _ := filepath.Glob("../emit/testdata/*.txtar")
	for _, f := range files {
		data, _ := os.ReadFile(f)
		s := string(data)
		const marker = "-- model.bpg --\n"
		if i := len(marker); len(s) > i && s[:i] == marker {
			s = s[i:]
			if j := indexOf(s, "\n-- "); j >= 0 {
				s = s[:j+1]
			}
			d[filepath.Base(f)] = s
		}
	}
	return d
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// TestSimplified: no x·1, x·0, x+0, double transposes or dead values remain.
func TestSimplified(t *testing.T) {
	for name, src := range descriptions(t) {
		p := derive(t, src, Options{})
		users := p.Users()
		for _, n := range append(append([]*ir.Node{}, p.Forward...), p.Backward...) {
			for _, a := range n.Args {
				switch {
				case n.Op.Name == "mul" && a.Op.Name == "const" && a.Shape.IsScalar() && (a.Attrs.Value == 1 || a.Attrs.Value == 0):
					t.Errorf("%s: %s multiplies by %g", name, ir.FormatNode(n), a.Attrs.Value)
				case (n.Op.Name == "add" || n.Op.Name == "sub") && a.Op.Name == "const" && a.Attrs.Value == 0:
					t.Errorf("%s: %s adds 0", name, ir.FormatNode(n))
				case n.Op.Name == "transpose" && a.Op.Name == "transpose":
					t.Errorf("%s: %s is a double transpose", name, ir.FormatNode(n))
				}
			}
			if len(users[n]) == 0 && n.Op.Name != "acc_grad" && n != p.Graph.Loss && n != p.Graph.Output {
				t.Errorf("%s: dead value %s", name, ir.FormatNode(n))
			}
		}
	}
}

// TestFusedSoftmaxCrossEntropy: the loss gradient is one fused op, never a
// chain through softmax, exp or log; and only parameter gradients are made.
func TestFusedSoftmaxCrossEntropy(t *testing.T) {
	p := derive(t, mlp(t), Options{})
	count := map[string]int{}
	for _, n := range p.Backward {
		count[n.Op.Name]++
	}
	if count["softmax_cross_entropy_grad"] != 1 || count["softmax"]+count["exp"]+count["log"]+count["softmax_grad"] != 0 {
		t.Errorf("backward ops %v: want one fused softmax_cross_entropy_grad", count)
	}
	// dh2, dh1 and three weight gradients; no dx (inputs get no gradient).
	if count["matmul"] != 5 {
		t.Errorf("%d backward matmuls, want 5", count["matmul"])
	}
	for _, n := range p.Backward {
		if s := p.Plan.Slot(n); n.Op.Name == "acc_grad" && s.Kind != Folded {
			t.Errorf("%s was not folded into its producer", ir.FormatNode(n))
		}
	}
	// Both hidden layers become one product with the bias and relu as its
	// epilogue; the output layer one with its bias alone (identity).
	acts := []*ir.OpDef{}
	for _, n := range p.Forward {
		switch n.Op.Name {
		case "matmul_bias_act":
			acts = append(acts, n.Attrs.Act)
		case "relu", "bias_act", "add", "matmul":
			t.Errorf("%s was not fused into its product", ir.FormatNode(n))
		}
	}
	if want := []*ir.OpDef{ir.Relu, ir.Relu, ir.Identity}; !slices.Equal(acts, want) {
		t.Errorf("fused products with activations %v, want relu, relu, identity", acts)
	}
	withInputs := derive(t, mlp(t), Options{InputGrads: true})
	if len(withInputs.Backward) <= len(p.Backward) || len(withInputs.Sinks) != len(p.Sinks)+1 {
		t.Error("InputGrads did not add the input's gradient")
	}
}

// TestPlanNoOverlap: two arena buffers that share memory are never live at
// the same time, and every buffer fits in the arena.
func TestPlanNoOverlap(t *testing.T) {
	for name, src := range descriptions(t) {
		p := derive(t, src, Options{})
		order := append(append([]*ir.Node{}, p.Forward...), p.Backward...)
		pos := map[*ir.Node]int{}
		for i, n := range order {
			pos[n] = i
		}
		root := func(n *ir.Node) *ir.Node {
			for p.Plan.Slot(n).Kind == View {
				n = p.Plan.Slot(n).Root
			}
			return n
		}
		last := map[*ir.Node]int{}
		for i, n := range order {
			for _, a := range n.Args {
				last[root(a)] = max(last[root(a)], i)
			}
		}
		last[root(p.Graph.Loss)] = len(order)
		last[root(p.Graph.Output)] = len(order)
		var bufs []*ir.Node
		for _, n := range order {
			if s := p.Plan.Slot(n); s.Kind == Arena && n.Op.Name != "acc_grad" {
				bufs = append(bufs, n)
				if s.Offset+s.Size > p.Plan.ArenaSize || s.Offset%p.Plan.Align != 0 {
					t.Errorf("%s: %v at %d+%d outside the arena of %d or unaligned", name, n, s.Offset, s.Size, p.Plan.ArenaSize)
				}
			}
		}
		for i, a := range bufs {
			for _, b := range bufs[i+1:] {
				sa, sb := p.Plan.Slot(a), p.Plan.Slot(b)
				memory := sa.Offset < sb.Offset+sb.Size && sb.Offset < sa.Offset+sa.Size
				time := pos[a] <= last[b] && pos[b] <= last[a]
				if memory && time {
					t.Errorf("%s: %s and %s share memory while both are live", name, ir.FormatNode(a), ir.FormatNode(b))
				}
			}
		}
		total := 0
		for _, n := range bufs {
			total += n.Shape.Elems()
		}
		t.Logf("%s: arena %d elements for %d buffers of %d elements in all", name, p.Plan.ArenaSize, len(bufs), total)
	}
}

// TestUnusedParam: a parameter that only the output reads (the parser
// refuses one that nothing reads) gets no gradient from the loss.
func TestUnusedParam(t *testing.T) {
	p := derive(t, "model m\nbatch 2\ninput x: [2]\nparam W: [2, 2]\nparam unused: [2]\nh = x @ W\no = h + unused\nloss = sum(h)\noutput o\n", Options{})
	if len(p.Unused) != 1 || p.Unused[0].Name != "unused" {
		t.Errorf("unused params %v", p.Unused)
	}
}

// TestFusedEpilogues: a bias add and activation become the epilogue of the
// product or convolution before them only when nothing else reads that
// product; otherwise they stay one bias_act pass.
func TestFusedEpilogues(t *testing.T) {
	count := func(src string) map[string]int {
		c := map[string]int{}
		for _, n := range derive(t, src, Options{}).Forward {
			c[n.Op.Name]++
		}
		return c
	}
	const head = "model fuse\nbatch 4\ninput x: [6, 6, 2]\nlabel y: class(3)\n"
	cases := []struct {
		name, body string
		want       map[string]int
	}{
		{"conv and dense", "c = conv2d(x, 4, 3, activation=tanh)\nf = flatten(c)\nlogits = dense(f, 3, sigmoid)\nloss = softmax_cross_entropy(logits, y)\n",
			map[string]int{"conv2d_bias_act": 1, "matmul_bias_act": 1, "bias_act": 0, "conv2d": 0, "matmul": 0}},
		{"product read twice", "f = flatten(x)\nparam W: [72, 3]\nparam b: [3]\nz = f @ W\nlogits = relu(z + b) + z\nloss = softmax_cross_entropy(logits, y)\n",
			map[string]int{"bias_act": 1, "matmul": 1, "matmul_bias_act": 0}},
		// A residual connection around a dense layer: the add is the
		// product's epilogue.
		{"residual", "f = flatten(x)\nh = dense(f, 72) + f\nlogits = dense(h, 3)\nloss = softmax_cross_entropy(logits, y)\n",
			map[string]int{"matmul_bias_add": 1, "matmul_bias_act": 1, "add": 0, "matmul": 0}},
		{"residual first", "f = flatten(x)\nh = f + dense(f, 72)\nlogits = dense(h, 3)\nloss = softmax_cross_entropy(logits, y)\n",
			map[string]int{"matmul_bias_add": 1, "add": 0}},
		// The sum read again, or a residual that broadcasts, or an
		// activation in between: not fused.
		{"residual sum read twice", "f = flatten(x)\nparam W: [72, 72]\nparam b: [72]\nz = f @ W + b\nh = z + f\nlogits = dense(h * z, 3)\nloss = softmax_cross_entropy(logits, y)\n",
			map[string]int{"matmul_bias_add": 0, "add": 1}},
		{"residual broadcast", "f = flatten(x)\nparam r: [72]\nh = dense(f, 72) + r\nlogits = dense(h, 3)\nloss = softmax_cross_entropy(logits, y)\n",
			map[string]int{"matmul_bias_add": 0}},
		{"residual after activation", "f = flatten(x)\nh = dense(f, 72, tanh) + f\nlogits = dense(h, 3)\nloss = softmax_cross_entropy(logits, y)\n",
			map[string]int{"matmul_bias_add": 0, "matmul_bias_act": 2}},
	}
	for _, c := range cases {
		got := count(head + c.body)
		for op, n := range c.want {
			if got[op] != n {
				t.Errorf("%s: %d %s ops, want %d (forward ops %v)", c.name, got[op], op, n, got)
			}
		}
	}
}

// TestFusedBiasGradients: each hidden layer's bias gradient (the column
// sums of its activation's gradient) is planned into the activation
// gradient's pass; the output layer's, which has no activation, is not.
func TestFusedBiasGradients(t *testing.T) {
	p := derive(t, mlp(t), Options{})
	fused, plain := 0, 0
	for _, n := range p.Backward {
		s := p.Plan.Slot(n)
		switch {
		case n.Op.Name == "relu_grad":
			if s.FusedSum == nil || !p.Plan.Fused(s.FusedSum) {
				t.Errorf("%s does not compute its bias gradient", ir.FormatNode(n))
			}
			fused++
		case n.Op.Name == "sum" && !p.Plan.Fused(n):
			plain++
		}
	}
	if fused != 2 || plain != 1 {
		t.Errorf("%d fused and %d separate bias gradients, want 2 and 1", fused, plain)
	}
}

// TestCommutePools: a bias and relu before a max pool move after it when
// nothing else reads them and the pool has no padding; otherwise the graph
// keeps its order.
func TestCommutePools(t *testing.T) {
	const head = "model pool\nbatch 4\ninput x: [6, 6, 2]\nlabel y: class(3)\n"
	const tail = "f = flatten(p)\nlogits = dense(f, 3)\nloss = softmax_cross_entropy(logits, y)\n"
	cases := []struct {
		name, body string
		moved      bool
	}{
		{"conv relu pool", "c = conv2d(x, 4, 3, activation=relu)\np = maxpool2d(c, 2)\n", true},
		{"relu pool, no bias", "c = conv2d(x, 4, 3)\np = maxpool2d(relu(c), 2)\n", true},
		{"padded pool", "c = conv2d(x, 4, 3, activation=relu)\np = maxpool2d(c, 3, stride=2, padding=same)\n", false},
		{"tanh", "c = conv2d(x, 4, 3, activation=tanh)\np = maxpool2d(c, 2)\n", false},
		{"relu read twice", "c = conv2d(x, 4, 3, activation=relu)\np = maxpool2d(c, 2) + maxpool2d(c, 2)\n", false},
		{"average pool", "c = conv2d(x, 4, 3, activation=relu)\np = avgpool2d(c, 2)\n", false},
	}
	for _, c := range cases {
		g, err := desc.Parse("m.bpg", []byte(head+c.body+tail))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		p, err := Derive(g, Options{})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		// Moved: the pool reads the convolution (or its bias sum) and the
		// activation reads the pool.
		moved := false
		for _, n := range p.Forward {
			if (n.Op.Name == "bias_act" || n.Op.Name == "relu") && n.Args[0].Op.Name == "maxpool2d" {
				moved = true
			}
		}
		if moved != c.moved {
			t.Errorf("%s: moved = %v, want %v; forward:\n%s", c.name, moved, c.moved, formatNodes(p.Forward))
		}
	}
}

func formatNodes(ns []*ir.Node) string {
	var s string
	for _, n := range ns {
		s += ir.FormatNode(n) + "\n"
	}
	return s
}

// TestOverwrite: a training step's backward pass overwrites each
// parameter's gradient with its first write when that kernel can (one
// per parameter, however many contributions), never a recurrent layer's
// weights (rnn_grad adds into them) nor an input's gradient.
func TestOverwrite(t *testing.T) {
	const src = "model ow\nbatch 4\ninput x: [3, 2]\nlabel y: class(3)\n" +
		"r = simple_rnn(x, 4)\nh = dense(r, 5, tanh)\nlogits = dense(h, 3)\n" +
		"loss = softmax_cross_entropy(logits, y) + 0.01 * sum(h.W * h.W)\n"
	p := derive(t, src, Options{InputGrads: true})
	marks := map[string]int{}
	for _, s := range p.Plan.Slots {
		if s.Overwrite {
			marks[s.Sink.Name]++
		}
	}
	for _, s := range p.Sinks {
		want := 1
		if strings.HasPrefix(s.Name, "r.") || s.Name == "x" {
			want = 0
		}
		if marks[s.Name] != want || p.Plan.Overwritten(s) != (want == 1) {
			t.Errorf("%s: %d overwriting writes (Overwritten %v), want %d", s.Name, marks[s.Name], p.Plan.Overwritten(s), want)
		}
	}
}

// TestFileAxes: a conv kernel is stored in PyTorch's (F, C, KH, KW) order
// whichever op reads it: the plain convolution, and the one fused with its
// bias and activation (conv2d_bias_act) after derivation.
func TestFileAxes(t *testing.T) {
	p := derive(t, `model m
batch 2
input x: [6, 6, 2]
label y: class(3)
a = conv2d(x, 4, 3, activation=tanh)
b = conv2d(a, 4, 3)
f = flatten(b)
logits = dense(f, 3)
loss = softmax_cross_entropy(logits, y)
`, Options{})
	fused := false
	for _, n := range p.Forward {
		fused = fused || n.Op.Name == "conv2d_bias_act"
	}
	if !fused {
		t.Fatal("a's convolution was not fused with its bias and tanh; the test needs it")
	}
	for _, prm := range p.Graph.Params {
		want := []int(nil)
		if prm.Name == "a.W" || prm.Name == "b.W" {
			want = []int{3, 2, 0, 1}
		}
		if got := p.FileAxes(prm); !slices.Equal(got, want) {
			t.Errorf("%s: file axes %v, want %v", prm.Name, got, want)
		}
	}
}
