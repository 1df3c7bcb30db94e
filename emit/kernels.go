package emit

import (
	"fmt"
	"strings"

	"github.com/dave/jennifer/jen"

	"github.com/backpropgen/backpropgen/derive"
	"github.com/backpropgen/backpropgen/ir"
)

// kernels maps each op to the runtime call that computes it. Every op in the
// ir table has an entry (TestEveryOpHasKernel); leaves and views emit
// nothing. The runtime's operators (Relu, Add, ...) are named from the op
// table's spec values (OpDef.Unary, OpDef.Binary), whose names
// TestRuntimeNames checks against package runtime.
var kernels = map[*ir.OpDef]func(g *gen, n *ir.Node) jen.Code{}

// unary is the runtime's operator of an element-wise op (or of the one an
// activation's gradient differentiates).
func unary(op *ir.OpDef) *jen.Statement { return rt(op.Unary.String()) }

func init() {
	none := func(g *gen, n *ir.Node) jen.Code { return jen.Null() }
	for op, k := range map[*ir.OpDef]func(g *gen, n *ir.Node) jen.Code{
		ir.Input: none, ir.Param: none, ir.Label: none, ir.Reshape: none,
		ir.Const: func(g *gen, n *ir.Node) jen.Code {
			return rt("Fill").Call(g.out(n), g.lit(n.Attrs.Value))
		},
		ir.MatMul: func(g *gen, n *ir.Node) jen.Code {
			a, b := n.Args[0], n.Args[1]
			last := func(s ir.Shape) ir.Shape { return s[len(s)-1:] }
			lead := func(s ir.Shape) ir.Shape { return s[:len(s)-1] }
			// Leading dimensions of A flatten into rows (or, with transA,
			// into the contracted dimension).
			m, k := count(lead(a.Shape)), count(last(a.Shape))
			if n.Attrs.TransA {
				m, k = count(last(a.Shape)), count(lead(a.Shape))
			}
			return rt("Gemm").Call(jen.Lit(n.Attrs.TransA), jen.Lit(n.Attrs.TransB), m, count(last(n.Shape)), k,
				g.in(a), g.in(b), g.out(n), g.acc(n))
		},
		ir.Transpose: func(g *gen, n *ir.Node) jen.Code {
			x := n.Args[0]
			return rt("Transpose").Call(g.out(n), g.in(x), dim(x.Shape[0]), dim(x.Shape[1]))
		},
		ir.Sum:         func(g *gen, n *ir.Node) jen.Code { return g.reduce(n, false) },
		ir.Mean:        func(g *gen, n *ir.Node) jen.Code { return g.reduce(n, true) },
		ir.BroadcastTo: (*gen).broadcastTo,
		ir.Softmax:     rowwise("Softmax"),
		ir.LogSoftmax:  rowwise("LogSoftmax"),
		ir.SoftmaxGrad: func(g *gen, n *ir.Node) jen.Code {
			return rowwiseGrad(g, n, "SoftmaxGrad")
		},
		ir.LogSoftmaxGrad: func(g *gen, n *ir.Node) jen.Code {
			return rowwiseGrad(g, n, "LogSoftmaxGrad")
		},
		ir.SoftmaxCrossEntropy: func(g *gen, n *ir.Node) jen.Code {
			logits, labels := n.Args[0], n.Args[1]
			classes := logits.Shape[len(logits.Shape)-1]
			return g.ref(n).Index(jen.Lit(0)).Op("=").Add(rt("SoftmaxCrossEntropy")).Call(g.in(logits), g.in(labels), rows(logits.Shape), dim(classes))
		},
		ir.SoftmaxCrossEntropyGrad: func(g *gen, n *ir.Node) jen.Code {
			logits, labels, dy := n.Args[0], n.Args[1], n.Args[2]
			T := g.elem()
			scale := g.scalar(dy).Op("/").Add(T).Call(rows(logits.Shape))
			classes := logits.Shape[len(logits.Shape)-1]
			return rt("SoftmaxCrossEntropyGrad").Call(g.out(n), g.in(logits), g.in(labels), rows(logits.Shape), dim(classes), scale)
		},
		ir.AccGrad: func(g *gen, n *ir.Node) jen.Code {
			if g.p.Plan.Slot(n).Kind == derive.Folded {
				return jen.Null()
			}
			return rt("Axpy").Call(g.sinkRef(n.Attrs.Param, n.Shape), g.in(n.Args[0]), jen.Lit(1))
		},
	} {
		kernels[op] = k
	}
	kernels[ir.MatMulBiasAct] = func(g *gen, n *ir.Node) jen.Code {
		x, w := n.Args[0], n.Args[1]
		return rt("GemmBiasAct").Call(unary(n.Attrs.Act), g.out(n), g.in(x), g.in(w), g.in(n.Args[2]),
			count(x.Shape[:len(x.Shape)-1]), dim(w.Shape[1]), dim(w.Shape[0]))
	}
	kernels[ir.MatMulBiasAdd] = func(g *gen, n *ir.Node) jen.Code {
		x, w := n.Args[0], n.Args[1]
		return rt("GemmBiasAdd").Call(g.out(n), g.in(x), g.in(w), g.in(n.Args[2]), g.in(n.Args[3]),
			count(x.Shape[:len(x.Shape)-1]), dim(w.Shape[1]), dim(w.Shape[0]))
	}
	kernels[ir.BiasAct] = func(g *gen, n *ir.Node) jen.Code {
		x := n.Args[0]
		return rt("BiasAct").Call(unary(n.Attrs.Act), g.out(n), g.in(x), g.in(n.Args[1]), rows(n.Shape), dim(n.Shape[len(n.Shape)-1]))
	}
	for _, op := range ir.Ops() {
		switch {
		case op.Unary != nil && op.Arity == 2: // an activation's gradient: (y, dy)
			kernels[op] = func(g *gen, n *ir.Node) jen.Code {
				if sum := g.p.Plan.Slot(n).FusedSum; sum != nil {
					// The bias gradient in the same pass.
					return rt("UnaryGradSumRows").Call(unary(op), g.out(n), g.in(n.Args[0]), g.in(n.Args[1]), g.out(sum),
						rows(n.Shape), dim(n.Shape[len(n.Shape)-1]), g.acc(sum))
				}
				return rt("UnaryGrad").Call(unary(op), g.out(n), g.in(n.Args[0]), g.in(n.Args[1]))
			}
		case op.Unary != nil:
			kernels[op] = func(g *gen, n *ir.Node) jen.Code {
				return rt("Unary").Call(unary(op), g.out(n), g.in(n.Args[0]))
			}
		case op.Binary != nil:
			kernels[op] = func(g *gen, n *ir.Node) jen.Code { return g.binary(n, rt(op.Binary.String())) }
		}
	}
}

