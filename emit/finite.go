package emit

import (
	"fmt"
	"math"
	"strings"

	"github.com/dave/jennifer/jen"

	"github.com/backpropgen/backpropgen/derive"
	"github.com/backpropgen/backpropgen/ir"
)

// What keeps NaN and infinities out of the parameters: Forward checks the
// inputs (check), TrainStep the loss, and before the optimizer runs, every
// gradient (checkGrads), most of them from the bounds their kernels'
// operands give (derive's GradCheck), kept in gradBound by the backward
// pass. Anomaly mode checks the result of every kernel.

// boundIndex numbers the kernels whose bounds prove a gradient finite, in
// the order of the plan's GradChecks.
func (g *gen) boundIndex() map[*ir.Node]int {
	idx := map[*ir.Node]int{}
	for _, c := range g.p.Plan.GradChecks {
		for _, w := range c.Bounds {
			idx[w] = len(idx)
		}
	}
	return idx
}

// boundStmt returns the statements after n's kernel that keep the bound of
// the gradient n writes (or of the bias gradient its kernel sums on the
// way): coef·max|a|·max|b|. Magnitudes are measured once per statement
// function (measured holds their local variables; a node's value does not
// change while it lives) and once per step for inputs (check keeps them).
func (g *gen) boundStmt(n *ir.Node, measured map[*ir.Node]string, names *namer) []jen.Code {
	var out []jen.Code
	for _, w := range []*ir.Node{n, g.p.Plan.Slot(n).FusedSum} {
		j, ok := g.bounds[w]
		if w == nil || !ok {
			continue
		}
		coef, args, _ := w.Op.Bound(w)
		rhs := []jen.Code{jen.Lit(coef)}
		text := []string{fmt.Sprint(coef)}
		for _, a := range args {
			x := w.Args[a]
			switch {
			case g.p.Plan.Slot(x).Kind == derive.Literal:
				v := math.Abs(x.Attrs.Value)
				rhs = append(rhs, jen.Lit(v))
				text = append(text, fmt.Sprint(v))
				continue
			case x.Op == ir.Input:
				rhs = append(rhs, jen.Id("m").Dot(g.inputAbs[x]))
			default:
				if _, ok := measured[x]; !ok {
					measured[x] = names.get(goIdent(label(x), false) + "Abs")
					out = append(out, jen.Id(measured[x]).Op(":=").Add(rt("MaxAbs")).Call(g.in(x)))
				}
				rhs = append(rhs, jen.Id(measured[x]))
			}
			text = append(text, "max|"+label(x)+"|")
		}
		prod := jen.Id("m").Dot("gradBound").Index(jen.Lit(j)).Op("=")
		for k, c := range rhs {
			if k > 0 {
				prod = prod.Op("*")
			}
			prod = prod.Add(c)
		}
		out = append(out, jen.Comment(fmt.Sprintf("|d%s| ≤ %s: proves it finite for checkGrads without reading it",
			g.p.Plan.Slot(w).Sink.Name, strings.Join(text, "·"))), prod)
	}
	return out
}

// checkGradsFunc writes checkGrads and gradError.
func (g *gen) checkGradsFunc(f *jen.File) {
	T := g.elem()
	recv := func() *jen.Statement { return f.Func().Params(jen.Id("m").Op("*").Id(g.typeName)) }
	f.Comment("checkGrads returns an error naming the first parameter whose gradient is NaN or")
	f.Comment("infinite, before the optimizer reads any. A gradient whose kernels' bounds (kept")
	f.Comment("in gradBound by the backward pass) are finite is finite and is not read; the")
	f.Comment("others are scanned.")
	recv().Id("checkGrads").Params().Error().BlockFunc(func(b *jen.Group) {
		for _, c := range g.p.Plan.GradChecks {
			if c.Proved && len(c.Bounds) == 0 {
				continue // nothing writes it: it stays zero
			}
			grad := jen.Id("m").Dot(g.grad[c.Sink])
			scan := jen.If(jen.Id("i").Op(":=").Add(rt("FirstNonFinite")).Call(grad), jen.Id("i").Op(">=").Lit(0)).Block(
				jen.Return(jen.Id("m").Dot("gradError").Call(jen.Lit(c.Sink.Name), jen.Id("i"), jen.Float64().Call(jen.Id("m").Dot(g.grad[c.Sink]).Index(jen.Id("i"))))),
			)
			if !c.Proved {
				b.Add(scan)
				continue
			}
			var sum *jen.Statement
			for k, w := range c.Bounds {
				term := jen.Id("m").Dot("gradBound").Index(jen.Lit(g.bounds[w]))
				if k == 0 {
					sum = term
				} else {
					sum = sum.Op("+").Add(term)
				}
			}
			b.If(jen.Op("!").Add(rt("BoundFinite")).Index(T).Call(sum)).Block(scan)
		}
		b.Return(jen.Nil())
	})
	f.Comment("gradError explains a gradient that is not finite although the inputs and the loss are.")
	recv().Id("gradError").Params(jen.Id("name").String(), jen.Id("i").Int(), jen.Id("v").Float64()).Error().Block(
		jen.Return(jen.Qual("fmt", "Errorf").Call(jen.Lit(g.g.Model+": the gradient of %s is %v at element %d, with finite inputs and loss: a value overflowed in the backward pass (set Anomaly to find the op); lower the learning rate or clip gradients; parameters not updated"),
			jen.Id("name"), jen.Id("v"), jen.Id("i"))),
	)
}

