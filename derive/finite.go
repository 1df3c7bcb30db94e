package derive

import (
	"github.com/backpropgen/backpropgen/ir"
)

// A GradCheck says how a training step makes sure that the gradient of one
// parameter is finite before the optimizer reads it, so that a NaN or an
// infinity never reaches the parameters or the optimizer's state.
//
// Reading every gradient costs a pass over as many floats as the model has
// parameters, about 2% of a small model's step. Many gradients need none:
// a gradient written by a kernel whose op has a bound rule (OpDef.Bound:
// dW = xᵀ·dz has |dW| ≤ k·max|x|·max|dz|) is finite when that bound is,
// and the bound needs only the magnitudes of the kernel's operands,
// activations and upstream gradients, which in a small batch are far
// smaller than the weights. The backward pass measures them right after
// the kernel (runtime.MaxAbs, which also finds any NaN or infinity among
// them) and keeps the bound; the check before the optimizer reads the
// gradient only when a bound is not finite, to report the element. A
// gradient whose bounds would read more elements than the gradient holds
// (a large batch: generated/gpt's 512 rows of 512 activations for a
// 128×512 weight) is scanned instead.
type GradCheck struct {
	Sink *ir.Node

	// Proved: the gradient is the sum of the results of Bounds (it is
	// overwritten by the first of them, or cleared before them), and each
	// of those kernels has a bound. With no Bounds, nothing writes it and
	// it stays zero. Not proved: the gradient is scanned.
	Proved bool
	Bounds []*ir.Node
}

// maxTerms bounds the sums a bound rule may cover: the rounding of a sum of
// k float32 products is at most k·2⁻²⁴ relative, so below 2²² terms a
// computed value is within twice its exact bound (and the check requires
// the bound below half the largest float).
const maxTerms = 1 << 22

func gradChecks(p *Program, pl *Plan, writes map[*ir.Node][]write) []GradCheck {
	out := make([]GradCheck, len(p.Graph.Params))
	// measured holds the operands earlier bounds measure: a kernel's
	// operand measured for one gradient (dz for dW) costs nothing more
	// for the next (db).
	measured := map[*ir.Node]bool{}
	for i, s := range p.Graph.Params {
		c := GradCheck{Sink: s, Proved: true}
		for _, w := range writes[s] {
			if !bounded(pl, w.node, s) {
				c.Proved, c.Bounds = false, nil
				break
			}
			c.Bounds = append(c.Bounds, w.node)
		}
		if c.Proved && len(c.Bounds) > 0 {
			var cost int
			var reads []*ir.Node
			for _, w := range c.Bounds {
				_, args, _ := w.Op.Bound(w)
				for _, a := range args {
					x := w.Args[a]
					// Inputs are measured by the input check anyway,
					// literals are known.
					if x.Op == ir.Input || pl.Slots[x.ID].Kind == Literal || measured[x] {
						continue
					}
					measured[x] = true // within this gradient's bounds too
					reads = append(reads, x)
					cost += x.Shape.Elems()
				}
			}
			if cost >= s.Shape.Elems() && !p.Options.AllBounds {
				c.Proved, c.Bounds = false, nil
				for _, x := range reads {
					delete(measured, x)
				}
			}
		}
		out[i] = c
	}
	return out
}

// bounded reports whether w, a kernel writing the gradient of sink, has a
// bound whose operands can be measured right after it runs.
func bounded(pl *Plan, w, sink *ir.Node) bool {
	if w.Op.Bound == nil || pl.Slots[w.ID].Kind != IntoGrad || pl.Slots[w.ID].Sink != sink {
		return false
	}
	_, args, terms := w.Op.Bound(w)
	if terms > maxTerms {
		return false
	}
	for _, a := range args {
		if w.Args[a].DType != ir.Float || pl.Slots[w.Args[a].ID].Kind == Folded {
			return false
		}
	}
	return true
}