func (g *gen) kernel(n *ir.Node) jen.Code {
	k, ok := kernels[n.Op]
	if !ok {
		panic("emit: no kernel for op " + n.Op.Name) // TestEveryOpHasKernel keeps this unreachable
	}
	return k(g, n)
}

// acc is the acc argument of n's kernel: true when it adds into a
// gradient, false when it writes its own buffer, and the backward pass's
// acc parameter for the first write of a gradient (Slot.Overwrite), which
// a training step runs with acc false so the gradient needs no zeroing.
func (g *gen) acc(n *ir.Node) jen.Code {
	s := g.p.Plan.Slot(n)
	if s.Overwrite {
		return jen.Id("acc")
	}
	return jen.Lit(s.Kind == derive.IntoGrad)
}

// takesAcc reports whether one of the nodes' kernels takes the backward
// pass's acc parameter.
func (g *gen) takesAcc(nodes []*ir.Node) bool {
	for _, n := range nodes {
		s := g.p.Plan.Slot(n)
		if s.Overwrite || s.FusedSum != nil && g.p.Plan.Slot(s.FusedSum).Overwrite {
			return true
		}
	}
	return false
}

func (g *gen) sinkRef(sink *ir.Node, s ir.Shape) *jen.Statement {
	r := jen.Id("m").Dot(g.grad[sink])
	if s.HasBatch() {
		return r.Index(jen.Empty(), count(s))
	}
	return r
}

