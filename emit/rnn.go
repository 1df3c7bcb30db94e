package emit

import (
	"fmt"

	"github.com/dave/jennifer/jen"

	"github.com/backpropgen/backpropgen/derive"
	"github.com/backpropgen/backpropgen/ir"
	"github.com/backpropgen/backpropgen/runtime/spec"
)

// rnnGeom is the package-level runtime.RNNGeom of an rnn node.
func (g *gen) rnnGeom(n *ir.Node) jen.Code {
	name := goIdent(label(n), false) + "Geom"
	return jen.Id(name)
}

func (g *gen) rnnGeomVars(f *jen.File) {
	for _, n := range g.p.Forward {
		if n.Op != ir.RNN {
			continue
		}
		geo := ir.RNNGeom(n)
		f.Comment(fmt.Sprintf("%sGeom is the recurrent layer %s: %s, %d steps of %d features, %d units.", goIdent(label(n), false), label(n), n.Attrs.RNN.Cell, geo.T, geo.D, geo.H))
		f.Var().Id(goIdent(label(n), false) + "Geom").Op("=").Add(specLiteral(geo))
	}
}

// optional is a state argument, or nil when the layer starts from zeros.
func (g *gen) optional(n *ir.Node, has bool, i int) jen.Code {
	if !has {
		return jen.Nil()
	}
	return g.in(n.Args[i])
}

func (g *gen) stateMethods(f *jen.File) {
	var rnns []*ir.Node
	for _, n := range g.p.Forward {
		if n.Op == ir.RNN {
			rnns = append(rnns, n)
		}
	}
	if len(rnns) == 0 {
		return
	}
	T := g.elem()
	recv := func() *jen.Statement { return f.Func().Params(jen.Id("m").Op("*").Id(g.typeName)) }
	f.Comment("FinalState returns the hidden state h (and, for an LSTM, the cell state c; else nil)")
	f.Comment("of a recurrent layer after the last step of the last Forward or Infer, (N, H).")
	recv().Id("FinalState").Params(jen.Id("layer").String()).Params(jen.Id("h"), jen.Id("c").Index().Add(T)).Block(
		jen.Switch(jen.Id("layer")).BlockFunc(func(s *jen.Group) {
			for _, n := range rnns {
				st := g.state[n]
				c := jen.Nil()
				if n.Attrs.RNN.Cell.CellState() {
					c = jen.Id("m").Dot(st[1])
				}
				s.Case(jen.Lit(label(n))).Block(jen.Return(jen.Id("m").Dot(st[0]), c))
			}
		}),
		jen.Return(jen.Nil(), jen.Nil()),
	)
	f.Comment("CarryState copies each recurrent layer's final state into the input it was")
	f.Comment("started from (initial=...), so the next window continues the sequence:")
	f.Comment("truncated BPTT, with no gradient flowing back past the window.")
	recv().Id("CarryState").Params().BlockFunc(func(b *jen.Group) {
		for _, n := range rnns {
			st := g.state[n]
			r := n.Attrs.RNN
			if r.HasH0 && n.Args[ir.RNNH0].Op == ir.Input {
				b.Copy(g.ref(n.Args[ir.RNNH0]), jen.Id("m").Dot(st[0]))
			}
			if r.HasC0 && n.Args[ir.RNNC0].Op == ir.Input {
				b.Copy(g.ref(n.Args[ir.RNNC0]), jen.Id("m").Dot(st[1]))
			}
		}
	})
}

// rtrlLayers are the simple_rnn layers that get an online (RTRL) step.
func (g *gen) rtrlLayers() []*ir.Node {
	var out []*ir.Node
	for _, n := range g.p.Forward {
		if n.Op == ir.RNN && n.Attrs.RNN.Cell == spec.SimpleRNN {
			out = append(out, n)
		}
	}
	return out
}

// rtrlMethods writes, for each simple_rnn layer, an online training step by
// real-time recurrent learning over the layer's own parameters.
func (g *gen) rtrlMethods(f *jen.File) {
	T := g.elem()
	for _, n := range g.rtrlLayers() {
		geo := ir.RNNGeom(n)
		L := goIdent(label(n), true)
		recv := func() *jen.Statement { return f.Func().Params(jen.Id("m").Op("*").Id(g.typeName)) }
		f.Comment(fmt.Sprintf("NewRTRL%s returns real-time recurrent learning state for layer %s and rows", L, label(n)))
		f.Comment("sequences: the sensitivity of its state to its parameters, carried forward in")
		f.Comment(fmt.Sprintf("time (O(H⁴) per step for H = %d units; no history is stored).", geo.H))
		recv().Id("NewRTRL" + L).Params(jen.Id("rows").Int()).Op("*").Add(rt("RTRL")).Index(T).Block(
			jen.Return(jen.Qual(rtPath, "NewRTRL").Index(T).Call(jen.Lit(geo.D), jen.Lit(geo.H), jen.Id("rows"))),
		)
		f.Comment(fmt.Sprintf("StepRTRL%s advances layer %s one step on x (rows, %d) with the model's", L, label(n), geo.D))
		f.Comment("current weights and returns the new state h (rows, H).")
		recv().Id("StepRTRL"+L).Params(jen.Id("r").Op("*").Add(rt("RTRL")).Index(T), jen.Id("x").Index().Add(T)).Index().Add(T).Block(
			jen.Return(jen.Id("r").Dot("Step").Call(jen.Id("x"), g.ref(n.Args[ir.RNNW]), g.ref(n.Args[ir.RNNU]), g.ref(n.Args[ir.RNNB]), g.ref(n.Args[ir.RNNBh]))),
		)
		f.Comment(fmt.Sprintf("GradRTRL%s adds into the gradients of %s's parameters the gradient of a loss", L, label(n)))
		f.Comment("whose derivative with respect to the current state is dh (rows, H).")
		sink := func(p *ir.Node) jen.Code { return jen.Id("m").Dot(g.grad[p]) }
		recv().Id("GradRTRL"+L).Params(jen.Id("r").Op("*").Add(rt("RTRL")).Index(T), jen.Id("dh").Index().Add(T)).Block(
			jen.Id("r").Dot("Grad").Call(jen.Id("dh"), sink(n.Args[ir.RNNW]), sink(n.Args[ir.RNNU]), sink(n.Args[ir.RNNB]), sink(n.Args[ir.RNNBh])),
		)
	}
}

