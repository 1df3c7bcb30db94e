// Package derive turns a forward ir.Graph into a training program: the
// backward IR obtained by reverse-mode differentiation with each op's
// adjoint rule, simplified, and a static memory plan. It returns plain data;
// package emit only walks it.
package derive

import (
	"fmt"
	"slices"
	"strings"

	"github.com/backpropgen/backpropgen/ir"
)

// Options select what is differentiated.
type Options struct {
	// InputGrads also computes the gradient of the loss with respect to
	// every float input (for adversarial examples, saliency, or chaining
	// models). Parameters always get gradients.
	InputGrads bool

	// NoFold keeps inference-mode batch norms as a pass of their own
	// instead of folding them into the products before them (for
	// comparison and debugging; the results agree to rounding).
	NoFold bool

	// AllBounds proves every gradient a bound rule covers from its bounds
	// (GradCheck), even where measuring the operands reads more than
	// scanning the gradient would, so that a generated TestCheckGrads
	// checks every op's bound rule (the op tests).
	AllBounds bool
}

// Program is a forward graph with its backward pass and memory plan.
type Program struct {
	Graph    *ir.Graph
	Forward  []*ir.Node // forward ops to run in training mode (Forward, TrainStep), in order (leaves excluded)
	Backward []*ir.Node // backward ops, in order; IDs continue after the forward's
	Sinks    []*ir.Node // leaves whose gradient is computed: params, then inputs when asked
	Unused   []*ir.Node // params the loss does not depend on (their gradient stays zero)

	// Infer is what runs in inference mode (Infer, Predict): the forward
	// ops the output needs, each op that differs between the modes
	// replaced by its inference form (OpDef.Infer), and batch norms folded
	// into the products before them. A replacement writes the storage of
	// the training op it replaces (Replaced), so the ops after it are the
	// same in both modes. InferOnly are the nodes of Infer that training
	// does not run, in order; their IDs follow the backward pass's.
	Infer     []*ir.Node
	Eval      []*ir.Node // Infer extended to the loss: what Evaluate runs
	InferOnly []*ir.Node
	Replaced  map[*ir.Node]*ir.Node // inference-only node → the training node whose storage it writes

	Plan Plan

	// Decode is Infer one position at a time (a generated Decoder with a
	// key/value cache), or nil with NoDecode saying why the model cannot
	// run that way.
	Decode   *Decode
	NoDecode string

	Options Options // what Derive was asked for
}

// Derive differentiates g's loss with respect to its parameters.
func Derive(g *ir.Graph, opt Options) (*Program, error) {
	if err := g.Verify(); err != nil {
		return nil, err
	}
	commutePools(g)
	p := &Program{Graph: g, Options: opt}
	p.Sinks = append(p.Sinks, g.Params...)
	if opt.InputGrads {
		p.Sinks = append(p.Sinks, g.Inputs...)
	}

	// needs[n]: some sink is an ancestor of n, so n's gradient matters.
	needs := map[*ir.Node]bool{}
	for _, s := range p.Sinks {
		needs[s] = true
	}
	for _, n := range g.Nodes {
		for _, a := range n.Args {
			if needs[a] {
				needs[n] = true
			}
		}
	}

	b := &ir.Builder{NextID: len(g.Nodes), Pos: g.Loss.Pos}
	adj := map[*ir.Node][]*ir.Node{g.Loss: {b.Const(1)}}
	isSink := map[*ir.Node]bool{}
	for _, s := range p.Sinks {
		isSink[s] = true
	}
	fresh := func(n *ir.Node) bool { return n.ID >= len(g.Nodes) && n.Name == "" }

	for i := len(g.Nodes) - 1; i >= 0; i-- {
		n := g.Nodes[i]
		cs := adj[n]
		if len(cs) == 0 || !needs[n] {
			continue
		}
		b.Pos = n.Pos
		if isSink[n] {
			// Each contribution accumulates on its own, so the kernel
			// that produces it can add straight into the gradient.
			for k, c := range cs {
				if fresh(c) {
					c.Name = "d" + n.Name
					if len(cs) > 1 {
						c.Name = fmt.Sprintf("d%s.%d", n.Name, k+1)
					}
				}
				rhs := c.Name
				if _, r, ok := strings.Cut(c.Step, " = "); ok {
					rhs = r
				}
				b.Step = fmt.Sprintf("d%s += %s", n.Name, rhs)
				b.Op(ir.AccGrad, ir.Attrs{Param: n}, c)
			}
			continue
		}
		dy := cs[0]
		if len(cs) > 1 {
			for k, c := range cs {
				if fresh(c) {
					c.Name = fmt.Sprintf("d%s.%d", n.Name, k+1)
				}
			}
			b.Note("d%s = sum of the gradients from its %d uses", n.Name, len(cs))
			for _, c := range cs[1:] {
				dy = b.Add(dy, c)
			}
		}
		if fresh(dy) {
			dy.Name = "d" + n.Name
		}
		if n.Op.Grad == nil {
			return nil, fmt.Errorf("%v: no adjoint rule for op %s (%s)", n.Pos, n.Op.Name, n.Op.NoGrad)
		}
		grads := n.Op.Grad(b, n, dy)
		if b.Err != nil {
			return nil, fmt.Errorf("%v: internal error in the adjoint of %s: %v", n.Pos, n.Op.Name, b.Err)
		}
		if len(grads) != len(n.Args) {
			return nil, fmt.Errorf("internal error: adjoint of %s returned %d gradients for %d arguments", n.Op.Name, len(grads), len(n.Args))
		}
		for j, gr := range grads {
			if gr == nil || !needs[n.Args[j]] {
				continue
			}
			if !gr.Shape.Equal(n.Args[j].Shape) {
				return nil, fmt.Errorf("internal error: adjoint of %s gives %v for argument %d of shape %v", n.Op.Name, gr.Shape, j, n.Args[j].Shape)
			}
			adj[n.Args[j]] = append(adj[n.Args[j]], gr)
		}
		b.Step = ""
	}
	for _, prm := range g.Params {
		if len(adj[prm]) == 0 {
			p.Unused = append(p.Unused, prm)
		}
	}

	p.Backward = b.Nodes
	p.eliminateDead()
	p.fuse()
	if err := ir.Verify(p.Backward, len(g.Nodes), p.defined()); err != nil {
		return nil, fmt.Errorf("internal error: backward IR: %v", err)
	}
	if err := p.inference(!opt.NoFold); err != nil {
		return nil, err
	}
	p.Plan = plan(p)
	p.Decode, p.NoDecode = p.decode()
	return p, nil
}