func rowwise(fn string) func(g *gen, n *ir.Node) jen.Code {
	return func(g *gen, n *ir.Node) jen.Code {
		cols := n.Shape[len(n.Shape)-1]
		return rt(fn).Call(g.out(n), g.in(n.Args[0]), rows(n.Shape), dim(cols))
	}
}

func rowwiseGrad(g *gen, n *ir.Node, fn string) jen.Code {
	cols := n.Shape[len(n.Shape)-1]
	return rt(fn).Call(g.out(n), g.in(n.Args[0]), g.in(n.Args[1]), rows(n.Shape), dim(cols))
}

// rows is the number of rows when the last axis is the row.
func rows(s ir.Shape) *jen.Statement { return count(s[:len(s)-1]) }

// pad4 right-aligns s into four dimensions.
func pad4(s ir.Shape) [4]ir.Dim {
	var out [4]ir.Dim
	for i := range out {
		out[i] = ir.Dim{Size: 1}
	}
	copy(out[4-len(s):], s)
	return out
}

// strides4 are the element strides of operand shape a (right-aligned) when
// iterating over out, with 0 where a is broadcast.
func strides4(a ir.Shape, out [4]ir.Dim) [4]*jen.Statement {
	pa := pad4(a)
	var st [4]*jen.Statement
	c, batches := 1, 0
	for i := 3; i >= 0; i-- {
		if pa[i] == out[i] && out[i] != (ir.Dim{Size: 1}) {
			st[i] = product(c, batches)
		} else {
			st[i] = jen.Lit(0)
		}
		if pa[i].Batch {
			batches++
		} else {
			c *= pa[i].Size
		}
	}
	return st
}

func array4(v [4]*jen.Statement) *jen.Statement {
	return jen.Index(jen.Lit(4)).Int().Values(v[0], v[1], v[2], v[3])
}

func dims4(s [4]ir.Dim) *jen.Statement {
	return array4([4]*jen.Statement{dim(s[0]), dim(s[1]), dim(s[2]), dim(s[3])})
}

// binary picks the cheapest broadcasting form: same shape, a scalar, a row
// broadcast over the leading dimensions (the bias add), or general strides.
func (g *gen) binary(n *ir.Node, c *jen.Statement) jen.Code {
	x, y := n.Args[0], n.Args[1]
	scalarLike := func(v *ir.Node) bool { return v.Shape.IsScalar() }
	literal := func(v *ir.Node) bool { return g.p.Plan.Slot(v).Kind == derive.Literal }
	switch {
	case x.Shape.Equal(n.Shape) && scalarLike(y) && (literal(y) || !y.Shape.Equal(n.Shape)):
		return rt("BinaryScalar").Call(c, g.out(n), g.in(x), g.scalar(y), jen.False())
	case y.Shape.Equal(n.Shape) && scalarLike(x) && (literal(x) || !x.Shape.Equal(n.Shape)):
		return rt("BinaryScalar").Call(c, g.out(n), g.in(y), g.scalar(x), jen.True())
	case x.Shape.Equal(n.Shape) && y.Shape.Equal(n.Shape):
		return rt("Binary").Call(c, g.out(n), g.in(x), g.in(y))
	case x.Shape.Equal(n.Shape) && isRow(y.Shape, n.Shape):
		return rt("BinaryRows").Call(c, g.out(n), g.in(x), g.in(y), rows(n.Shape), dim(n.Shape[len(n.Shape)-1]), jen.False())
	case y.Shape.Equal(n.Shape) && isRow(x.Shape, n.Shape):
		return rt("BinaryRows").Call(c, g.out(n), g.in(y), g.in(x), rows(n.Shape), dim(n.Shape[len(n.Shape)-1]), jen.True())
	}
	o := pad4(n.Shape)
	return rt("BinaryStrided").Call(c, g.out(n), g.in(x), g.in(y), dims4(o), array4(strides4(x.Shape, o)), array4(strides4(y.Shape, o)))
}

