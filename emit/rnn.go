package emit

import (
	"fmt"

	"github.com/dave/jennifer/jen"

	"github.com/backpropgen/backpropgen/derive"
	"github.com/backpropgen/backpropgen/ir"
)

var cellConst = map[string]string{"simple_rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}

// rnnGeom is the package-level runtime.RNNGeom of an rnn node.
func (g *gen) rnnGeom(n *ir.Node) jen.Code {
	name := goIdent(label(n), false) + "Geom"
	return jen.Id(name)
}

func (g *gen) rnnGeomVars(f *jen.File) {
	for _, n := range g.p.Forward {
		if n.Op.Name != "rnn" {
			continue
		}
		geo := ir.RNNGeom(n)
		f.Comment(fmt.Sprintf("%sGeom is the recurrent layer %s: %s, %d steps of %d features, %d units.", goIdent(label(n), false), label(n), n.Attrs.RNN.Cell, geo.T, geo.D, geo.H))
		f.Var().Id(goIdent(label(n), false)+"Geom").Op("=").Qual(rtPath, "RNNGeom").Values(jen.Dict{
			jen.Id("Cell"): rt(cellConst[n.Attrs.RNN.Cell]),
			jen.Id("T"):    jen.Lit(geo.T),
			jen.Id("D"):    jen.Lit(geo.D),
			jen.Id("H"):    jen.Lit(geo.H),
		})
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
		if n.Op.Name == "rnn" {
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
				if n.Attrs.RNN.Cell == "lstm" {
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
			if r.HasH0 && n.Args[5].Op.Name == "input" {
				b.Copy(g.ref(n.Args[5]), jen.Id("m").Dot(st[0]))
			}
			if r.HasC0 && n.Args[6].Op.Name == "input" {
				b.Copy(g.ref(n.Args[6]), jen.Id("m").Dot(st[1]))
			}
		}
	})
}

// rtrlLayers are the simple_rnn layers that get an online (RTRL) step.
func (g *gen) rtrlLayers() []*ir.Node {
	var out []*ir.Node
	for _, n := range g.p.Forward {
		if n.Op.Name == "rnn" && n.Attrs.RNN.Cell == "simple_rnn" {
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
			jen.Return(jen.Id("r").Dot("Step").Call(jen.Id("x"), g.ref(n.Args[1]), g.ref(n.Args[2]), g.ref(n.Args[3]), g.ref(n.Args[4]))),
		)
		f.Comment(fmt.Sprintf("GradRTRL%s adds into the gradients of %s's parameters the gradient of a loss", L, label(n)))
		f.Comment("whose derivative with respect to the current state is dh (rows, H).")
		sink := func(p *ir.Node) jen.Code { return jen.Id("m").Dot(g.grad[p]) }
		recv().Id("GradRTRL"+L).Params(jen.Id("r").Op("*").Add(rt("RTRL")).Index(T), jen.Id("dh").Index().Add(T)).Block(
			jen.Id("r").Dot("Grad").Call(jen.Id("dh"), sink(n.Args[1]), sink(n.Args[2]), sink(n.Args[3]), sink(n.Args[4])),
		)
	}
}

func init() {
	kernels["rnn"] = func(g *gen, n *ir.Node) jen.Code {
		r := n.Attrs.RNN
		st := g.state[n]
		c := jen.Code(jen.Nil())
		if r.Cell == "lstm" {
			c = jen.Id("m").Dot(st[1])
		}
		saved := jen.Id("m").Dot(g.saved[n])
		return jen.Add(rt("RNNForward").Call(g.rnnGeom(n), jen.Id("n"), g.out(n), g.in(n.Args[0]), g.optional(n, r.HasH0, 5), g.optional(n, r.HasC0, 6),
			g.in(n.Args[1]), g.in(n.Args[2]), g.in(n.Args[3]), g.in(n.Args[4]), saved)).Line().
			Add(rt("RNNFinalState").Call(g.rnnGeom(n), jen.Id("n"), jen.Id("m").Dot(st[0]), c, g.in(n), saved))
	}
	kernels["rnn_grad"] = func(g *gen, n *ir.Node) jen.Code {
		fwd := n.Args[1]
		r := fwd.Attrs.RNN
		offsets, _ := ir.RNNGradLayout(fwd)
		part := func(i int) jen.Code {
			a := fwd.Args[i]
			return g.ref(n).Index(jen.Lit(offsets[i]).Op(":").Lit(offsets[i] + a.Shape.Elems()))
		}
		used := func(i int) bool {
			for _, u := range g.users[n] {
				if u.Op.Name == "slice" && u.Attrs.Offset == offsets[i] {
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
			if s := g.p.Plan.Slot(u); u.Op.Name == "slice" && s.Kind == derive.IntoGrad {
				for i := 1; i <= 4; i++ {
					if u.Attrs.Offset == offsets[i] {
						into[i] = u
					}
				}
			}
		}
		var code []jen.Code
		weights := make([]jen.Code, 5)
		for i := 1; i <= 4; i++ {
			if u, ok := into[i]; ok {
				weights[i] = g.ref(u)
				continue
			}
			weights[i] = part(i)
			code = append(code, rt("Fill").Call(part(i), jen.Lit(0)))
		}
		return jen.Add(code...).Add(rt("RNNBackward").Call(g.rnnGeom(fwd), jen.Id("n"), opt(true, 0), opt(r.HasH0, 5), opt(r.HasC0, 6),
			weights[1], weights[2], weights[3], weights[4], g.in(n.Args[0]), jen.Nil(), jen.Nil(),
			g.in(fwd.Args[0]), g.optional(fwd, r.HasH0, 5), g.optional(fwd, r.HasC0, 6), g.in(fwd.Args[1]), g.in(fwd.Args[2]),
			g.in(fwd), jen.Id("m").Dot(g.saved[fwd]), jen.Id("m").Dot(g.scratch[n])))
	}
	kernels["slice"] = func(g *gen, n *ir.Node) jen.Code { return jen.Null() }
	kernels["time_last"] = func(g *gen, n *ir.Node) jen.Code {
		x := n.Args[0].Shape
		return rt("TimeLast").Call(g.out(n), g.in(n.Args[0]), jen.Id("n"), jen.Lit(x[1].Size), jen.Lit(x[2].Size))
	}
	kernels["time_last_grad"] = func(g *gen, n *ir.Node) jen.Code {
		x := n.Shape
		return rt("TimeLastGrad").Call(g.out(n), g.in(n.Args[0]), jen.Id("n"), jen.Lit(x[1].Size), jen.Lit(x[2].Size), g.acc(n))
	}
}
