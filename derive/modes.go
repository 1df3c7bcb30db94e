package derive

import (
	"fmt"
	"slices"

	"github.com/backpropgen/backpropgen/ir"
)

// inference builds the inference-mode program (Program.Infer): the forward
// ops the output needs, in order, where each op with an inference form
// (OpDef.Infer) is replaced by it, then folds batch norms into the products
// before them. Replacements write the storage of the op they replace, so
// the ops downstream are shared with training mode.
func (p *Program) inference(fold bool) error {
	g := p.Graph
	b := &ir.Builder{NextID: len(g.Nodes) + len(p.Backward)}
	p.Replaced = map[*ir.Node]*ir.Node{}
	// The output's ancestors among the training ops.
	need := map[*ir.Node]bool{}
	var mark func(n *ir.Node)
	mark = func(n *ir.Node) {
		if !need[n] {
			need[n] = true
			for _, a := range n.Args {
				mark(a)
			}
		}
	}
	mark(g.Output)
	mark(g.Loss)
	var infer []*ir.Node
	for _, n := range p.Forward {
		if !need[n] {
			continue
		}
		if n.Op.Infer == nil {
			infer = append(infer, n)
			continue
		}
		b.Pos, b.Step = n.Pos, ""
		r := n.Op.Infer(b, n)
		if b.Err != nil {
			return fmt.Errorf("%v: internal error: the inference form of %s: %v", n.Pos, n.Op.Name, b.Err)
		}
		if r == nil {
			continue // training only
		}
		if !r.Shape.Equal(n.Shape) || len(r.Args) == 0 && r.Op.Leaf {
			return fmt.Errorf("%v: internal error: the inference form of %s has shape %v, want %v", n.Pos, n.Op.Name, r.Shape, n.Shape)
		}
		r.Name = n.Name
		p.Replaced[r] = n
		infer = append(infer, r)
	}
	if fold {
		infer = p.foldBatchNorms(b, infer)
	}
	// What the output needs in inference mode. An op shared with training
	// reads the training op a replacement stands in for: it needs the
	// replacement (and what that reads: the running statistics, the folded
	// product's input), not the training op's arguments.
	replacement := map[*ir.Node]*ir.Node{}
	for r, t := range p.Replaced {
		replacement[t] = r
	}
	liveSet := func(targets ...*ir.Node) map[*ir.Node]bool {
		live := map[*ir.Node]bool{}
		var use func(n *ir.Node)
		use = func(n *ir.Node) {
			if r, ok := replacement[n]; ok {
				n = r
			}
			if live[n] {
				return
			}
			live[n] = true
			for _, a := range n.Args {
				use(a)
			}
		}
		for _, t := range targets {
			use(t)
		}
		return live
	}
	out, eval := liveSet(g.Output), liveSet(g.Output, g.Loss)
	p.Infer = slices.DeleteFunc(slices.Clone(infer), func(n *ir.Node) bool { return !out[n] })
	p.Eval = slices.DeleteFunc(infer, func(n *ir.Node) bool { return !eval[n] })
	p.InferOnly = nil
	for _, n := range p.Eval {
		if n.ID >= len(g.Nodes)+len(p.Backward) {
			p.InferOnly = append(p.InferOnly, n)
		}
	}
	for r := range p.Replaced {
		if !eval[r] {
			delete(p.Replaced, r)
		}
	}
	// Renumber the inference-only nodes densely after the backward pass.
	for i, n := range p.InferOnly {
		n.ID = len(g.Nodes) + len(p.Backward) + i
	}
	return nil
}

// foldBatchNorms folds each inference-mode batch norm whose input is a
// product that scales its channels with its weight (OpDef.ScalesColumns),
// plus a bias or not, read by nothing else, into that product: the product
// of the weight and bias that batch_norm_fold makes (W·s, b·s + t) with
// the bias as its kernel's epilogue (OpDef.BiasAct), written where the
// batch norm's result goes. At inference time that is one product and no
// normalization pass, but the fold itself reads and writes the weight on
// every Infer (the parameters may have changed since the last), so it is
// only done where the weight is smaller than the batch norm's output at
// the full batch: a convolution's kernel, or a dense layer with fewer
// weights than rows × units. A wide dense layer at a small batch keeps its
// pass (on generated/mlpbn the fold made Infer 35% slower).
func (p *Program) foldBatchNorms(b *ir.Builder, infer []*ir.Node) []*ir.Node {
	users := map[*ir.Node]int{}
	for _, n := range infer {
		for _, a := range n.Args {
			users[a]++
		}
	}
	var out []*ir.Node
	for _, n := range infer {
		if n.Op != ir.BatchNormInfer {
			out = append(out, n)
			continue
		}
		a := n.Args[0]
		x, bias := a, (*ir.Node)(nil)
		if isBiasAdd(a) && users[a] == 1 && a.Args[1].Op == ir.Param && a != p.Graph.Output {
			x, bias = a.Args[0], a.Args[1]
		}
		var fused *ir.OpDef // the product with the bias as epilogue
		switch {
		case !x.Op.ScalesColumns || users[x] != 1 || x == p.Graph.Output || x.Args[1].Op != ir.Param:
		case len(x.Args) == 2 && x.Op.BiasAct != nil:
			fused = x.Op.BiasAct(x)
		case len(x.Args) == 3 && bias == nil && x.Attrs.Act == ir.Identity && x.Args[2].Op == ir.Param:
			// Already fused with its bias (derive's fuse).
			fused, bias = x.Op, x.Args[2]
		}
		if fused == nil {
			out = append(out, n)
			continue
		}
		w := x.Args[1]
		if w.Shape.Elems() >= n.Shape.Elems() { // the fold would cost more than the pass
			out = append(out, n)
			continue
		}
		b.Pos, b.Step = n.Pos, ""
		args := []*ir.Node{w, n.Args[1], n.Args[2], n.Args[3], n.Args[4]}
		if bias != nil {
			args = append(args, bias)
		}
		fold := b.Op(ir.BatchNormFold, ir.Attrs{Eps: n.Attrs.Eps}, args...)
		fold.Name = n.Name + ".fold"
		b.Step = fmt.Sprintf("%s folded into %s's weight and bias", n.Name, x.Label())
		wf := b.Op(ir.Slice, ir.Attrs{To: w.Shape}, fold)
		wf.Name = n.Name + ".W"
		C := w.Shape[len(w.Shape)-1]
		bf := b.Op(ir.Slice, ir.Attrs{Offset: w.Shape.Elems(), To: ir.Shape{C}}, fold)
		bf.Name = n.Name + ".b"
		prod := b.Op(fused, x.Attrs, x.Args[0], wf, bf)
		prod.Attrs.Act = ir.Identity
		prod.Name = n.Name
		if b.Err != nil {
			panic(fmt.Sprintf("derive: folding %s: %v", n.Name, b.Err))
		}
		t := p.Replaced[n]
		delete(p.Replaced, n)
		p.Replaced[prod] = t
		out = append(out, fold, wf, bf, prod)
	}
	return out
}
