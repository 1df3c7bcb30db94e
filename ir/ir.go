// Package ir is backpropgen's tensor IR: a typed SSA graph with static
// shapes, one op table holding each op's shape rule and adjoint rule side by
// side, a verifier, and a deterministic text form.
//
// Shapes are static except for the batch dimension: a Dim with Batch set has
// Size equal to the description's maximum batch, and at run time the
// generated code uses the row count n ≤ Size in its place.
package ir

import (
	"fmt"
	"math"
	"strings"

	"github.com/backpropgen/backpropgen/runtime/spec"
)

// Pos is a place in a description file.
type Pos struct {
	File      string
	Line, Col int
}

func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Dim is one dimension of a shape.
type Dim struct {
	Size  int
	Batch bool // the batch dimension: Size is the maximum, n ≤ Size at run time
}

// Shape is a tensor shape, outermost dimension first (row-major).
type Shape []Dim

// Fixed returns a shape of static dimensions.
func Fixed(sizes ...int) Shape {
	s := make(Shape, len(sizes))
	for i, n := range sizes {
		s[i] = Dim{Size: n}
	}
	return s
}

// Scalar is the shape of a scalar.
var Scalar = Shape{}

func (s Shape) String() string {
	var b strings.Builder
	b.WriteByte('(')
	for i, d := range s {
		if i > 0 {
			b.WriteString(", ")
		}
		if d.Batch {
			b.WriteByte('N')
		} else {
			fmt.Fprint(&b, d.Size)
		}
	}
	b.WriteByte(')')
	return b.String()
}

// Equal reports whether two shapes have the same dimensions.
func (s Shape) Equal(t Shape) bool {
	if len(s) != len(t) {
		return false
	}
	for i := range s {
		if s[i] != t[i] {
			return false
		}
	}
	return true
}

// MaxElems is the most elements one tensor may hold at the maximum batch:
// the kernels index with int and record argmax positions as int32, and a
// larger tensor is a mistake in a description rather than a model.
const MaxElems = math.MaxInt32

// Count returns the number of elements at the maximum batch size, and false
// when that exceeds MaxElems; the product stops growing past the limit, so
// it never wraps.
func (s Shape) Count() (int, bool) {
	n := 1
	for _, d := range s {
		if d.Size < 0 || d.Size > 0 && n > MaxElems/d.Size {
			return 0, false
		}
		n *= d.Size
	}
	return n, n <= MaxElems
}

// SizeError describes a shape holding more than MaxElems elements, or
// returns nil.
func (s Shape) SizeError() error {
	if _, ok := s.Count(); ok {
		return nil
	}
	f := 1.0
	for _, d := range s {
		f *= float64(d.Size)
	}
	at := ""
	if s.HasBatch() {
		at = " at the maximum batch"
	}
	return fmt.Errorf("%v would hold %.3g elements%s, more than the %d (2^31-1) one tensor may hold; make it smaller (fewer units, filters, steps or rows per batch)", s, f, at, MaxElems)
}

// Elems is the number of elements at the maximum batch size.
func (s Shape) Elems() int {
	n := 1
	for _, d := range s {
		n *= d.Size
	}
	return n
}

// IsScalar reports whether the shape holds exactly one element.
func (s Shape) IsScalar() bool {
	for _, d := range s {
		if d.Size != 1 || d.Batch {
			return false
		}
	}
	return true
}

// HasBatch reports whether any dimension is the batch dimension.
func (s Shape) HasBatch() bool {
	for _, d := range s {
		if d.Batch {
			return true
		}
	}
	return false
}

// Clone returns a copy of s.
func (s Shape) Clone() Shape { return append(Shape{}, s...) }

// DType is a tensor's element kind.
type DType uint8

const (
	Float DType = iota // float32 or float64, chosen by the emitter
	Int                // int32 class labels
)

// Attrs are an op's static attributes; each op uses the fields it needs.
type Attrs struct {
	Axes     []int      // sum, mean: reduced axes (sorted); broadcast_to: broadcast axes
	KeepDims bool       // sum, mean
	TransA   bool       // matmul: use Aᵀ
	TransB   bool       // matmul: use Bᵀ
	Value    float64    // const
	To       Shape      // reshape, broadcast_to, const: result shape
	Mean     bool       // broadcast_to: scale by 1/(broadcast count), the mean's adjoint
	Init     spec.Init  // param: initializer
	Classes  int        // label: number of classes (the vocabulary, for token ids)
	Tokens   bool       // label: token ids the model reads (tokens(V)), not class labels it predicts
	Param    *Node      // acc_grad: the parameter whose gradient accumulates
	Window   *Window    // conv2d, pooling and their gradients
	RNN      *Recurrent // rnn and rnn_grad
	Offset   int        // slice: element offset into the argument
	Act      *OpDef     // bias_act and the fused products: the activation after the bias (nil: none)
	Eps      float64    // batch_norm, layer_norm: added to the variance
	Momentum float64    // batch_norm: the running statistics' update rate
	Rate     float64    // dropout: the probability of dropping an element
	Key      int        // dropout: the layer's index among the description's dropouts, part of its masks' key
	Heads    int        // attention: the number of heads
	Causal   bool       // attention: each position attends to itself and earlier ones only
	Parts    int        // split, split_grad: the number of equal parts of the last axis
	Index    int        // split, split_grad: which part
}