// written returns the buffers n's kernel writes, for anomaly mode: its
// result, and the bias gradient it sums on the way.
func (g *gen) written(n *ir.Node) []*ir.Node {
	var out []*ir.Node
	for _, w := range []*ir.Node{n, g.p.Plan.Slot(n).FusedSum} {
		if w == nil {
			continue
		}
		switch g.p.Plan.Slot(w).Kind {
		case derive.Arena:
			if w.Op != ir.AccGrad {
				out = append(out, w)
			}
		case derive.IntoGrad:
			out = append(out, w)
		}
	}
	return out
}

// anomalyRef is the storage of a buffer n's kernel wrote, at this step's
// size, and the whole buffer (to index).
func (g *gen) anomalyRef(n *ir.Node) (written, whole *jen.Statement, name string) {
	s := g.p.Plan.Slot(n)
	if s.Kind == derive.IntoGrad {
		return g.sinkRef(s.Sink, s.Sink.Shape), jen.Id("m").Dot(g.grad[s.Sink]), "d" + s.Sink.Name
	}
	return g.out(n), g.ref(n), label(n)
}

// anomalyFuncs writes forwardChecked and backwardChecked, the passes of
// anomaly mode: every statement as in Forward and backward, then a scan of
// what each of its kernels wrote; the first NaN or infinity stops the pass
// with the kernel, its chain-rule step and its description line. Each
// check carries its own description, so that a change to one layer
// changes only that layer's checks.
func (g *gen) anomalyFuncs(f *jen.File) {
	recv := func() *jen.Statement { return f.Func().Params(jen.Id("m").Op("*").Id(g.typeName)) }
	checks := func(b *jen.Group, gr group) {
		for _, n := range gr.nodes {
			for _, w := range g.written(n) {
				ref, whole, name := g.anomalyRef(w)
				b.If(jen.Id("i").Op(":=").Add(rt("FirstNonFinite")).Call(ref), jen.Id("i").Op(">=").Lit(0)).Block(
					jen.Return(jen.Id("m").Dot("anomaly").Call(jen.Lit(g.describeWrite(n, w)), jen.Lit(name), jen.Id("i"), jen.Float64().Call(whole.Index(jen.Id("i"))))),
				)
			}
		}
	}
	f.Comment("forwardChecked is Forward's pass in anomaly mode: the parameters are checked, then")
	f.Comment("each statement's results as it runs.")
	recv().Id("forwardChecked").Params(jen.Id("n").Int()).Error().BlockFunc(func(b *jen.Group) {
		b.If(jen.Id("i").Op(":=").Add(rt("FirstNonFinite")).Call(jen.Id("m").Dot("Params")), jen.Id("i").Op(">=").Lit(0)).Block(
			jen.Return(jen.Qual("fmt", "Errorf").Call(jen.Lit(g.g.Model+": anomaly: parameter element %d is %v before the forward pass: load a good checkpoint or Init again"),
				jen.Id("i"), jen.Id("m").Dot("Params").Index(jen.Id("i")))),
		)
		for _, gr := range g.groups {
			b.Id("m").Dot(gr.fn).Call(jen.Id("n"))
			checks(b, gr)
		}
		b.Return(jen.Nil())
	})
	f.Comment("backwardChecked is backward in anomaly mode: each statement's results are checked")
	f.Comment("as it runs.")
	recv().Id("backwardChecked").Params(jen.Id("n").Int(), jen.Id("acc").Bool()).Error().BlockFunc(func(b *jen.Group) {
		for _, gr := range g.bgroups {
			if g.takesAcc(gr.nodes) {
				b.Id("m").Dot(gr.fn).Call(jen.Id("n"), jen.Id("acc"))
			} else {
				b.Id("m").Dot(gr.fn).Call(jen.Id("n"))
			}
			checks(b, gr)
		}
		b.Return(jen.Nil())
	})
	f.Comment("anomaly is the error of anomaly mode: kernel op made tensor non-finite at element i.")
	recv().Id("anomaly").Params(jen.Id("op"), jen.Id("tensor").String(), jen.Id("i").Int(), jen.Id("v").Float64()).Error().Block(
		jen.Return(jen.Qual("fmt", "Errorf").Call(jen.Lit(g.g.Model+": anomaly: %s made %s %v at element %d, from finite operands"),
			jen.Id("op"), jen.Id("tensor"), jen.Id("v"), jen.Id("i"))),
	)
}
