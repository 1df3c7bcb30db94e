package derive

import (
	"fmt"

	"github.com/backpropgen/backpropgen/ir"
)

// commutePools rewrites maxpool(act(x + b)) into act(maxpool(x) + b), and
// maxpool(act(x)) into act(maxpool(x)), when act is non-decreasing
// (OpDef.CommutesWithMax), b is a bias along the channel axis, the pool
// has no padding, and nothing else reads act's result or the sum.
//
// Both sides are equal bit for bit: a rounded x + b and a relu are
// non-decreasing in x, and the bias is the same over a window, so the
// maximum of the window goes through both. What changes is the cost: the
// bias add and the activation run on the pooled tensor (a quarter of the
// elements for 2×2 windows), and so do their gradient and the bias
// gradient's sum, which before ran on the full activations; the pool's
// gradient then routes the result straight into the gradient of x. Where
// a window holds equal maxima the two forms may route the gradient to
// different (equally maximal) elements: both are the gradient of the max.
//
// The nodes are reused in place, in their order, so the graph stays
// topologically sorted: the sum's node becomes the pool (named
// "<pool>.max"), the activation's node the bias add ("<pool>.z"), and the
// pool's node the activation, so the pool's readers are unchanged. The
// moved ops take the pool's position, so the generated code keeps them in
// the pool's statement, whose comment says where they come from.
func commutePools(g *ir.Graph) {
	users := map[*ir.Node]int{}
	for _, n := range g.Nodes {
		for _, a := range n.Args {
			users[a]++
		}
	}
	only := func(n *ir.Node) bool { return users[n] == 1 && n != g.Output && n != g.Loss }
	for _, p := range g.Nodes {
		if p.Op != ir.MaxPool2D || p.Attrs.Window.Padded() {
			continue
		}
		act := p.Args[0]
		if !act.Op.CommutesWithMax || !only(act) {
			continue
		}
		sum, x, b := act.Args[0], act.Args[0], (*ir.Node)(nil)
		if isBiasAdd(sum) && only(sum) {
			x, b = sum.Args[0], sum.Args[1]
		}
		src := act.Name
		if src == "" {
			src = x.Label()
		}
		actOp, actAttrs := act.Op, act.Attrs
		if b == nil {
			// maxpool(act(x)) → act(maxpool(x)): act's node takes the pool.
			act.Op, act.Args, act.Attrs, act.Shape = p.Op, []*ir.Node{x}, p.Attrs, p.Shape.Clone()
			act.Name, act.Pos = p.Name+".max", p.Pos
			p.Op, p.Args, p.Attrs = actOp, []*ir.Node{act}, actAttrs
			p.Step = fmt.Sprintf("%s = %s(%s): %s's %s after the pool (they commute with max)", p.Name, actOp.Name, act.Name, src, actOp.Name)
			continue
		}
		sumOp := sum.Op
		sum.Op, sum.Args, sum.Attrs, sum.Shape = p.Op, []*ir.Node{x}, p.Attrs, p.Shape.Clone()
		sum.Name, sum.Pos = p.Name+".max", p.Pos
		act.Op, act.Args, act.Attrs, act.Shape = sumOp, []*ir.Node{sum, b}, ir.Attrs{}, p.Shape.Clone()
		act.Name, act.Pos = p.Name+".z", p.Pos
		p.Op, p.Args, p.Attrs = actOp, []*ir.Node{act}, actAttrs
		p.Step = fmt.Sprintf("%s = %s(%s + %s): %s's bias and %s after the pool (they commute with max)", p.Name, actOp.Name, sum.Name, b.Label(), src, actOp.Name)
	}
}

// isBiasAdd reports whether n is x + b with b a vector along x's last axis.
func isBiasAdd(n *ir.Node) bool {
	if n.Op != ir.Add {
		return false
	}
	x, b := n.Args[0], n.Args[1]
	return len(b.Shape) == 1 && x.Shape.Equal(n.Shape) && len(x.Shape) >= 2 && b.Shape[0] == x.Shape[len(x.Shape)-1]
}