// defined returns the set of forward nodes (all are defined before the
// backward pass runs).
func (p *Program) defined() map[*ir.Node]bool {
	d := map[*ir.Node]bool{}
	for _, n := range p.Graph.Nodes {
		d[n] = true
	}
	return d
}

// eliminateDead drops every node that neither the loss, the output nor a
// gradient needs, and renumbers backward nodes densely after the forward.
func (p *Program) eliminateDead() {
	live := map[*ir.Node]bool{}
	var mark func(n *ir.Node)
	mark = func(n *ir.Node) {
		if live[n] {
			return
		}
		live[n] = true
		for _, a := range n.Args {
			mark(a)
		}
		if n.Attrs.Param != nil {
			mark(n.Attrs.Param)
		}
	}
	mark(p.Graph.Loss)
	mark(p.Graph.Output)
	for _, n := range p.Graph.Nodes {
		if n.Op.Effect {
			mark(n) // an update of state: no result, but a job
		}
	}
	for _, n := range p.Backward {
		if n.Op == ir.AccGrad {
			mark(n)
		}
	}
	p.Forward = nil
	for _, n := range p.Graph.Nodes {
		if live[n] && !n.Op.Leaf {
			p.Forward = append(p.Forward, n)
		}
	}
	p.Backward = slices.DeleteFunc(p.Backward, func(n *ir.Node) bool { return !live[n] })
	for i, n := range p.Backward {
		n.ID = len(p.Graph.Nodes) + i
	}
}

// Users returns, for each node, the nodes that read it, in program order.
func (p *Program) Users() map[*ir.Node][]*ir.Node {
	u := map[*ir.Node][]*ir.Node{}
	for _, list := range [][]*ir.Node{p.Forward, p.Backward} {
		for _, n := range list {
			for _, a := range n.Args {
				u[a] = append(u[a], n)
			}
		}
	}
	return u
}