// Recurrent describes a recurrent layer: the cell, and which initial states
// are given as arguments (otherwise they are zero).
type Recurrent struct {
	Cell         spec.RNNCell
	HasH0, HasC0 bool
}

// Window is the geometry of a convolution or pooling window over NHWC
// tensors: kernel size, strides, dilations and zero padding per side.
type Window struct {
	KH, KW                 int
	SH, SW                 int
	DH, DW                 int
	PadT, PadB, PadL, PadR int
}

// Padded reports whether the window pads its input on any side.
func (w *Window) Padded() bool { return w.PadT != 0 || w.PadB != 0 || w.PadL != 0 || w.PadR != 0 }

// Out returns the output height and width of the window over an h×w input,
// or an error when the (dilated) window is larger than the padded input.
func (w *Window) Out(h, wd int) (oh, ow int, err error) {
	eh, ew := (w.KH-1)*w.DH+1, (w.KW-1)*w.DW+1
	ph, pw := h+w.PadT+w.PadB, wd+w.PadL+w.PadR
	if eh > ph || ew > pw {
		dilated := ""
		if w.DH > 1 || w.DW > 1 {
			dilated = fmt.Sprintf(" (%dx%d with dilation)", eh, ew)
		}
		return 0, 0, fmt.Errorf("window %dx%d%s is larger than the padded input %dx%d; use a smaller window, padding=same, or a larger input", w.KH, w.KW, dilated, ph, pw)
	}
	return (ph-eh)/w.SH + 1, (pw-ew)/w.SW + 1, nil
}

// Node is one SSA value: an op applied to earlier nodes.
type Node struct {
	ID    int
	Op    *OpDef
	Args  []*Node
	Shape Shape
	DType DType
	Attrs Attrs
	Name  string // readable name: the description's name or one derived from it
	Pos   Pos    // the description statement this node implements
	Step  string // backward nodes: the chain-rule step, e.g. "dh1.W = xᵀ·dh1.z"
}

func (n *Node) String() string { return fmt.Sprintf("%%%d", n.ID) }

// Label is n's name, or its ID (%%n) when it has none.
func (n *Node) Label() string {
	if n.Name != "" {
		return n.Name
	}
	return n.String()
}

// Statement is one computing line of the description.
type Statement struct {
	Name string // the assigned name
	Pos  Pos
	Text string // the source text of the right-hand side
}

// Graph is a forward computation: leaves (inputs, labels, parameters,
// constants) and the ops over them, in topological order.
type Graph struct {
	Model      string
	File       string // description file name, as given to the generator
	Batch      int    // maximum batch size
	Nodes      []*Node
	Inputs     []*Node // float inputs, in declaration order
	Labels     []*Node // int32 class labels
	Params     []*Node // parameters, in declaration order
	States     []*Node // state the model updates but does not train (running statistics), in declaration order
	Loss       *Node   // scalar loss
	Output     *Node   // the prediction (Infer computes up to here)
	Statements []Statement
}

// Add appends n to the graph, giving it the next ID.
func (g *Graph) Add(n *Node) *Node {
	n.ID = len(g.Nodes)
	g.Nodes = append(g.Nodes, n)
	return n
}

// Prune drops the ops that neither the loss nor the output depends on
// (left behind by simplification, or computed and never used) and
// renumbers the nodes. Leaves stay: they are the model's interface.
func (g *Graph) Prune() {
	live := map[*Node]bool{}
	var mark func(n *Node)
	mark = func(n *Node) {
		if n == nil || live[n] {
			return
		}
		live[n] = true
		for _, a := range n.Args {
			mark(a)
		}
	}
	mark(g.Loss)
	mark(g.Output)
	for _, n := range g.Nodes {
		if n.Op.Effect {
			mark(n) // it updates state: its job is not a result
		}
	}
	kept := g.Nodes[:0]
	for _, n := range g.Nodes {
		if live[n] || n.Op.Leaf {
			n.ID = len(kept)
			kept = append(kept, n)
		}
	}
	g.Nodes = kept
}
