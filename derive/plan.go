package derive

import (
	"math"
	"sort"

	"github.com/backpropgen/backpropgen/ir"
)

// Kind says where a node's value lives.
type Kind uint8

const (
	Arena    Kind = iota // Slot.Offset in the activation arena
	Leaf                 // an input, label or parameter: its own view
	Literal              // a scalar constant written inline; no storage
	IntoGrad             // the kernel adds its result into Slot.Sink's gradient
	Folded               // an acc_grad whose producer already accumulated (IntoGrad)
	View                 // a reshape, or an inference-mode replacement: the storage of Slot.Root
	Effect               // an update of state (OpDef.Effect): no result, no storage
)

// Slot is one node's storage.
type Slot struct {
	Kind   Kind
	Offset int      // Arena: element offset; View: offset into Root's storage
	Size   int      // elements at the maximum batch
	Sink   *ir.Node // IntoGrad, acc_grad: the leaf whose gradient accumulates
	Root   *ir.Node // View: the node that owns the storage

	// ScratchOffset and ScratchSize place the work buffer of ops that need
	// one (OpDef.Scratch) in the arena, live only while the op runs.
	ScratchOffset, ScratchSize int
	// AuxOffset and AuxSize place the int32 record an op keeps for its
	// gradient (OpDef.Aux) in the aux arena; it is never shared.
	AuxOffset, AuxSize int
	// SavedOffset and SavedSize place the floats an op saves for its
	// gradient (OpDef.Saved) in the saved arena; never shared.
	SavedOffset, SavedSize int

	// FusedSum, on an activation's gradient, is the bias-gradient sum
	// (the column sums of that gradient, added into a parameter's
	// gradient) its kernel computes in the same pass; that sum has no
	// kernel of its own (Plan.Fused).
	FusedSum *ir.Node

	// Overwrite, on an IntoGrad node whose kernel takes an acc flag, marks
	// the first write of Sink's gradient in the backward pass: a training
	// step runs that kernel with acc false, so that the gradient needs no
	// zeroing first (Plan.Overwritten).
	Overwrite bool
}

// Plan is the static memory plan: every node's slot, indexed by node ID,
// and the arena size. Buffers whose lifetimes do not overlap share memory.
type Plan struct {
	Slots     []Slot
	ArenaSize int
	AuxSize   int // int32 elements of the aux arena
	SavedSize int // elements of the saved arena
	Align     int // every arena offset is a multiple of Align elements

	// GradChecks says, for each parameter in order, how a training step
	// makes sure its gradient is finite before the optimizer reads it.
	GradChecks []GradCheck
}

// Slot returns n's slot.
func (pl *Plan) Slot(n *ir.Node) Slot { return pl.Slots[n.ID] }

// Fused reports whether n is computed by the kernel of its argument (a
// bias-gradient sum taken with the activation gradient it sums).
func (pl *Plan) Fused(n *ir.Node) bool {
	return len(n.Args) == 1 && pl.Slots[n.Args[0].ID].FusedSum == n
}

// write is one kernel that writes a gradient, and whether it can overwrite
// the gradient instead of adding into it.
type write struct {
	node      *ir.Node
	overwrite bool
}

const align = 16 // elements: 64 bytes of float32, a cache line

