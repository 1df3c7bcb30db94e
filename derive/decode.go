package derive

import (
	"fmt"

	"github.com/backpropgen/backpropgen/ir"
)

// Decode is the inference program run one position of its sequences at a
// time: what a generated Decoder runs to extend sequences token by token,
// keeping the keys and values of the earlier positions (a key/value
// cache) instead of computing the whole context again.
//
// The time axis is axis 1 of every batched shape, (N, T, ...), the axis of
// the token input (N, T). Nodes are Infer's ops for one position: each
// batched one a copy with the time axis 1 that keeps the ID of the node it
// stands for, so it has that node's slot in the plan (the first rows of
// its storage hold the step's rows); unbatched ones as Infer runs them.
type Decode struct {
	Tokens *ir.Node   // the step's token per sequence (N, 1): a copy of the token input
	Steps  int        // T, the positions a sequence can hold
	Nodes  []*ir.Node // the ops of one step, in order
	Output *ir.Node   // the step's output (N, 1, ...): a copy of the graph's output

	// Orig maps each copy to the node of the graph or of Infer it stands
	// for.
	Orig map[*ir.Node]*ir.Node

	// PerPosition holds the unbatched arguments read at the step's
	// position only (OpDef.Step StepBroadcast: a learned position table
	// added to the sequence), as copies whose time axis is 1: their
	// elements per position. The storage is the original's from
	// pos·PerPosition[n].
	PerPosition map[*ir.Node]int

	// Cached are the ops that keep a cache across steps (StepCached:
	// causal attention), in order.
	Cached []*ir.Node
}

// decode builds Program.Decode, or returns why the model cannot run one
// position at a time (Program.NoDecode).
func (p *Program) decode() (*Decode, string) {
	g := p.Graph
	var tokens *ir.Node
	for _, n := range append(append([]*ir.Node{}, g.Inputs...), g.Labels...) {
		if !p.inferReads(n) {
			continue
		}
		if tokens != nil || n.Op != ir.Label || !n.Attrs.Tokens {
			return nil, "it reads inputs other than one sequence of tokens"
		}
		tokens = n
	}
	if tokens == nil || len(tokens.Shape) != 2 || !tokens.Shape[0].Batch || tokens.Shape[1].Size < 2 {
		return nil, "it reads no sequence of tokens (N, T)"
	}
	T := tokens.Shape[1].Size
	d := &Decode{Steps: T, Orig: map[*ir.Node]*ir.Node{}, PerPosition: map[*ir.Node]int{}}
	copies := map[*ir.Node]*ir.Node{}
	copyOf := func(n *ir.Node, shape ir.Shape) *ir.Node {
		c := *n
		c.Shape = shape
		d.Orig[&c] = n
		copies[n] = &c
		return &c
	}
	d.Tokens = copyOf(tokens, oneStep(tokens.Shape))
	for _, n := range p.Infer {
		batched := n.Shape.HasBatch()
		for _, a := range n.Args {
			batched = batched || a.Shape.HasBatch()
		}
		if !batched {
			d.Nodes = append(d.Nodes, n) // the same at every step
			continue
		}
		where := fmt.Sprintf("%s (%s, line %d)", n.Label(), n.Op.Name, n.Pos.Line)
		s := n.Shape
		if len(s) < 2 || !s[0].Batch || s[1].Batch || s[1].Size != T {
			return nil, fmt.Sprintf("%s is %v, not a sequence (N, %d, ...)", where, s, T)
		}
		kind := ir.StepNone
		if n.Op.Step != nil {
			kind = n.Op.Step(n)
		}
		if kind == ir.StepNone {
			return nil, where + " mixes the positions of a sequence"
		}
		if sl := p.Plan.Slot(n); sl.Kind == View && (sl.Offset != 0 || sl.Size != sl.Root.Shape.Elems()) {
			return nil, where + " is a part of another tensor's storage"
		}
		c := copyOf(n, oneStep(s))
		c.Args = make([]*ir.Node, len(n.Args))
		for i, a := range n.Args {
			switch ac, ok := copies[a]; {
			case ok:
				c.Args[i] = ac
			case a.Shape.HasBatch():
				return nil, fmt.Sprintf("%s reads %s, which Infer does not compute", where, a.Label())
			case kind == ir.StepBroadcast:
				pc, err := d.perPosition(a, len(s), T)
				if err != "" {
					return nil, where + ": " + err
				}
				c.Args[i] = pc
			default:
				c.Args[i] = a // read whole
			}
		}
		if got, err := c.Op.Shape(c); err != nil || !got.Equal(c.Shape) {
			return nil, fmt.Sprintf("%s does not take one position (%v: %v)", where, got, err)
		}
		if kind == ir.StepCached {
			d.Cached = append(d.Cached, c)
		}
		d.Nodes = append(d.Nodes, c)
	}
	out, ok := copies[g.Output]
	if !ok {
		return nil, "its output " + g.Output.Label() + " is not a sequence"
	}
	d.Output = out
	return d, ""
}

// perPosition returns the unbatched operand a of a broadcast over
// sequences of rank rank, as the step at a position reads it: a itself
// when it does not span the time axis, else a copy with that axis 1 in
// PerPosition.
func (d *Decode) perPosition(a *ir.Node, rank, T int) (*ir.Node, string) {
	t := len(a.Shape) - (rank - 1) // a's axis aligned with the time axis
	if t < 0 || a.Shape[t].Size == 1 {
		return a, ""
	}
	for _, x := range a.Shape[:t] {
		if x.Size != 1 {
			return nil, fmt.Sprintf("%s %v varies along an axis before the positions", a.Label(), a.Shape)
		}
	}
	per := 1
	for _, x := range a.Shape[t+1:] {
		per *= x.Size
	}
	for c, o := range d.Orig {
		if o == a {
			return c, ""
		}
	}
	s := append(ir.Shape{}, a.Shape...)
	s[t] = ir.Dim{Size: 1}
	c := *a
	c.Shape = s
	d.Orig[&c] = a
	d.PerPosition[&c] = per
	return &c, ""
}

// inferReads reports whether an op of Infer reads leaf n.
func (p *Program) inferReads(n *ir.Node) bool {
	for _, x := range p.Infer {
		for _, a := range x.Args {
			if a == n {
				return true
			}
		}
	}
	return false
}

// oneStep is s, a sequence (N, T, ...), at one position: (N, 1, ...).
func oneStep(s ir.Shape) ir.Shape {
	o := append(ir.Shape{}, s...)
	o[1] = ir.Dim{Size: 1}
	return o
}
