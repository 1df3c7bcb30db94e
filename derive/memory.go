package derive

import "github.com/backpropgen/backpropgen/ir"

// Memory is what a generated model holds at run time, in bytes, for
// elements of a given size, at the maximum batch: what New allocates, and
// the optimizer state training adds.
type Memory struct {
	Params    int64 // parameters
	Grads     int64 // their gradients
	Optimizer int64 // Adam's two moments, the most any optimizer here keeps
	Arena     int64 // intermediates, shared by liveness, and work buffers
	Records   int64 // what the forward pass saves for the backward pass (gates, argmax)
	Inputs    int64 // inputs, labels and input gradients
}

// Total is the sum of every part.
func (m Memory) Total() int64 {
	return m.Params + m.Grads + m.Optimizer + m.Arena + m.Records + m.Inputs
}

// Memory returns what the program needs with elements of elemBytes bytes.
func (p *Program) Memory(elemBytes int) Memory {
	e := int64(elemBytes)
	var params, inputs int64
	for _, n := range p.Graph.Params {
		params += int64(n.Shape.Elems())
	}
	for _, n := range p.Graph.Inputs {
		inputs += int64(n.Shape.Elems()) * e
	}
	for _, n := range p.Graph.Labels {
		inputs += int64(n.Shape.Elems()) * 4
	}
	for _, n := range p.Sinks[len(p.Graph.Params):] {
		inputs += int64(n.Shape.Elems()) * e
	}
	return Memory{
		Params:    params * e,
		Grads:     params * e,
		Optimizer: 2 * params * e,
		Arena:     int64(p.Plan.ArenaSize) * e,
		Records:   int64(p.Plan.SavedSize)*e + int64(p.Plan.AuxSize)*4,
		Inputs:    inputs,
	}
}

// Largest returns the leaf or arena buffer with the most elements (with
// its work buffer, for ops that need one): the place to point at when a
// model is too large.
func (p *Program) Largest() *ir.Node {
	var best *ir.Node
	size := func(n *ir.Node) int {
		s := p.Plan.Slot(n)
		if s.Kind == Leaf || s.Kind == Arena {
			return n.Shape.Elems() + s.ScratchSize + s.SavedSize
		}
		return s.ScratchSize + s.SavedSize
	}
	consider := func(n *ir.Node) {
		if best == nil || size(n) > size(best) {
			best = n
		}
	}
	for _, n := range p.Graph.Nodes {
		if n.Op.Leaf {
			consider(n)
		}
	}
	for _, list := range [][]*ir.Node{p.Forward, p.Backward} {
		for _, n := range list {
			consider(n)
		}
	}
	return best
}