func plan(p *Program) Plan {
	total := len(p.Graph.Nodes) + len(p.Backward) + len(p.InferOnly)
	pl := Plan{Slots: make([]Slot, total), Align: align}
	users := p.Users()
	order := p.Order()
	pos := map[*ir.Node]int{}
	for i, n := range order {
		pos[n] = i
	}
	for _, n := range p.Graph.Nodes {
		if n.Op.Leaf {
			pl.Slots[n.ID] = Slot{Kind: Leaf, Size: n.Shape.Elems()}
		}
		if n.Op.Effect {
			pl.Slots[n.ID] = Slot{Kind: Effect}
		}
	}
	// An inference-mode replacement writes the storage of the training op
	// it stands in for, so that the ops after it are the same in both
	// modes.
	for r, t := range p.Replaced {
		pl.Slots[r.ID] = Slot{Kind: View, Root: t, Size: r.Shape.Elems()}
	}
	// Fold acc_grad into producers that can accumulate, noting for each
	// gradient the node that writes it and whether that node's kernel
	// can overwrite instead of adding.
	writes := map[*ir.Node][]write{}
	for _, n := range p.Backward {
		if n.Op != ir.AccGrad {
			continue
		}
		pl.Slots[n.ID] = Slot{Kind: Arena, Sink: n.Attrs.Param}
		c := n.Args[0]
		for c.Op.Alias && len(users[c]) == 1 {
			c = c.Args[0]
		}
		if s := n.Args[0]; s.Op == ir.Slice && len(users[s]) == 1 && s.Args[0].Op.AccumulatesSlice != nil && s.Args[0].Op.AccumulatesSlice(s.Args[0], s) {
			pl.Slots[s.ID] = Slot{Kind: IntoGrad, Sink: n.Attrs.Param, Size: s.Shape.Elems()}
			pl.Slots[n.ID] = Slot{Kind: Folded, Sink: n.Attrs.Param}
			// rnn_grad adds into the slice's part: it cannot overwrite.
			writes[n.Attrs.Param] = append(writes[n.Attrs.Param], write{node: s.Args[0]})
			continue
		}
		if c.Op.Accumulates && len(users[c]) == 1 && c.ID >= len(p.Graph.Nodes) {
			for v := n.Args[0]; ; v = v.Args[0] {
				pl.Slots[v.ID] = Slot{Kind: IntoGrad, Sink: n.Attrs.Param, Size: v.Shape.Elems()}
				if v == c {
					break
				}
			}
			pl.Slots[n.ID] = Slot{Kind: Folded, Sink: n.Attrs.Param}
			// It covers the whole gradient unless a slice lies between, or
			// the gradient has a batch axis (an input's: the kernel writes
			// only the step's n rows).
			whole := c.Shape.Elems() == n.Attrs.Param.Shape.Elems() && !n.Attrs.Param.Shape.HasBatch()
			writes[n.Attrs.Param] = append(writes[n.Attrs.Param], write{node: c, overwrite: whole})
			continue
		}
		writes[n.Attrs.Param] = append(writes[n.Attrs.Param], write{node: n}) // acc_grad's own kernel adds
	}
	// Views, literals, and lifetimes of what needs arena storage.
	root := func(n *ir.Node) *ir.Node {
		for n.Op.Alias && pl.Slots[n.ID].Kind != IntoGrad {
			n = n.Args[0]
		}
		return n
	}
	end := map[*ir.Node]int{}
	for _, n := range order {
		r := root(n)
		if n.Op.Alias && r != n {
			off := 0 // slices add their offsets; reshapes add none
			for v := n; v != r; v = v.Args[0] {
				off += v.Attrs.Offset
			}
			pl.Slots[n.ID] = Slot{Kind: View, Root: r, Size: n.Shape.Elems(), Offset: off}
		}
		for _, a := range n.Args {
			ra := root(a)
			end[ra] = max(end[ra], pos[n])
		}
	}
	for _, pinned := range []*ir.Node{p.Graph.Loss, p.Graph.Output} {
		end[root(pinned)] = math.MaxInt
	}
	for _, n := range order {
		if n.Op != ir.Const || !n.Shape.IsScalar() {
			continue
		}
		inline := true
		for _, u := range users[n] {
			inline = inline && u.Op.ScalarOperands
		}
		if inline && n != p.Graph.Loss && n != p.Graph.Output {
			pl.Slots[n.ID] = Slot{Kind: Literal, Size: 1}
		}
	}

	// Bias gradients taken in the pass of the activation gradient they sum.
	for _, n := range p.Backward {
		if n.Op != ir.Sum || pl.Slots[n.ID].Kind != IntoGrad {
			continue
		}
		u := n.Args[0]
		if !u.Op.FusesBiasGrad || pl.Slots[u.ID].Kind != Arena || pl.Slots[u.ID].FusedSum != nil || !leadingAxes(n.Attrs.Axes, len(u.Shape)) {
			continue
		}
		pl.Slots[u.ID].FusedSum = n
	}

	// The first write of each gradient overwrites it when its kernel can.
	// A fused bias sum runs in its activation gradient's kernel.
	at := func(n *ir.Node) int {
		if pl.Fused(n) {
			return pos[n.Args[0]]
		}
		return pos[n]
	}
	for _, ws := range writes {
		first := ws[0]
		for _, w := range ws[1:] {
			if at(w.node) < at(first.node) {
				first = w
			}
		}
		if first.overwrite {
			pl.Slots[first.node.ID].Overwrite = true
		}
	}

	// First-fit allocation in program order; a buffer is free again once
	// the op that reads it last has run.
	type block struct{ off, size, end int }
	var active []block
	alloc := func(elems, end int) int {
		size := roundUp(elems, align)
		sort.Slice(active, func(i, j int) bool { return active[i].off < active[j].off })
		off := 0
		for _, b := range active {
			if off+size <= b.off {
				break
			}
			off = max(off, b.off+b.size)
		}
		active = append(active, block{off, size, end})
		pl.ArenaSize = max(pl.ArenaSize, off+size)
		return off
	}
	for t, n := range order {
		s := &pl.Slots[n.ID]
		active = filter(active, func(b block) bool { return b.end >= t })
		if s.Kind == Arena && n.Op != ir.AccGrad {
			e, used := end[n]
			if !used {
				e = t // computed but never read (cannot happen after DCE)
			}
			s.Offset, s.Size = alloc(n.Shape.Elems(), e), n.Shape.Elems()
		}
		if n.Op.Scratch != nil && s.Kind != Folded {
			s.ScratchSize = n.Op.Scratch(n)
			s.ScratchOffset = alloc(s.ScratchSize, t)
		}
		if n.Op.Saved != nil {
			s.SavedSize = n.Op.Saved(n)
			s.SavedOffset = pl.SavedSize
			pl.SavedSize += roundUp(s.SavedSize, align)
		}
		if n.Op.Aux != nil {
			s.AuxSize = n.Op.Aux(n)
			s.AuxOffset = pl.AuxSize
			pl.AuxSize += roundUp(s.AuxSize, align)
		}
	}
	pl.GradChecks = gradChecks(p, &pl, writes)
	return pl
}

