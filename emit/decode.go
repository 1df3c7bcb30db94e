package emit

import (
	"fmt"

	"github.com/dave/jennifer/jen"

	"github.com/backpropgen/backpropgen/derive"
	"github.com/backpropgen/backpropgen/ir"
)

// stepKernels are the kernels of the ops that keep a cache across the
// steps of a Decoder (ir.StepCached), keyed like kernels; every other op
// of a step runs its ordinary kernel on one position's rows.
var stepKernels = map[*ir.OpDef]func(g *gen, n *ir.Node) jen.Code{}

// decodeNodes adds the step program's copies to the gen's names: each
// copy has the storage (and work buffers) of the node it stands for.
func (g *gen) decodeNodes() {
	d := g.p.Decode
	if d == nil || g.variant {
		return
	}
	for c, o := range d.Orig {
		for _, m := range []map[*ir.Node]string{g.field, g.scratch, g.aux, g.saved} {
			if v, ok := m[o]; ok {
				m[c] = v
			}
		}
	}
	names := newNamer("m", "pos", "rows")
	g.caches = map[*ir.Node]string{}
	for _, n := range d.Cached {
		if _, ok := stepKernels[n.Op]; !ok {
			panic("emit: no step kernel for op " + n.Op.Name) // an op that returns StepCached needs one
		}
		g.caches[n] = names.get(goIdent(label(n), false) + "Cache")
	}
	g.dgroups = g.group(d.Nodes, "step")
}