func init() {
	kernels[ir.RNN] = func(g *gen, n *ir.Node) jen.Code {
		r := n.Attrs.RNN
		st := g.state[n]
		c := jen.Code(jen.Nil())
		if r.Cell.CellState() {
			c = jen.Id("m").Dot(st[1])
		}
		saved := jen.Id("m").Dot(g.saved[n])
		return jen.Add(rt("RNNForward").Call(g.rnnGeom(n), jen.Id("n"), g.out(n), g.in(n.Args[ir.RNNX]), g.optional(n, r.HasH0, ir.RNNH0), g.optional(n, r.HasC0, ir.RNNC0),
			g.in(n.Args[ir.RNNW]), g.in(n.Args[ir.RNNU]), g.in(n.Args[ir.RNNB]), g.in(n.Args[ir.RNNBh]), saved)).Line().
			Add(rt("RNNFinalState").Call(g.rnnGeom(n), jen.Id("n"), jen.Id("m").Dot(st[0]), c, g.in(n), saved))
	}
	kernels[ir.RNNGrad] = func(g *gen, n *ir.Node) jen.Code {
		fwd := n.Args[1]
		r := fwd.Attrs.RNN
		offsets, _ := ir.RNNGradLayout(fwd)
		part := func(i int) jen.Code {
			a := fwd.Args[i]
			return g.ref(n).Index(jen.Lit(offsets[i]).Op(":").Lit(offsets[i] + a.Shape.Elems()))
		}
		used := func(i int) bool {
			for _, u := range g.users[n] {
				if u.Op == ir.Slice && u.Attrs.Offset == offsets[i] {
					return true
				}
			}
			return false
		}
		// dx, dh0 and dc0 are computed only when something reads them.
		opt := func(has bool, i int) jen.Code {
			if !has || !used(i) {
				return jen.Nil()
			}
			return part(i)
		}
		// RNNBackward adds the weight gradients into what it is given: the
		// parameters' gradients themselves when nothing else reads them,
		// else zeroed parts of this buffer.
		into := map[int]*ir.Node{}
		for _, u := range g.users[n] {
			if s := g.p.Plan.Slot(u); u.Op == ir.Slice && s.Kind == derive.IntoGrad {
				for _, i := range ir.RNNWeights {
					if u.Attrs.Offset == offsets[i] {
						into[i] = u
					}
				}
			}
		}
		var code []jen.Code
		weights := map[int]jen.Code{}
		for _, i := range ir.RNNWeights {
			if u, ok := into[i]; ok {
				weights[i] = g.ref(u)
				continue
			}
			weights[i] = part(i)
			code = append(code, rt("Fill").Call(part(i), jen.Lit(0)))
		}
		return jen.Add(code...).Add(rt("RNNBackward").Call(g.rnnGeom(fwd), jen.Id("n"), opt(true, ir.RNNX), opt(r.HasH0, ir.RNNH0), opt(r.HasC0, ir.RNNC0),
			weights[ir.RNNW], weights[ir.RNNU], weights[ir.RNNB], weights[ir.RNNBh], g.in(n.Args[0]), jen.Nil(), jen.Nil(),
			g.in(fwd.Args[ir.RNNX]), g.optional(fwd, r.HasH0, ir.RNNH0), g.optional(fwd, r.HasC0, ir.RNNC0), g.in(fwd.Args[ir.RNNW]), g.in(fwd.Args[ir.RNNU]),
			g.in(fwd), jen.Id("m").Dot(g.saved[fwd]), jen.Id("m").Dot(g.scratch[n])))
	}
	kernels[ir.Slice] = func(g *gen, n *ir.Node) jen.Code { return jen.Null() }
	kernels[ir.TimeLast] = func(g *gen, n *ir.Node) jen.Code {
		x := n.Args[0].Shape
		return rt("TimeLast").Call(g.out(n), g.in(n.Args[0]), jen.Id("n"), jen.Lit(x[1].Size), jen.Lit(x[2].Size))
	}
	kernels[ir.TimeLastGrad] = func(g *gen, n *ir.Node) jen.Code {
		x := n.Shape
		return rt("TimeLastGrad").Call(g.out(n), g.in(n.Args[0]), jen.Id("n"), jen.Lit(x[1].Size), jen.Lit(x[2].Size), g.acc(n))
	}
}