func filter[T any](s []T, keep func(T) bool) []T {
	out := s[:0]
	for _, v := range s {
		if keep(v) {
			out = append(out, v)
		}
	}
	return out
}

func roundUp(n, m int) int { return (n + m - 1) / m * m }

// Aligned is n rounded up to a multiple of Align: where the next buffer
// can start after one that ends at n.
func (pl *Plan) Aligned(n int) int { return roundUp(n, pl.Align) }

// Overwritten reports whether a training step's backward pass overwrites
// the gradient of sink with its first write (Slot.Overwrite), so that it
// needs no zeroing before the step.
func (pl *Plan) Overwritten(sink *ir.Node) bool {
	for _, s := range pl.Slots {
		if s.Overwrite && s.Sink == sink {
			return true
		}
	}
	return false
}

// leadingAxes reports whether axes are 0, 1, …, rank-2: every axis but the
// last, the rows of a bias gradient.
func leadingAxes(axes []int, rank int) bool {
	if rank < 2 || len(axes) != rank-1 {
		return false
	}
	for i, a := range axes {
		if a != i {
			return false
		}
	}
	return true
}

// Order is the sequence the memory plan allocates over: the training
// forward pass with the inference-only ops placed right after the
// training op whose storage they fill (the ops of a folded batch norm
// after the batch norm), then the backward pass. Each schedule (training:
// Forward and Backward; inference: Infer) runs a subsequence of it in this
// order, so buffers that do not overlap in it never overlap in either.
func (p *Program) Order() []*ir.Node {
	after := map[*ir.Node][]*ir.Node{}
	var pending []*ir.Node
	var last *ir.Node // the last training op of Infer so far
	inferOnly := map[*ir.Node]bool{}
	for _, n := range p.InferOnly {
		inferOnly[n] = true
	}
	for _, n := range p.Eval {
		switch t, replaces := p.Replaced[n]; {
		case replaces:
			after[t] = append(after[t], append(pending, n)...)
			pending = nil
		case inferOnly[n]:
			pending = append(pending, n)
		default:
			if len(pending) > 0 {
				after[last] = append(after[last], pending...)
				pending = nil
			}
			last = n
		}
	}
	if len(pending) > 0 {
		after[last] = append(after[last], pending...)
	}
	var order []*ir.Node
	for _, n := range p.Forward {
		order = append(order, n)
		order = append(order, after[n]...)
	}
	return append(order, p.Backward...)
}