// decoder writes the Decoder type, its methods, and one step function per
// statement, when the model runs a position at a time (derive's Decode).
func (g *gen) decoder(f *jen.File) {
	d := g.p.Decode
	if d == nil || g.variant {
		return
	}
	model, T := g.g.Model, g.elem()
	out := d.Output
	tokens := g.field[d.Orig[d.Tokens]]
	classes := d.Tokens.Attrs.Classes
	f.Comment(fmt.Sprintf("Decoder runs %s one position at a time, for up to Batch sequences side by side,", model))
	f.Comment("keeping what each causal attention computed at the earlier positions (their keys")
	f.Comment(fmt.Sprintf("and values: a key/value cache). Step's output at a position is Infer's %s at", out.Name))
	f.Comment("that position for the same tokens before it, at the cost of one position's products")
	f.Comment(fmt.Sprintf("instead of the whole context's. A sequence holds at most %d positions.", d.Steps))
	f.Comment("")
	f.Comment(fmt.Sprintf("A Decoder has buffers of its own, %d elements for one position's rows and %d for", g.stepElems(), g.cacheElems()))
	f.Comment("the caches, and reads m's parameters as they are at each step: the model may train")
	f.Comment("or infer between steps.")
	f.Type().Id("Decoder").StructFunc(func(s *jen.Group) {
		s.Id("m").Op("*").Id(g.typeName).Comment("m's parameters, and buffers for one position's rows (newStepModel)")
		s.Id("pos").Int().Comment("positions fed since the last Reset")
		s.Id("rows").Int().Comment("sequences, fixed by the first Step after a Reset")
		for _, n := range d.Cached {
			s.Id(g.caches[n]).Index().Add(T).Comment(fmt.Sprintf("%s's keys and values (Batch, %d, 2·%d)", n.Name, d.Steps, n.Shape[2].Size))
		}
	})

	f.Comment("NewDecoder returns a Decoder at position 0 that reads m's parameters.")
	f.Func().Params(jen.Id("m").Op("*").Id(g.typeName)).Id("NewDecoder").Params().Op("*").Id("Decoder").Block(
		jen.Return(jen.Op("&").Id("Decoder").Values(jen.DictFunc(func(v jen.Dict) {
			v[jen.Id("m")] = jen.Id("newStepModel").Call(jen.Id("m").Dot("Params"))
			for _, n := range d.Cached {
				v[jen.Id(g.caches[n])] = jen.Make(jen.Index().Add(T), jen.Id("Batch").Op("*").Add(rt("AttentionCacheSize")).Call(jen.Lit(d.Steps), jen.Lit(n.Shape[2].Size)))
			}
		}))),
	)

	f.Comment("Reset starts new sequences at position 0.")
	f.Func().Params(jen.Id("d").Op("*").Id("Decoder")).Id("Reset").Params().Block(
		jen.Id("d").Dot("pos").Op(",").Id("d").Dot("rows").Op("=").Lit(0).Op(",").Lit(0),
	)

	f.Comment("Pos is the number of positions fed since the last Reset: the position the next Step feeds.")
	f.Func().Params(jen.Id("d").Op("*").Id("Decoder")).Id("Pos").Params().Int().Block(jen.Return(jen.Id("d").Dot("pos")))

	last := out.Shape[len(out.Shape)-1].Size
	f.Comment(fmt.Sprintf("Step feeds tokens[b] to sequence b at position Pos() and returns that position's %s", out.Name))
	f.Comment(fmt.Sprintf("(len(tokens), %d), valid until the next Step. Every Step after a Reset feeds the", last))
	f.Comment("same number of sequences, 1 to Batch.")
	f.Func().Params(jen.Id("d").Op("*").Id("Decoder")).Id("Step").Params(jen.Id("tokens").Index().Int32()).Params(jen.Index().Add(T), jen.Error()).BlockFunc(func(b *jen.Group) {
		b.Id("n").Op(":=").Len(jen.Id("tokens"))
		errorf := func(format string, args ...jen.Code) jen.Code {
			return jen.Return(jen.Nil(), jen.Qual("fmt", "Errorf").Call(append([]jen.Code{jen.Lit(model + ": Decoder.Step: " + format)}, args...)...))
		}
		b.Switch().Block(
			jen.Case(jen.Id("n").Op("<").Lit(1).Op("||").Id("n").Op(">").Id("Batch")).Block(
				errorf("%d tokens: want one per sequence, 1 to %d", jen.Id("n"), jen.Id("Batch"))),
			jen.Case(jen.Id("d").Dot("pos").Op(">").Lit(0).Op("&&").Id("n").Op("!=").Id("d").Dot("rows")).Block(
				errorf("%d tokens at position %d: the sequences since the last Reset are %d", jen.Id("n"), jen.Id("d").Dot("pos"), jen.Id("d").Dot("rows"))),
			jen.Case(jen.Id("d").Dot("pos").Op(">=").Lit(d.Steps)).Block(
				errorf(fmt.Sprintf("the sequences hold all %d positions: Reset, and feed the last tokens again to go on", d.Steps))),
		)
		b.If(jen.Id("r").Op(":=").Add(rt("CheckLabels")).Call(jen.Id("tokens"), jen.Lit(classes)), jen.Id("r").Op(">=").Lit(0)).Block(
			errorf(fmt.Sprintf("token %%d is %%d: want one in [0, %d)", classes), jen.Id("r"), jen.Id("tokens").Index(jen.Id("r"))))
		b.Id("m").Op(":=").Id("d").Dot("m")
		b.Copy(jen.Id("m").Dot(tokens).Index(jen.Empty(), jen.Id("n")), jen.Id("tokens"))
		for _, gr := range g.dgroups {
			args := []jen.Code{jen.Id("n")}
			if g.readsPos(gr) {
				args = append(args, jen.Id("d").Dot("pos"))
			}
			b.Id("d").Dot(gr.fn).Call(args...)
		}
		b.Id("d").Dot("pos").Op(",").Id("d").Dot("rows").Op("=").Id("d").Dot("pos").Op("+").Lit(1).Op(",").Id("n")
		b.Return(g.in(out), jen.Nil())
	})

	g.stepModelFunc(f)

	for _, gr := range g.dgroups {
		params, at := jen.Id("n").Int(), "one position"
		if g.readsPos(gr) {
			params, at = jen.Id("n").Op(",").Id("pos").Int(), "position pos"
		}
		f.Comment(fmt.Sprintf("%s computes %s = %s (%s:%d) at %s.", gr.fn, gr.stmt.Name, gr.stmt.Text, g.src, gr.stmt.Pos.Line, at))
		f.Func().Params(jen.Id("d").Op("*").Id("Decoder")).Id(gr.fn).Params(params).BlockFunc(func(b *jen.Group) {
			b.Id("m").Op(":=").Id("d").Dot("m")
			for _, n := range gr.nodes {
				b.Comment(g.describe(n))
				if k, ok := stepKernels[n.Op]; ok {
					b.Add(k(g, n))
				} else {
					b.Add(g.kernel(n))
				}
			}
		})
	}
}