// fuse rewrites act(x + b), with b a bias along the last axis and the sum
// read by nothing else, into one bias_act op: one pass over the activations
// instead of two, and one buffer fewer. When x itself is a plain product
// or a convolution read by nothing else, the bias add and the activation
// become the epilogue of its kernel (matmul_bias_act, conv2d_bias_act):
// applied to blocks of rows while they are in cache, and x needs no
// buffer. The activation node is rewritten in place, so the backward
// nodes that read it are unchanged. A residual add of such a product
// becomes its epilogue too (matmul_bias_add).
func (p *Program) fuse() {
	users := p.Users()
	dead := map[*ir.Node]bool{}
	// intoProduct rewrites n into x's product kernel with bias b and
	// activation act as its epilogue (its arguments and attributes, then
	// the bias), when x is a plain product read by nothing else.
	intoProduct := func(n, x, b *ir.Node, act *ir.OpDef) {
		if dead[x] || len(users[x]) != 1 || x == p.Graph.Output || x == p.Graph.Loss || x.Op.BiasAct == nil {
			return
		}
		fused := x.Op.BiasAct(x)
		if fused == nil {
			return
		}
		n.Op, n.Args = fused, append(slices.Clip(x.Args), b)
		n.Attrs = x.Attrs
		n.Attrs.Act = act
		dead[x] = true
	}
	for _, n := range p.Forward {
		if !n.Op.FusesBias {
			continue
		}
		a := n.Args[0]
		if !isBiasAdd(a) || len(users[a]) != 1 || a == p.Graph.Output || a == p.Graph.Loss {
			continue
		}
		x, b := a.Args[0], a.Args[1]
		act := n.Op
		n.Op, n.Args, n.Attrs = ir.BiasAct, []*ir.Node{x, b}, ir.Attrs{Act: act}
		dead[a] = true
		intoProduct(n, x, b, act)
	}
	// A bias add with no activation after it that the backward pass can
	// skip (x + b, then a GELU, whose adjoint reads the sum, or nothing):
	// the sum itself becomes the product with the bias as its epilogue.
	for _, a := range p.Forward {
		if !dead[a] && isBiasAdd(a) {
			intoProduct(a, a.Args[0], a.Args[1], ir.Identity)
		}
	}
	// A residual connection around such a product (r + (x·W + b), r of
	// the sum's shape, the product read by nothing else): the add becomes
	// the product with the bias and r added in its epilogue, in the same
	// order as the two passes (bit-identical), one pass and one buffer
	// fewer. The adjoint of an add reads neither operand.
	for _, a := range p.Forward {
		if dead[a] || a.Op != ir.Add {
			continue
		}
		for side := range 2 {
			m, r := a.Args[side], a.Args[1-side]
			if m.Op != ir.MatMulBiasAct || m.Attrs.Act != ir.Identity || dead[m] || len(users[m]) != 1 ||
				m == p.Graph.Output || m == p.Graph.Loss || !m.Shape.Equal(a.Shape) || !r.Shape.Equal(a.Shape) {
				continue
			}
			a.Op, a.Args, a.Attrs = ir.MatMulBiasAdd, append(slices.Clip(m.Args), r), m.Attrs
			dead[m] = true
			break
		}
	}
	p.Forward = slices.DeleteFunc(p.Forward, func(n *ir.Node) bool { return dead[n] })
}

// FileAxes returns the axis order in which checkpoints store parameter
// param (OpDef.FileAxes of the ops that read it), or nil for its own order.
func (p *Program) FileAxes(param *ir.Node) []int {
	for _, n := range p.Forward {
		if n.Op.FileAxes == nil {
			continue
		}
		for i, a := range n.Args {
			if a == param {
				if axes := n.Op.FileAxes(i); axes != nil {
					return axes
				}
			}
		}
	}
	return nil
}

// String returns the program's text form: the forward graph, in which the
// nodes that do not run (fused into another op's kernel, or unused) are
// commented out, then the backward pass.
func (p *Program) String() string {
	run := map[*ir.Node]bool{}
	for _, n := range p.Forward {
		run[n] = true
	}
	var b strings.Builder
	g := p.Graph
	fmt.Fprintf(&b, "model %s batch %d (from %s)\n", g.Model, g.Batch, g.File)
	for _, n := range g.Nodes {
		if n.Op.Leaf || run[n] {
			fmt.Fprintln(&b, ir.FormatNode(n))
		} else {
			fmt.Fprintf(&b, "# %s  (not run: fused into another kernel, or unused)\n", ir.FormatNode(n))
		}
	}
	fmt.Fprintf(&b, "loss %v %s\n", g.Loss, g.Loss.Label())
	fmt.Fprintf(&b, "output %v %s\n", g.Output, g.Output.Label())
	b.WriteString("backward:\n")
	ir.Format(&b, p.Backward)
	if len(p.InferOnly) > 0 {
		b.WriteString("inference:\n")
		for _, n := range p.Infer {
			line := ir.FormatNode(n)
			if t, ok := p.Replaced[n]; ok {
				line += fmt.Sprintf("  (writes %v %s)", t, t.Label())
			}
			fmt.Fprintln(&b, line)
		}
	}
	if d := p.Decode; d != nil {
		fmt.Fprintf(&b, "decode (one position of %d a step):\n", d.Steps)
		for _, n := range d.Nodes {
			line := ir.FormatNode(n)
			for _, a := range n.Args {
				if per, ok := d.PerPosition[a]; ok {
					line += fmt.Sprintf("  (%s %v at position pos: %d elements from pos·%d)", a.Label(), a.Shape, per, per)
				}
			}
			if slices.Contains(d.Cached, n) {
				line += "  (cached: the earlier positions' keys and values)"
			}
			fmt.Fprintln(&b, line)
		}
	} else {
		fmt.Fprintf(&b, "decode: none, since %s\n", p.NoDecode)
	}
	return b.String()
}
