package ir

import (
	"strings"
	"testing"

	"github.com/backpropgen/backpropgen/runtime/spec"
)

// TestEveryOpHasAdjoint: each op has exactly one of an adjoint rule and a
// stated reason for having none, and a shape rule.
func TestEveryOpHasAdjoint(t *testing.T) {
	for _, op := range Ops() {
		if (op.Grad == nil) == (op.NoGrad == "") {
			t.Errorf("op %s: needs exactly one of Grad and NoGrad", op.Name)
		}
		if op.Shape == nil {
			t.Errorf("op %s: no shape rule", op.Name)
		}
	}
}

func input(b *Builder, name string, dims ...int) *Node {
	s := Shape{{Size: 8, Batch: true}}
	return b.Leaf(Input, name, append(s, Fixed(dims...)...), Attrs{})
}

func param(b *Builder, name string, dims ...int) *Node {
	return b.Leaf(Param, name, Fixed(dims...), Attrs{Init: spec.Zeros})
}

func TestShapeRules(t *testing.T) {
	b := &Builder{}
	x := input(b, "x", 3)
	w := param(b, "W", 3, 4)
	cases := []struct {
		n    *Node
		want string
	}{
		{b.MatMul(x, w, false, false), "(N, 4)"},
		{b.MatMul(x, x, true, false), "(3, 3)"},
		{b.MatMul(w, w, true, false), "(4, 4)"},
		{b.Add(x, param(b, "c", 3)), "(N, 3)"},
		{b.Mul(x, input(b, "s", 1)), "(N, 3)"},
		{b.Sum(x, []int{0}, false), "(3)"},
		{b.Sum(x, []int{-1}, true), "(N, 1)"},
		{b.Sum(x, nil, false), "()"},
		{b.Transpose(x), "(3, N)"},
		{b.Reshape(input(b, "img", 2, 6), Shape{{Size: 8, Batch: true}, {Size: 3}, {Size: 4}}), "(N, 3, 4)"},
	}
	if b.Err != nil {
		t.Fatal(b.Err)
	}
	for _, c := range cases {
		if got := c.n.Shape.String(); got != c.want {
			t.Errorf("%s: shape %s, want %s", FormatNode(c.n), got, c.want)
		}
	}
}

func TestShapeErrors(t *testing.T) {
	for name, build := range map[string]func(b *Builder){
		"matmul inner": func(b *Builder) { b.MatMul(input(b, "x", 3), param(b, "W", 4, 2), false, false) },
		"broadcast":    func(b *Builder) { b.Add(input(b, "x", 3), param(b, "c", 4)) },
		"batch vs 8":   func(b *Builder) { b.Add(input(b, "x", 3), param(b, "c", 8, 3)) },
		"reshape":      func(b *Builder) { b.Reshape(input(b, "x", 3), Fixed(3)) },
		"two batches":  func(b *Builder) { b.MatMul(input(b, "x", 3), input(b, "y", 3), false, true) },
		"axis":         func(b *Builder) { b.Sum(input(b, "x", 3), []int{2}, false) },
	} {
		b := &Builder{}
		build(b)
		if b.Err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestSimplify checks the algebra the builder applies on construction.
func TestSimplify(t *testing.T) {
	b := &Builder{}
	x := input(b, "x", 3)
	w := param(b, "W", 4, 3)
	if got := b.Mul(x, b.Const(1)); got != x {
		t.Errorf("x·1 = %v", FormatNode(got))
	}
	if got := b.Add(b.Const(0), x); got != x {
		t.Errorf("0+x = %v", FormatNode(got))
	}
	if got := b.Mul(x, b.Const(0)); got.Op != Const || !got.Shape.Equal(x.Shape) {
		t.Errorf("x·0 = %v", FormatNode(got))
	}
	if got := b.Transpose(b.Transpose(x)); got != x {
		t.Errorf("(xᵀ)ᵀ = %v", FormatNode(got))
	}
	if got := b.Neg(b.Neg(x)); got != x {
		t.Errorf("--x = %v", FormatNode(got))
	}
	mm := b.MatMul(x, b.Transpose(w), false, false)
	if mm.Op != MatMul || !mm.Attrs.TransB || mm.Args[1] != w {
		t.Errorf("x·(Wᵀ) = %v, want matmul with transB", FormatNode(mm))
	}
	if got := b.Mul(b.Const(2), b.Const(3)); got.Op != Const || got.Attrs.Value != 6 {
		t.Errorf("2·3 = %v", FormatNode(got))
	}
	if b.Err != nil {
		t.Fatal(b.Err)
	}
}

func TestFormatDeterministic(t *testing.T) {
	build := func() string {
		b := &Builder{}
		x := input(b, "x", 3)
		w := param(b, "W", 3, 2)
		b.Pos = Pos{File: "m.bpg", Line: 7, Col: 1}
		b.Sum(b.Op(Relu, Attrs{}, b.MatMul(x, w, false, false)), []int{1}, true)
		var s strings.Builder
		Format(&s, b.Nodes)
		return s.String()
	}
	a, c := build(), build()
	if a != c {
		t.Fatalf("two builds print differently:\n%s\n%s", a, c)
	}
	want := "%4 %4 (N, 1) = sum %3 %3 [axes=[1] keepdims]  @7"
	if !strings.Contains(a, want) {
		t.Errorf("text form:\n%s\nwant a line %q", a, want)
	}
}
