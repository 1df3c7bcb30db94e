package ir

import (
	"fmt"
	"slices"
)

// Builder creates nodes: it looks up the op, applies the op's shape rule and
// its simplifications (x·1 → x, transpose folding, constant folding), and
// appends the surviving node to its list. Lowering and derivation both build
// through it, so every node in every graph has passed its op's shape rule.
//
// The first error is kept in Err and later calls still return a usable node,
// so rules read as straight-line code; callers check Err once per statement.
type Builder struct {
	Nodes  []*Node
	NextID int
	Pos    Pos    // stamped on new nodes: the statement being built
	Step   string // stamped on new nodes: the chain-rule step being built
	Err    error
}

// Fail records the first error.
func (b *Builder) Fail(format string, args ...any) {
	if b.Err == nil {
		b.Err = fmt.Errorf(format, args...)
	}
}

// Note sets the chain-rule step stamped on the nodes built next.
func (b *Builder) Note(format string, args ...any) { b.Step = fmt.Sprintf(format, args...) }

// Op builds def(args) with attrs.
func (b *Builder) Op(def *OpDef, attrs Attrs, args ...*Node) *Node {
	if def.Arity >= 0 && len(args) != def.Arity {
		panic(fmt.Sprintf("ir: %s takes %d args, got %d", def.Name, def.Arity, len(args)))
	}
	n := &Node{Op: def, Args: args, Attrs: attrs, Pos: b.Pos, Step: b.Step}
	for _, a := range args {
		if a == nil {
			panic("ir: nil argument to " + def.Name)
		}
	}
	shape, err := def.Shape(n)
	if err != nil {
		b.Fail("%v", err)
		// Keep going with a plausible shape so the caller can report the
		// error at its own position.
		if len(args) > 0 {
			shape = args[0].Shape.Clone()
		} else {
			shape = Scalar
		}
	}
	n.Shape = shape
	if err := shape.SizeError(); err != nil {
		b.Fail("a result %v", err)
	}
	if def.Simplify != nil && b.Err == nil {
		if s := def.Simplify(b, n); s != nil {
			return s
		}
	}
	return b.add(n)
}

func (b *Builder) add(n *Node) *Node {
	n.ID = b.NextID
	b.NextID++
	b.Nodes = append(b.Nodes, n)
	return n
}

// Leaf adds a leaf node (Input, Label, Param) with the given shape.
func (b *Builder) Leaf(op *OpDef, name string, shape Shape, attrs Attrs) *Node {
	n := &Node{Op: op, Name: name, Shape: shape, Attrs: attrs, Pos: b.Pos}
	if op == Label {
		n.DType = Int
	}
	if err := shape.SizeError(); err != nil {
		b.Fail("%s %v", name, err)
	}
	return b.add(n)
}

// Const builds a scalar constant.
func (b *Builder) Const(v float64) *Node { return b.Op(Const, Attrs{Value: v}) }

// Convenience constructors used by lowering and adjoint rules.

func (b *Builder) Add(x, y *Node) *Node { return b.Op(Add, Attrs{}, x, y) }
func (b *Builder) Sub(x, y *Node) *Node { return b.Op(Sub, Attrs{}, x, y) }
func (b *Builder) Mul(x, y *Node) *Node { return b.Op(Mul, Attrs{}, x, y) }
func (b *Builder) Div(x, y *Node) *Node { return b.Op(Div, Attrs{}, x, y) }
func (b *Builder) Neg(x *Node) *Node    { return b.Op(Neg, Attrs{}, x) }

// MatMul builds op(x)·op(y).
func (b *Builder) MatMul(x, y *Node, transA, transB bool) *Node {
	return b.Op(MatMul, Attrs{TransA: transA, TransB: transB}, x, y)
}

func (b *Builder) Transpose(x *Node) *Node { return b.Op(Transpose, Attrs{}, x) }

// Reshape returns x viewed with shape to (no copy).
func (b *Builder) Reshape(x *Node, to Shape) *Node {
	return b.Op(Reshape, Attrs{To: to}, x)
}

// Sum reduces x over axes.
func (b *Builder) Sum(x *Node, axes []int, keep bool) *Node {
	return b.Op(Sum, Attrs{Axes: axes, KeepDims: keep}, x)
}

// SumTo sums x down to shape, undoing the numpy broadcast of an operand of
// that shape (right-aligned): the adjoint of implicit broadcasting.
func (b *Builder) SumTo(x *Node, shape Shape) *Node {
	if x.Shape.Equal(shape) {
		return x
	}
	lead := len(x.Shape) - len(shape)
	var axes []int
	for i := range x.Shape {
		if i < lead || (shape[i-lead].Size == 1 && !shape[i-lead].Batch && (x.Shape[i].Size != 1 || x.Shape[i].Batch)) {
			axes = append(axes, i)
		}
	}
	if len(axes) == 0 {
		return b.Reshape(x, shape)
	}
	s := b.Sum(x, axes, true)
	return b.Reshape(s, shape)
}

// BroadcastTo expands x to shape; with mean it also divides by the number of
// copies, which is the adjoint of mean.
func (b *Builder) BroadcastTo(x *Node, shape Shape, mean bool) *Node {
	if x.Shape.Equal(shape) && !mean {
		return x
	}
	return b.Op(BroadcastTo, Attrs{To: shape, Mean: mean}, x)
}

// Broadcast returns the numpy broadcast of two shapes.
func Broadcast(x, y Shape) (Shape, error) {
	r := max(len(x), len(y))
	out := make(Shape, r)
	for i := range r {
		var dx, dy = Dim{Size: 1}, Dim{Size: 1}
		if j := i - (r - len(x)); j >= 0 {
			dx = x[j]
		}
		if j := i - (r - len(y)); j >= 0 {
			dy = y[j]
		}
		switch {
		case dx == dy:
			out[i] = dx
		case dx.Size == 1 && !dx.Batch:
			out[i] = dy
		case dy.Size == 1 && !dy.Batch:
			out[i] = dx
		default:
			return nil, fmt.Errorf("shapes %v and %v do not broadcast (dimension %d: %s vs %s)", x, y, i, dimString(dx), dimString(dy))
		}
	}
	return out, nil
}

func dimString(d Dim) string {
	if d.Batch {
		return "N"
	}
	return fmt.Sprint(d.Size)
}

// normAxes validates axes against rank r and returns them sorted, unique and
// non-negative (negative axes count from the end, as in numpy).
func normAxes(axes []int, r int) ([]int, error) {
	out := make([]int, 0, len(axes))
	for _, a := range axes {
		if a < 0 {
			a += r
		}
		if a < 0 || a >= r {
			return nil, fmt.Errorf("axis %d out of range for rank %d", a, r)
		}
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	return out, nil
}