// isRow reports whether r is the last axis of out (leading 1s allowed).
func isRow(r, out ir.Shape) bool {
	for len(r) > 1 && r[0] == (ir.Dim{Size: 1}) {
		r = r[1:]
	}
	return len(r) == 1 && len(out) >= 2 && r[0] == out[len(out)-1]
}

// reduce sums (or averages) n's argument over n.Attrs.Axes.
func (g *gen) reduce(n *ir.Node, mean bool) jen.Code {
	x := n.Args[0]
	T := g.elem()
	scale := g.lit(1)
	if mean {
		c, batches := 1, 0
		for _, a := range n.Attrs.Axes {
			if x.Shape[a].Batch {
				batches++
			} else {
				c *= x.Shape[a].Size
			}
		}
		if batches == 0 {
			scale = g.lit(1 / float64(c))
		} else {
			scale = g.lit(1).Op("/").Add(T).Call(product(c, batches))
		}
	}
	// Every axis but the last: column sums of a (rows, cols) matrix, the
	// bias gradient of a dense or conv layer.
	allButLast := len(x.Shape) >= 2 && len(n.Attrs.Axes) == len(x.Shape)-1
	for i, a := range n.Attrs.Axes {
		allButLast = allButLast && a == i
	}
	if allButLast {
		return rt("SumRows").Call(g.out(n), g.in(x), rows(x.Shape), dim(x.Shape[len(x.Shape)-1]), scale, g.acc(n))
	}
	kept := pad4(keep(x.Shape, n.Attrs.Axes))
	return rt("ReduceSum").Call(g.out(n), g.in(x), dims4(pad4(x.Shape)), array4(strides4(keep(x.Shape, n.Attrs.Axes), pad4(x.Shape))), scale, g.acc(n)).
		Comment(fmt.Sprintf("into %v", ir.Shape(kept[:])))
}

func keep(s ir.Shape, axes []int) ir.Shape {
	out := s.Clone()
	for _, a := range axes {
		out[a] = ir.Dim{Size: 1}
	}
	return out
}

func (g *gen) broadcastTo(n *ir.Node) jen.Code {
	x := n.Args[0]
	T := g.elem()
	scale := g.lit(1)
	if n.Attrs.Mean {
		c, batches := 1, 0
		for i := range n.Shape {
			if x.Shape[i] != n.Shape[i] {
				if n.Shape[i].Batch {
					batches++
				} else {
					c *= n.Shape[i].Size
				}
			}
		}
		if batches == 0 {
			scale = g.lit(1 / float64(c))
		} else {
			scale = g.lit(1).Op("/").Add(T).Call(product(c, batches))
		}
	}
	o := pad4(n.Shape)
	return rt("BroadcastTo").Call(g.out(n), g.in(x), dims4(o), array4(strides4(x.Shape, o)), scale, g.acc(n))
}

// formula renders a forward node as math for its comment: the op table's
// Formula, or name(args).
func (g *gen) formula(n *ir.Node) string {
	arg := func(i int) string { return g.operand(n.Args[i]) }
	if n.Op.Formula != nil {
		return label(n) + " = " + n.Op.Formula(n, arg)
	}
	args := make([]string, len(n.Args))
	for i := range n.Args {
		args[i] = arg(i)
	}
	return fmt.Sprintf("%s = %s(%s)", label(n), n.Op.Name, strings.Join(args, ", "))
}

func (g *gen) operand(n *ir.Node) string {
	if n.Op == ir.Const && n.Shape.IsScalar() {
		return fmt.Sprint(n.Attrs.Value)
	}
	return label(n)
}

func tick(t bool) string {
	if t {
		return "ᵀ"
	}
	return ""
}