// stepBuffer is a buffer of the Decoder's model: its field and elements.
type stepBuffer struct {
	field string
	size  int
	int32 bool
}

// stepBuffers lists the buffers a Decoder's step writes or reads besides
// the parameters, in the step's order, each once: the storage of every
// step node at one position (Batch × 1 × ...; the whole of an unbatched
// one), the tokens, and the work and saved buffers of their kernels. Each
// is its own, none shared: they are one position big.
func (g *gen) stepBuffers() []stepBuffer {
	d := g.p.Decode
	var out []stepBuffer
	seen := map[string]bool{}
	add := func(field string, size int, i32 bool) {
		if field != "" && !seen[field] {
			seen[field] = true
			out = append(out, stepBuffer{field, size, i32})
		}
	}
	add(g.field[d.Tokens], d.Tokens.Shape.Elems(), true)
	for _, n := range d.Nodes {
		s := g.p.Plan.Slot(n)
		size := s.Size // an unbatched node's whole storage
		if n.Shape.HasBatch() {
			size = n.Shape.Elems()
		}
		switch s.Kind {
		case derive.Arena:
			add(g.field[n], size, false)
		case derive.View:
			add(g.field[s.Root], size, false) // the whole of the root (derive's Decode checks)
		}
		if s.ScratchSize > 0 {
			add(g.scratch[n], s.ScratchSize, false) // Infer's: AttentionStep needs T of it
		}
		if _, cached := stepKernels[n.Op]; s.SavedSize > 0 && n.Op.Saved != nil && !cached { // a step kernel saves nothing
			add(g.saved[n], n.Op.Saved(n), false)
		}
		if s.AuxSize > 0 && n.Op.Aux != nil {
			add(g.aux[n], n.Op.Aux(n), false)
		}
	}
	return out
}

// stepElems is the number of elements of stepBuffers.
func (g *gen) stepElems() int {
	t := 0
	for _, b := range g.stepBuffers() {
		t += b.size
	}
	return t
}

// cacheElems is the number of elements of the Decoder's caches.
func (g *gen) cacheElems() int {
	t := 0
	for _, n := range g.p.Decode.Cached {
		t += g.g.Batch * g.p.Decode.Steps * 2 * n.Shape[2].Size
	}
	return t
}

// stepModelFunc writes newStepModel, the model a Decoder steps: the
// parameters' views, and stepBuffers instead of the arena.
func (g *gen) stepModelFunc(f *jen.File) {
	T := g.elem()
	f.Comment("newStepModel returns the model a Decoder steps: params and their views, and of the")
	f.Comment("rest only the buffers a step uses, each its own and one position big (Batch × 1 × ...),")
	f.Comment("instead of the arena of a model's whole sequences.")
	f.Func().Id("newStepModel").Params(jen.Id("params").Index().Add(T)).Op("*").Id(g.typeName).BlockFunc(func(b *jen.Group) {
		b.Id("m").Op(":=").Op("&").Id(g.typeName).Values(jen.Dict{jen.Id("Params"): jen.Id("params")})
		if len(g.g.Params) > 0 {
			b.Id("p").Op(":=").Lit(0)
			b.Id("take").Op(":=").Func().Params(jen.Id("n").Int()).Index().Add(T).Block(
				jen.Id("p").Op("+=").Id("n"),
				jen.Return(jen.Id("params").Index(jen.Id("p").Op("-").Id("n").Op(":").Id("p").Op(":").Id("p"))),
			)
			for _, p := range g.g.Params {
				b.Id("m").Dot(g.field[p]).Op("=").Id("take").Call(jen.Lit(p.Shape.Elems()))
			}
		}
		for _, sb := range g.stepBuffers() {
			elem := T
			if sb.int32 {
				elem = jen.Int32()
			}
			b.Id("m").Dot(sb.field).Op("=").Make(jen.Index().Add(elem), jen.Lit(sb.size))
		}
		b.Add(rt("Reserve")).Call(jen.Lit(1)).Comment("the GEMM's work buffers, so that no step allocates, the first included")
		b.Return(jen.Id("m"))
	})
}

// readsPos reports whether a step statement depends on the position: it
// reads a position table or keeps a cache.
func (g *gen) readsPos(gr group) bool {
	for _, n := range gr.nodes {
		if _, ok := stepKernels[n.Op]; ok {
			return true
		}
		for _, a := range n.Args {
			if _, ok := g.p.Decode.PerPosition[a]; ok {
				return true
			}
		}
	}
	return false
}

// perPosition is the storage of a copy the step reads at its position
// (derive's Decode.PerPosition), or nil.
func (g *gen) perPosition(n *ir.Node) *jen.Statement {
	d := g.p.Decode
	if d == nil {
		return nil
	}
	per, ok := d.PerPosition[n]
	if !ok {
		return nil
	}
	at := jen.Id("pos").Op("*").Lit(per)
	return jen.Id("m").Dot(g.field[n]).Index(at, jen.Parens(jen.Id("pos").Op("+").Lit(1)).Op("*").Lit(per))
}

// decoderTest writes TestDecoder: a Decoder fed the test inputs' sequences
// a position at a time gives Infer's output at every position (the same
// sums in another order: within a tolerance), refuses what Step's
// contract excludes, and allocates nothing per step.
func (g *gen) decoderTest(f *jen.File) {
	d := g.p.Decode
	if d == nil {
		return
	}
	T, steps := d.Steps, d.Steps
	tokens := g.field[d.Orig[d.Tokens]]
	classes := d.Tokens.Attrs.Classes
	width := d.Output.Shape[1:].Elems()
	tol := 1e-4
	if g.float64 {
		tol = 1e-10
	}
	f.Comment("TestDecoder feeds the test inputs' sequences to a Decoder one position at a time:")
	f.Comment("each step's output is Infer's at that position, within a tolerance (the same sums")
	f.Comment("in another order). Step refuses a full context, a change in the number of")
	f.Comment("sequences and a token out of range, and allocates nothing.")
	f.Func().Id("TestDecoder").Params(jen.Id("t").Op("*").Qual("testing", "T")).BlockFunc(func(b *jen.Group) {
		b.Id("m").Op(":=").Id("New").Call()
		b.Id("setup").Call(jen.Id("m"), jen.Lit(1))
		b.If(jen.Err().Op(":=").Id("m").Dot("Infer").Call(jen.Id("Batch")), jen.Err().Op("!=").Nil()).Block(jen.Id("t").Dot("Fatal").Call(jen.Err()))
		b.Id("want").Op(":=").Qual("slices", "Clone").Call(jen.Id("m").Dot("Output").Call(jen.Id("Batch")))
		b.Id("d").Op(":=").Id("m").Dot("NewDecoder").Call()
		b.Id("tokens").Op(":=").Make(jen.Index().Int32(), jen.Id("Batch"))
		b.Var().Id("worst").Float64()
		b.For(jen.Id("pos").Op(":=").Range().Lit(steps)).BlockFunc(func(b *jen.Group) {
			b.For(jen.Id("s").Op(":=").Range().Id("tokens")).Block(
				jen.Id("tokens").Index(jen.Id("s")).Op("=").Id("m").Dot(tokens).Index(jen.Id("s").Op("*").Lit(T).Op("+").Id("pos")))
			b.List(jen.Id("got"), jen.Err()).Op(":=").Id("d").Dot("Step").Call(jen.Id("tokens"))
			b.If(jen.Err().Op("!=").Nil()).Block(jen.Id("t").Dot("Fatal").Call(jen.Err()))
			at := func(buf string, row jen.Code) *jen.Statement {
				return jen.Float64().Call(jen.Id(buf).Index(jen.Add(row).Op("*").Lit(width).Op("+").Id("i")))
			}
			b.For(jen.Id("s").Op(":=").Range().Id("Batch")).Block(
				jen.For(jen.Id("i").Op(":=").Range().Lit(width)).Block(
					jen.Id("w").Op(":=").Add(at("want", jen.Parens(jen.Id("s").Op("*").Lit(T).Op("+").Id("pos")))),
					jen.Id("worst").Op("=").Max(jen.Id("worst"), jen.Qual("math", "Abs").Call(at("got", jen.Id("s")).Op("-").Id("w")).Op("/").Parens(jen.Lit(1).Op("+").Qual("math", "Abs").Call(jen.Id("w")))),
				),
			)
		})
		b.If(jen.Id("worst").Op(">").Lit(tol)).Block(
			jen.Id("t").Dot("Errorf").Call(jen.Lit(fmt.Sprintf("Decoder's outputs differ from Infer's by %%.3g (relative to 1+|Infer's|), more than %g", tol)), jen.Id("worst")))
		refuse := func(what string, call jen.Code, want string) {
			b.If(jen.List(jen.Id("_"), jen.Err()).Op(":=").Add(call), jen.Err().Op("==").Nil().Op("||").Op("!").Qual("strings", "Contains").Call(jen.Err().Dot("Error").Call(), jen.Lit(want))).Block(
				jen.Id("t").Dot("Errorf").Call(jen.Lit(what+": got error %v, want one saying %q"), jen.Err(), jen.Lit(want)))
		}
		refuse("a step past the context", jen.Id("d").Dot("Step").Call(jen.Id("tokens")), fmt.Sprintf("all %d positions", steps))
		b.Id("d").Dot("Reset").Call()
		b.If(jen.List(jen.Id("_"), jen.Err()).Op(":=").Id("d").Dot("Step").Call(jen.Id("tokens").Index(jen.Empty(), jen.Lit(1))), jen.Err().Op("!=").Nil()).Block(jen.Id("t").Dot("Fatal").Call(jen.Err()))
		if g.g.Batch > 1 {
			refuse("another number of sequences", jen.Id("d").Dot("Step").Call(jen.Id("tokens").Index(jen.Empty(), jen.Lit(2))), "the sequences since the last Reset are 1")
		}
		b.Id("d").Dot("Reset").Call()
		b.Id("tokens").Index(jen.Lit(0)).Op("=").Lit(classes)
		refuse("a token out of range", jen.Id("d").Dot("Step").Call(jen.Id("tokens").Index(jen.Empty(), jen.Lit(1))), fmt.Sprintf("token 0 is %d", classes))
		b.Id("tokens").Index(jen.Lit(0)).Op("=").Lit(0)
		b.Id("allocs").Op(":=").Qual("testing", "AllocsPerRun").Call(jen.Lit(5), jen.Func().Params().Block(
			jen.Id("d").Dot("Reset").Call(),
			jen.If(jen.List(jen.Id("_"), jen.Err()).Op(":=").Id("d").Dot("Step").Call(jen.Id("tokens")), jen.Err().Op("!=").Nil()).Block(jen.Id("t").Dot("Fatal").Call(jen.Err())),
		))
		b.If(jen.Id("allocs").Op("!=").Lit(0)).Block(jen.Id("t").Dot("Errorf").Call(jen.Lit("a Decoder step allocates %v times, want 0"), jen.Id("allocs")))
	})

	f.Comment(fmt.Sprintf("BenchmarkDecoderStep times a Decoder's step of one sequence, over all %d positions", steps))
	f.Comment("(the attention's share grows with the position): ns/op is per position.")
	f.Func().Id("BenchmarkDecoderStep").Params(jen.Id("b").Op("*").Qual("testing", "B")).Block(
		jen.Id("m").Op(":=").Id("New").Call(),
		jen.Id("setup").Call(jen.Id("m"), jen.Lit(1)),
		jen.Id("d").Op(":=").Id("m").Dot("NewDecoder").Call(),
		jen.Id("token").Op(":=").Make(jen.Index().Int32(), jen.Lit(1)),
		jen.Id("b").Dot("ReportAllocs").Call(),
		jen.Id("b").Dot("ResetTimer").Call(),
		jen.For(jen.Id("i").Op(":=").Range().Id("b").Dot("N")).Block(
			jen.If(jen.Id("i").Op("%").Lit(steps).Op("==").Lit(0)).Block(jen.Id("d").Dot("Reset").Call()),
			jen.Id("token").Index(jen.Lit(0)).Op("=").Id("m").Dot(tokens).Index(jen.Id("i").Op("%").Lit(steps)),
			jen.If(jen.List(jen.Id("_"), jen.Err()).Op(":=").Id("d").Dot("Step").Call(jen.Id("token")), jen.Err().Op("!=").Nil()).Block(jen.Id("b").Dot("Fatal").Call(jen.Err())),
		),
	)
}
