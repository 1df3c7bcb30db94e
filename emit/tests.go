package emit

import (
	"fmt"
	"slices"
	"strings"

	"github.com/dave/jennifer/jen"

	"github.com/backpropgen/backpropgen/derive"
	"github.com/backpropgen/backpropgen/ir"
)

const (
	gradcheckPath = "github.com/backpropgen/backpropgen/runtime/gradcheck"
	modeltestPath = "github.com/backpropgen/backpropgen/runtime/modeltest"
)

// GenerateTest returns the model's test file: the float64 variant of the
// model, finite-difference gradient checks of every parameter, agreement
// of float32 with float64, bad-input errors, checkpoint round trip, a
// zero-allocation test and BenchmarkTrainStep.
func GenerateTest(p *derive.Program, opt Options) ([]byte, error) {
	main := newGen(p, opt, opt.Float64, false)
	f := jen.NewFile(main.pkg())
	main.header(f)

	if opt.Float64 {
		f.Comment("model64 is Model itself: the model is already float64.")
		f.Type().Id("model64").Op("=").Id("Model")
		f.Func().Id("newModel64").Params().Op("*").Id("Model").Block(jen.Return(jen.Id("New").Call()))
	} else {
		v := newGen(p, opt, true, true)
		v.modelType(f)
		v.constructor(f)
		v.initFunc(f)
		v.entryPoints(f)
		v.checkGradsFunc(f)
		v.anomalyFuncs(f)
		v.statementFuncs(f)
		v.access(f)
	}
	main.testFuncs(f)
	return render(f)
}

func (g *gen) testFuncs(f *jen.File) {
	T := g.elem()
	rng := func() *jen.Statement { return jen.Op("*").Qual("math/rand/v2", "Rand") }

	f.Comment("fill sets x to deterministic values in [0.05, 0.95]: inside the domain of")
	f.Comment("log, sqrt and probabilities, away from zero.")
	f.Func().Id("fill").Types(jen.Id("E").Float32().Op("|").Float64()).Params(jen.Id("x").Index().Id("E"), jen.Id("rng").Add(rng())).Block(
		jen.For(jen.Id("i").Op(":=").Range().Id("x")).Block(
			jen.Id("x").Index(jen.Id("i")).Op("=").Id("E").Call(jen.Lit(0.05).Op("+").Lit(0.9).Op("*").Id("rng").Dot("Float64").Call()),
		),
	)
	setup := func(name, typ string) {
		f.Comment(fmt.Sprintf("%s initializes m's parameters and fills its inputs and labels.", name))
		f.Func().Id(name).Params(jen.Id("m").Op("*").Id(typ), jen.Id("seed").Uint64()).BlockFunc(func(b *jen.Group) {
			b.Id("m").Dot("Init").Call(jen.Id("seed"))
			b.Id("rng").Op(":=").Qual(rtPath, "NewRNG").Call(jen.Id("seed").Op("+").Lit(1))
			for _, x := range g.g.Inputs {
				b.Id("fill").Call(jen.Id("m").Dot(g.field[x]), jen.Id("rng"))
			}
			for _, y := range g.g.Labels {
				b.For(jen.Id("i").Op(":=").Range().Id("m").Dot(g.field[y])).Block(
					jen.Id("m").Dot(g.field[y]).Index(jen.Id("i")).Op("=").Int32().Call(jen.Id("rng").Dot("IntN").Call(jen.Lit(y.Attrs.Classes))),
				)
			}
		})
	}
	setup("setup", "Model")
	if !g.float64 {
		setup("setup64", "model64")
	}
	setup64 := "setup64"
	if g.float64 {
		setup64 = "setup"
	}

	t := func() *jen.Statement { return jen.Id("t").Op("*").Qual("testing", "T") }
	fatalIf := func(call *jen.Statement) *jen.Statement {
		return jen.If(jen.Err().Op("!=").Nil()).Block(jen.Id("t").Dot("Fatal").Call(jen.Err()))
	}
	small := min(3, g.g.Batch)

	f.Comment("TestFirstTrainStepAllocs asserts that a new model's first training step allocates")
	f.Comment("nothing (New reserves the GEMM's work buffers). It is the first test of the file,")
	f.Comment("so that no earlier test has warmed anything up.")
	f.Func().Id("TestFirstTrainStepAllocs").Params(t()).Block(
		jen.Id("m").Op(":=").Id("New").Call(),
		jen.Id("setup").Call(jen.Id("m"), jen.Lit(1)),
		jen.Id("opt").Op(":=").Qual(rtPath, "NewAdam").Index(T).Call(jen.Id("NumParams"), jen.Lit(1e-3)),
		jen.Var().Err().Error(),
		jen.List(jen.Id("objects"), jen.Id("bytes")).Op(":=").Qual(modeltestPath, "AllocsInside").Call(jen.Lit(".(*Model).TrainStep"), jen.Func().Params().Block(
			jen.List(jen.Id("_"), jen.Err()).Op("=").Id("m").Dot("TrainStep").Call(jen.Id("Batch"), jen.Id("opt")),
		)),
		fatalIf(nil),
		jen.If(jen.Id("objects").Op("!=").Lit(0)).Block(
			jen.Id("t").Dot("Errorf").Call(jen.Lit("the first TrainStep allocated %d objects (%d bytes), want 0"), jen.Id("objects"), jen.Id("bytes")),
		),
	)

	smallDirs, smallCoords, smallPerTensor := g.checkBudget(small)
	fullDirs, fullCoords, perTensor := g.checkBudget(g.g.Batch)
	how := func(per bool, dirs, coords int) string {
		plural := func(k int, what string) string {
			if k == 1 {
				return fmt.Sprintf("%d %s", k, what)
			}
			return fmt.Sprintf("%d %ss", k, what)
		}
		counts := plural(dirs, "direction") + " and " + plural(coords, "coordinate")
		if per {
			return "tensor by tensor (" + counts + " each)"
		}
		return "over all the parameters at once (" + counts + ")"
	}
	for _, line := range wrapText("TestGradients checks the gradient of every parameter (and input, when "+
		"generated with -input-grads), in float64, against central finite differences "+
		"of the loss (runtime/gradcheck, built on gonum's diff/fd): random directions "+
		"and single coordinates, relative error ≤ 1e-6, at a partial batch "+how(smallPerTensor, smallDirs, smallCoords)+
		", and at the full batch "+how(perTensor, fullDirs, fullCoords)+", as the model's cost allows.", 80) {
		f.Comment(line)
	}
	f.Comment("With -short only the partial batch is checked.")
	f.Func().Id("TestGradients").Params(t()).Block(
		jen.Id("gradientsAt").Call(jen.Id("t"), jen.Lit(small), jen.Lit(smallPerTensor), jen.Lit(smallDirs), jen.Lit(smallCoords)),
		jen.If(jen.Op("!").Qual("testing", "Short").Call()).Block(
			jen.Id("gradientsAt").Call(jen.Id("t"), jen.Id("Batch"), jen.Lit(perTensor), jen.Lit(fullDirs), jen.Lit(fullCoords)),
		),
	)
	f.Comment("gradientsAt checks the gradients of the first n rows: of each tensor, or of all the")
	f.Comment("parameters as one vector, in dirs random directions and coords coordinates.")
	f.Func().Id("gradientsAt").Params(t(), jen.Id("n").Int(), jen.Id("tensors").Bool(), jen.List(jen.Id("dirs"), jen.Id("coords")).Int()).BlockFunc(func(b *jen.Group) {
		b.Id("m").Op(":=").Id("newModel64").Call()
		b.Id(setup64).Call(jen.Id("m"), jen.Lit(1))
		b.Id("loss").Op(":=").Func().Params().Float64().Block(
			jen.List(jen.Id("l"), jen.Err()).Op(":=").Id("m").Dot("Forward").Call(jen.Id("n")),
			fatalIf(nil),
			jen.Return(jen.Id("l")),
		)
		b.Id("check").Op(":=").Func().Params(jen.Id("seed").Int(), jen.Id("name").String(), jen.Id("x").Index().Float64(), jen.Id("grad").Func().Params().Index().Float64()).Block(
			jen.Id("m").Dot("ZeroGrad").Call(),
			jen.Id("loss").Call(),
			jen.Id("m").Dot("Backward").Call(jen.Id("n")),
			jen.Id("g").Op(":=").Append(jen.Index().Float64().Call(jen.Nil()), jen.Id("grad").Call().Op("...")),
			jen.List(jen.Id("worst"), jen.Err()).Op(":=").Qual(gradcheckPath, "Check").Call(
				jen.Id("name"), jen.Id("x"), jen.Id("g"), jen.Id("loss"),
				jen.Qual(gradcheckPath, "Options").Values(jen.Dict{
					jen.Id("Seed"):       jen.Uint64().Call(jen.Id("seed")),
					jen.Id("Directions"): jen.Id("dirs"),
					jen.Id("Coords"):     jen.Id("coords"),
				})),
			jen.If(jen.Err().Op("!=").Nil()).Block(
				jen.Id("t").Dot("Errorf").Call(jen.Lit("n=%d: %v"), jen.Id("n"), jen.Err()),
			),
			jen.Id("t").Dot("Logf").Call(jen.Lit("n=%d %-12s worst relative error %.1e"), jen.Id("n"), jen.Id("name"), jen.Id("worst")),
		)
		b.If(jen.Op("!").Id("tensors")).Block(
			jen.Id("check").Call(jen.Lit(1), jen.Lit("parameters"), jen.Id("m").Dot("Params"), jen.Func().Params().Index().Float64().Block(jen.Return(jen.Id("m").Dot("Grads")))),
			jen.Return(),
		)
		b.For(jen.Id("i").Op(",").Id("name").Op(":=").Range().Id("ParamNames")).Block(
			jen.Id("check").Call(jen.Id("i").Op("+").Lit(1), jen.Id("name"), jen.Id("m").Dot("Param").Call(jen.Id("name")),
				jen.Func().Params().Index().Float64().Block(jen.Return(jen.Id("m").Dot("Grad").Call(jen.Id("name"))))),
		)
		for i, x := range g.p.Sinks[len(g.g.Params):] {
			b.Id("check").Call(jen.Lit(100+i), jen.Lit(x.Name), g.in(x),
				jen.Func().Params().Index().Float64().Block(jen.Return(jen.Id("m").Dot(g.grad[x]).Index(jen.Empty(), count(x.Shape)))))
		}
	})

	if !g.float64 {
		f.Comment("TestFloat32MatchesFloat64 runs both variants from the same seed.")
		f.Func().Id("TestFloat32MatchesFloat64").Params(t()).Block(
			jen.List(jen.Id("m32"), jen.Id("m64")).Op(":=").List(jen.Id("New").Call(), jen.Id("newModel64").Call()),
			jen.Id("setup").Call(jen.Id("m32"), jen.Lit(7)),
			jen.Id("setup64").Call(jen.Id("m64"), jen.Lit(7)),
			jen.List(jen.Id("l32"), jen.Err()).Op(":=").Id("m32").Dot("Forward").Call(jen.Id("Batch")),
			fatalIf(nil),
			jen.List(jen.Id("l64"), jen.Err()).Op(":=").Id("m64").Dot("Forward").Call(jen.Id("Batch")),
			fatalIf(nil),
			jen.If(jen.Id("d").Op(":=").Qual("math", "Abs").Call(jen.Float64().Call(jen.Id("l32")).Op("-").Id("l64")), jen.Id("d").Op(">").Lit(1e-4).Op("*").Parens(jen.Lit(1).Op("+").Qual("math", "Abs").Call(jen.Id("l64")))).Block(
				jen.Id("t").Dot("Errorf").Call(jen.Lit("float32 loss %v, float64 loss %v"), jen.Id("l32"), jen.Id("l64")),
			),
		)
	}

	g.rtrlTests(f)

	f.Comment("TestTrainStepAllocs asserts that a whole training step allocates nothing.")
	f.Func().Id("TestTrainStepAllocs").Params(t()).Block(
		jen.Id("m").Op(":=").Id("New").Call(),
		jen.Id("setup").Call(jen.Id("m"), jen.Lit(1)),
		jen.Id("opt").Op(":=").Qual(rtPath, "NewAdam").Index(T).Call(jen.Id("NumParams"), jen.Lit(1e-3)),
		jen.Id("allocs").Op(":=").Qual("testing", "AllocsPerRun").Call(jen.Lit(20), jen.Func().Params().Block(
			jen.If(jen.List(jen.Id("_"), jen.Err()).Op(":=").Id("m").Dot("TrainStep").Call(jen.Id("Batch"), jen.Id("opt")), jen.Err().Op("!=").Nil()).Block(
				jen.Id("t").Dot("Fatal").Call(jen.Err()),
			),
		)),
		jen.If(jen.Id("allocs").Op("!=").Lit(0)).Block(
			jen.Id("t").Dot("Errorf").Call(jen.Lit("TrainStep allocates %v times per step, want 0"), jen.Id("allocs")),
		),
	)

	f.Comment("TestTrainStepGradients checks that TrainStep, whose backward pass overwrites")
	f.Comment("most gradients instead of adding to zeros, leaves the gradients of ZeroGrad,")
	f.Comment("Forward and Backward whatever Grads held before (here NaN).")
	f.Func().Id("TestTrainStepGradients").Params(t()).BlockFunc(func(b *jen.Group) {
		b.Id("m").Op(":=").Id("New").Call()
		b.Id("setup").Call(jen.Id("m"), jen.Lit(1))
		if g.random() {
			b.Id("m").Dot("step").Op("++").Comment("the dropout masks TrainStep will draw")
		}
		b.Id("m").Dot("ZeroGrad").Call()
		b.If(jen.List(jen.Id("_"), jen.Err()).Op(":=").Id("m").Dot("Forward").Call(jen.Id("Batch")), jen.Err().Op("!=").Nil()).Block(
			jen.Id("t").Dot("Fatal").Call(jen.Err()),
		)
		b.Id("m").Dot("Backward").Call(jen.Id("Batch"))
		if g.random() {
			b.Id("m").Dot("step").Op("--")
		}
		b.Id("want").Op(":=").Append(jen.Index().Add(T).Parens(jen.Nil()), jen.Id("m").Dot("Grads").Op("..."))
		b.Qual(rtPath, "Fill").Call(jen.Id("m").Dot("Grads"), jen.Add(T).Call(jen.Qual("math", "NaN").Call()))
		b.Id("opt").Op(":=").Qual(rtPath, "NewSGD").Index(T).Call(jen.Id("NumParams"), jen.Lit(0), jen.Lit(0), jen.False())
		b.If(jen.List(jen.Id("_"), jen.Err()).Op(":=").Id("m").Dot("TrainStep").Call(jen.Id("Batch"), jen.Id("opt")), jen.Err().Op("!=").Nil()).Block(
			jen.Id("t").Dot("Fatal").Call(jen.Err()),
		)
		b.For(jen.Id("i").Op(":=").Range().Id("want")).Block(
			jen.If(jen.Id("m").Dot("Grads").Index(jen.Id("i")).Op("!=").Id("want").Index(jen.Id("i"))).Block(
				jen.Id("t").Dot("Fatalf").Call(jen.Lit("after TrainStep, Grads[%d] = %v, want %v as after ZeroGrad, Forward and Backward"),
					jen.Id("i"), jen.Id("m").Dot("Grads").Index(jen.Id("i")), jen.Id("want").Index(jen.Id("i"))),
			),
		)
	})

	f.Comment("TestReplica checks that a replica shares the parameters and nothing else: on")
	f.Comment("the same inputs its gradients (and state) equal the model's, bit for bit.")
	f.Func().Id("TestReplica").Params(t()).BlockFunc(func(b *jen.Group) {
		b.Id("m").Op(":=").Id("New").Call()
		b.Id("setup").Call(jen.Id("m"), jen.Lit(1))
		b.Id("r").Op(":=").Id("m").Dot("NewReplica").Call()
		same := jen.Op("&").Id("r").Dot("Params").Index(jen.Lit(0)).Op("!=").Op("&").Id("m").Dot("Params").Index(jen.Lit(0))
		own := jen.Op("&").Id("r").Dot("Grads").Index(jen.Lit(0)).Op("==").Op("&").Id("m").Dot("Grads").Index(jen.Lit(0))
		for _, x := range append(append([]*ir.Node{}, g.g.Inputs...), g.g.Labels...) {
			f := g.field[x]
			own = own.Op("||").Op("&").Id("r").Dot(f).Index(jen.Lit(0)).Op("==").Op("&").Id("m").Dot(f).Index(jen.Lit(0))
			b.Copy(jen.Id("r").Dot(f), jen.Id("m").Dot(f))
		}
		b.If(same).Block(jen.Id("t").Dot("Fatal").Call(jen.Lit("the replica does not share Params")))
		b.If(own).Block(jen.Id("t").Dot("Fatal").Call(jen.Lit("the replica shares its gradients or an input")))
		for _, who := range []string{"m", "r"} {
			b.If(jen.List(jen.Id("_"), jen.Err()).Op(":=").Id(who).Dot("Gradients").Call(jen.Id("Batch")), jen.Err().Op("!=").Nil()).Block(
				jen.Id("t").Dot("Fatal").Call(jen.Err()),
			)
		}
		cmp := func(field string) {
			b.For(jen.Id("i").Op(":=").Range().Id("m").Dot(field)).Block(
				jen.If(jen.Qual("math", "Float64bits").Call(jen.Float64().Call(jen.Id("r").Dot(field).Index(jen.Id("i")))).Op("!=").
					Qual("math", "Float64bits").Call(jen.Float64().Call(jen.Id("m").Dot(field).Index(jen.Id("i"))))).Block(
					jen.Id("t").Dot("Fatalf").Call(jen.Lit("replica's "+field+"[%d] = %v, the model's %v"),
						jen.Id("i"), jen.Id("r").Dot(field).Index(jen.Id("i")), jen.Id("m").Dot(field).Index(jen.Id("i"))),
				),
			)
		}
		cmp("Grads")
		if len(g.g.States) > 0 {
			cmp("State")
		}
	})

	f.Comment("TestBadInput checks that bad row counts, labels and NaN inputs are errors")
	f.Comment("that leave the parameters untouched.")
	f.Func().Id("TestBadInput").Params(t()).BlockFunc(func(b *jen.Group) {
		b.Id("m").Op(":=").Id("New").Call()
		b.Id("setup").Call(jen.Id("m"), jen.Lit(1))
		b.Id("opt").Op(":=").Qual(rtPath, "NewAdam").Index(T).Call(jen.Id("NumParams"), jen.Lit(1e-3))
		b.Id("before").Op(":=").Append(jen.Index().Add(T).Call(jen.Nil()), jen.Id("m").Dot("Params").Op("..."))
		b.For(jen.Id("_").Op(",").Id("n").Op(":=").Range().Index().Int().Values(jen.Lit(0), jen.Lit(-1), jen.Id("Batch").Op("+").Lit(1))).Block(
			jen.If(jen.List(jen.Id("_"), jen.Err()).Op(":=").Id("m").Dot("TrainStep").Call(jen.Id("n"), jen.Id("opt")), jen.Err().Op("==").Nil()).Block(
				jen.Id("t").Dot("Errorf").Call(jen.Lit("TrainStep(%d) succeeded, want an error"), jen.Id("n")),
			),
		)
		for _, y := range g.g.Labels {
			b.BlockFunc(func(b *jen.Group) {
				yf := jen.Id("m").Dot(g.field[y])
				b.Id("saved").Op(":=").Add(yf).Index(jen.Lit(0))
				b.Add(yf).Index(jen.Lit(0)).Op("=").Lit(y.Attrs.Classes)
				b.If(jen.List(jen.Id("_"), jen.Err()).Op(":=").Id("m").Dot("TrainStep").Call(jen.Id("Batch"), jen.Id("opt")), jen.Err().Op("==").Nil().Op("||").Op("!").Qual("strings", "Contains").Call(jen.Err().Dot("Error").Call(), jen.Lit("label "+y.Name+" row 0"))).Block(
					jen.Id("t").Dot("Errorf").Call(jen.Lit(fmt.Sprintf("label %d of %d classes: got error %%v, want one naming label %s row 0", y.Attrs.Classes, y.Attrs.Classes, y.Name)), jen.Err()),
				)
				b.Add(yf).Index(jen.Lit(0)).Op("=").Id("saved")
			})
		}
		for _, x := range g.g.Inputs {
			b.BlockFunc(func(b *jen.Group) {
				xf := jen.Id("m").Dot(g.field[x])
				b.Id("saved").Op(":=").Add(xf).Index(jen.Lit(0))
				b.Add(xf).Index(jen.Lit(0)).Op("=").Add(T).Call(jen.Qual("math", "NaN").Call())
				b.If(jen.List(jen.Id("_"), jen.Err()).Op(":=").Id("m").Dot("TrainStep").Call(jen.Id("Batch"), jen.Id("opt")), jen.Err().Op("==").Nil().Op("||").Op("!").Qual("strings", "Contains").Call(jen.Err().Dot("Error").Call(), jen.Lit("input "+x.Name+" row 0"))).Block(
					jen.Id("t").Dot("Errorf").Call(jen.Lit(fmt.Sprintf("NaN in %s: got error %%v, want one naming input %s row 0", x.Name, x.Name)), jen.Err()),
				)
				b.Add(xf).Index(jen.Lit(0)).Op("=").Id("saved")
			})
		}
		b.If(jen.Op("!").Qual("slices", "Equal").Call(jen.Id("before"), jen.Id("m").Dot("Params"))).Block(
			jen.Id("t").Dot("Error").Call(jen.Lit("a failed TrainStep changed the parameters")),
		)
	})

	g.finiteTests(f)

	f.Comment("TestCheckpoint saves a trained model with its optimizer and loads it back.")
	f.Func().Id("TestCheckpoint").Params(t()).Block(
		jen.Id("m").Op(":=").Id("New").Call(),
		jen.Id("setup").Call(jen.Id("m"), jen.Lit(1)),
		jen.Id("opt").Op(":=").Qual(rtPath, "NewAdam").Index(T).Call(jen.Id("NumParams"), jen.Lit(1e-3)),
		jen.For(jen.Range().Lit(3)).Block(
			jen.If(jen.List(jen.Id("_"), jen.Err()).Op(":=").Id("m").Dot("TrainStep").Call(jen.Id("Batch"), jen.Id("opt")), jen.Err().Op("!=").Nil()).Block(jen.Id("t").Dot("Fatal").Call(jen.Err())),
		),
		jen.Id("path").Op(":=").Qual("path/filepath", "Join").Call(jen.Id("t").Dot("TempDir").Call(), jen.Lit(g.g.Model+".safetensors")),
		jen.If(jen.Err().Op(":=").Id("m").Dot("SaveCheckpoint").Call(jen.Id("path"), jen.Id("opt"), jen.Nil()), jen.Err().Op("!=").Nil()).Block(jen.Id("t").Dot("Fatal").Call(jen.Err())),
		jen.List(jen.Id("m2"), jen.Id("opt2")).Op(":=").List(jen.Id("New").Call(), jen.Qual(rtPath, "NewAdam").Index(T).Call(jen.Id("NumParams"), jen.Lit(1e-3))),
		jen.If(jen.List(jen.Id("_"), jen.Err()).Op(":=").Id("m2").Dot("LoadCheckpoint").Call(jen.Id("path"), jen.Id("opt2")), jen.Err().Op("!=").Nil()).Block(jen.Id("t").Dot("Fatal").Call(jen.Err())),
		jen.If(jen.Op("!").Qual("slices", "Equal").Call(jen.Id("m").Dot("Params"), jen.Id("m2").Dot("Params")).Op("||").Op("!").Qual("slices", "Equal").Call(jen.Id("opt").Dot("M"), jen.Id("opt2").Dot("M")).Op("||").Id("opt2").Dot("StepCount").Call().Op("!=").Lit(3)).Block(
			jen.Id("t").Dot("Error").Call(jen.Lit("checkpoint round trip changed the parameters or the optimizer state")),
		),
		jen.Comment("The reloaded model infers exactly what the saved one does."),
		jen.If(jen.Err().Op(":=").Id("m").Dot("Infer").Call(jen.Id("Batch")), jen.Err().Op("!=").Nil()).Block(jen.Id("t").Dot("Fatal").Call(jen.Err())),
		jen.Id("want").Op(":=").Qual("slices", "Clone").Call(jen.Id("m").Dot("Output").Call(jen.Id("Batch"))),
		jen.Id("setup").Call(jen.Id("m2"), jen.Lit(1)).Comment("the same inputs, and Init's parameters..."),
		jen.If(jen.List(jen.Id("_"), jen.Err()).Op(":=").Id("m2").Dot("LoadCheckpoint").Call(jen.Id("path"), jen.Nil()), jen.Err().Op("!=").Nil()).Block(jen.Id("t").Dot("Fatal").Call(jen.Err())).Comment("...replaced by the checkpoint's"),
		jen.If(jen.Err().Op(":=").Id("m2").Dot("Infer").Call(jen.Id("Batch")), jen.Err().Op("!=").Nil()).Block(jen.Id("t").Dot("Fatal").Call(jen.Err())),
		jen.If(jen.Op("!").Id("sameBits").Call(jen.Id("want"), jen.Id("m2").Dot("Output").Call(jen.Id("Batch")))).Block(
			jen.Id("t").Dot("Error").Call(jen.Lit("the reloaded model infers other outputs than the one that saved it")),
		),
	)
	g.runningStatsTest(f)

	modes := false
	for _, gr := range g.egroups {
		modes = modes || gr.infer
	}
	f.Comment("TestEvaluate checks the validation pass: it changes neither the parameters nor the")
	if modes {
		f.Comment("state, and gives the same loss twice (inference mode: no batch statistics, no")
		f.Comment("dropout).")
	} else {
		f.Comment("state, and gives Forward's loss bit for bit (the model has no mode-dependent op).")
	}
	f.Func().Id("TestEvaluate").Params(t()).BlockFunc(func(b *jen.Group) {
		b.Id("m").Op(":=").Id("New").Call()
		b.Id("setup").Call(jen.Id("m"), jen.Lit(1))
		b.Id("params").Op(":=").Qual("slices", "Clone").Call(jen.Id("m").Dot("Params"))
		if len(g.g.States) > 0 {
			b.Id("state").Op(":=").Qual("slices", "Clone").Call(jen.Id("m").Dot("State"))
		}
		b.List(jen.Id("a"), jen.Err()).Op(":=").Id("m").Dot("Evaluate").Call(jen.Id("Batch"))
		b.Add(fatalIf(nil))
		b.List(jen.Id("b"), jen.Err()).Op(":=").Id("m").Dot("Evaluate").Call(jen.Id("Batch"))
		b.Add(fatalIf(nil))
		cond := jen.Op("!").Id("sameBits").Call(jen.Id("params"), jen.Id("m").Dot("Params"))
		if len(g.g.States) > 0 {
			cond = cond.Op("||").Op("!").Id("sameBits").Call(jen.Id("state"), jen.Id("m").Dot("State"))
		}
		b.If(cond.Op("||").Id("a").Op("!=").Id("b")).Block(
			jen.Id("t").Dot("Fatalf").Call(jen.Lit("Evaluate changed the model, or gave %v then %v"), jen.Id("a"), jen.Id("b")),
		)
		if !modes {
			b.List(jen.Id("want"), jen.Err()).Op(":=").Id("m").Dot("Forward").Call(jen.Id("Batch"))
			b.Add(fatalIf(nil))
			b.If(jen.Id("a").Op("!=").Id("want")).Block(
				jen.Id("t").Dot("Errorf").Call(jen.Lit("Evaluate's loss %v, Forward's %v"), jen.Id("a"), jen.Id("want")),
			)
		}
	})

	g.decoderTest(f)

	f.Comment("BenchmarkInfer times inference on a full batch.")
	f.Func().Id("BenchmarkInfer").Params(jen.Id("b").Op("*").Qual("testing", "B")).Block(
		jen.Id("m").Op(":=").Id("New").Call(),
		jen.Id("setup").Call(jen.Id("m"), jen.Lit(1)),
		jen.Id("b").Dot("ReportAllocs").Call(),
		jen.For(jen.Id("b").Dot("Loop").Call()).Block(
			jen.If(jen.Err().Op(":=").Id("m").Dot("Infer").Call(jen.Id("Batch")), jen.Err().Op("!=").Nil()).Block(jen.Id("b").Dot("Fatal").Call(jen.Err())),
		),
	)

	f.Comment("BenchmarkTrainStep times one full training step (forward, backward, Adam)")
	f.Comment("at the description's batch size.")
	f.Func().Id("BenchmarkTrainStep").Params(jen.Id("b").Op("*").Qual("testing", "B")).Block(
		jen.Id("m").Op(":=").Id("New").Call(),
		jen.Id("setup").Call(jen.Id("m"), jen.Lit(1)),
		jen.Id("opt").Op(":=").Qual(rtPath, "NewAdam").Index(T).Call(jen.Id("NumParams"), jen.Lit(1e-3)),
		jen.Id("b").Dot("ReportAllocs").Call(),
		jen.For(jen.Id("b").Dot("Loop").Call()).Block(
			jen.If(jen.List(jen.Id("_"), jen.Err()).Op(":=").Id("m").Dot("TrainStep").Call(jen.Id("Batch"), jen.Id("opt")), jen.Err().Op("!=").Nil()).Block(jen.Id("b").Dot("Fatal").Call(jen.Err())),
		),
	)
}

// checkBudget picks how many random directions and coordinates the
// gradient check tries per tensor, so big models (long sequences, convs)
// still check every tensor in a few seconds of float64.
func (g *gen) checkBudget(rows int) (dirs, coords int, perTensor bool) {
	flops := 0
	for _, n := range g.p.Forward {
		if n.Op.Flops != nil {
			flops += n.Op.Flops(n)
		} else {
			flops += n.Shape.Elems()
		}
	}
	flops = flops * rows / g.g.Batch
	const budget = 4e9 // float64 operations per batch size, about two seconds
	evals := int(budget / float64(max(flops, 1)*len(g.p.Sinks)))
	dirs, coords = 3, 8
	if evals >= 2*(dirs+coords) {
		return dirs, coords, true
	}
	// Tensor by tensor at the partial batch, however thin the budget
	// (at least a direction and two coordinates each), unless even that
	// costs more than a hundred budgets (a model the size of GPT-2's
	// smallest blocks: minutes of float64 products).
	const minPerTensor = 6 // evaluations: a direction and two coordinates, two sides each
	if evals >= 6 || rows < g.g.Batch && float64(minPerTensor*max(flops, 1)*len(g.p.Sinks)) <= 100*budget {
		return max(1, min(3, evals/6)), max(2, evals/2-dirs), true
	}
	// Every parameter at once: the budget buys a few evaluations of the
	// whole model.
	evals = int(budget / float64(max(flops, 1)))
	return max(1, min(3, evals/4)), max(2, min(8, evals/2-2)), false
}

// rtrlTests writes, for each simple_rnn layer whose input is a model input,
// a test that the generated online RTRL step yields BPTT's gradient.
func (g *gen) rtrlTests(f *jen.File) {
	tested := false
	for _, n := range g.rtrlLayers() {
		x := n.Args[0]
		geo := ir.RNNGeom(n)
		// RTRL costs O(H⁴) per step: test it on layers small enough to run
		// in a unit test (the op tests use small ones).
		if x.Op != ir.Input || geo.H*geo.H*(geo.H*geo.H+geo.H*geo.D)*geo.T > 2e8 {
			continue
		}
		L := goIdent(label(n), true)
		r := n.Attrs.RNN
		h0 := jen.Code(jen.Nil())
		if r.HasH0 {
			h0 = jen.Id("m").Dot(g.field[n.Args[5]]).Index(jen.Empty(), jen.Id("n").Op("*").Lit(geo.H))
		}
		params := n.Args[1:5]
		tested = true
		f.Comment(fmt.Sprintf("TestRTRLMatchesBPTT%s: for L = ⟨h_T, R⟩ on layer %s, the online RTRL step", L, label(n)))
		f.Comment("accumulates the same gradient as backpropagation through time (float64, ≤ 1e-9).")
		f.Func().Id("TestRTRLMatchesBPTT" + L).Params(jen.Id("t").Op("*").Qual("testing", "T")).BlockFunc(func(b *jen.Group) {
			b.Const().Id("n").Op("=").Lit(min(3, g.g.Batch))
			b.Id("m").Op(":=").Id("newModel64").Call()
			b.Id("setup64").Call(jen.Id("m"), jen.Lit(1))
			b.If(jen.List(jen.Id("_"), jen.Err()).Op(":=").Id("m").Dot("Forward").Call(jen.Id("n")), jen.Err().Op("!=").Nil()).Block(jen.Id("t").Dot("Fatal").Call(jen.Err()))
			b.Id("rng").Op(":=").Qual(rtPath, "NewRNG").Call(jen.Lit(9))
			b.Id("R").Op(":=").Make(jen.Index().Float64(), jen.Id("n").Op("*").Lit(geo.H))
			b.Id("fill").Call(jen.Id("R"), jen.Id("rng"))
			// BPTT through the layer with dL/dh_T = R.
			for i, p := range params {
				b.Id(fmt.Sprintf("bptt%d", i)).Op(":=").Make(jen.Index().Float64(), jen.Lit(p.Shape.Elems()))
			}
			b.Id("work").Op(":=").Make(jen.Index().Float64(), jen.Id(goIdent(label(n), false)+"Geom").Dot("WorkSize").Call(jen.Id("n")))
			b.Qual(rtPath, "RNNBackward").Call(jen.Id(goIdent(label(n), false)+"Geom"), jen.Id("n"), jen.Nil(), jen.Nil(), jen.Nil(),
				jen.Id("bptt0"), jen.Id("bptt1"), jen.Id("bptt2"), jen.Id("bptt3"), jen.Nil(), jen.Id("R"), jen.Nil(),
				g.in(x), h0, jen.Nil(), g.ref(params[0]), g.ref(params[1]), g.in(n), jen.Id("m").Dot(g.saved[n]), jen.Id("work"))
			// RTRL online over the same steps, then the same loss at the end.
			b.Id("r").Op(":=").Id("m").Dot("NewRTRL" + L).Call(jen.Id("n"))
			b.Id("r").Dot("Reset").Call(h0)
			b.Id("xt").Op(":=").Make(jen.Index().Float64(), jen.Id("n").Op("*").Lit(geo.D))
			b.For(jen.Id("step").Op(":=").Range().Lit(geo.T)).Block(
				jen.For(jen.Id("row").Op(":=").Range().Id("n")).Block(
					jen.Copy(
						jen.Id("xt").Index(jen.Id("row").Op("*").Lit(geo.D).Op(":")),
						jen.Id("m").Dot(g.field[x]).Index(jen.Parens(jen.Id("row").Op("*").Lit(geo.T).Op("+").Id("step")).Op("*").Lit(geo.D).Op(":")),
					),
				),
				jen.Id("m").Dot("StepRTRL"+L).Call(jen.Id("r"), jen.Id("xt")),
			)
			b.Id("m").Dot("ZeroGrad").Call()
			b.Id("m").Dot("GradRTRL"+L).Call(jen.Id("r"), jen.Id("R"))
			for i, p := range params {
				b.If(jen.Id("e").Op(":=").Id("maxRelDiff").Call(jen.Id("m").Dot(g.grad[p]), jen.Id(fmt.Sprintf("bptt%d", i))), jen.Id("e").Op(">").Lit(1e-9)).Block(
					jen.Id("t").Dot("Errorf").Call(jen.Lit(fmt.Sprintf("d%s: RTRL and BPTT differ by %%.1e (relative)", p.Name)), jen.Id("e")),
				)
			}
		})
	}
	if len(g.rtrlLayers()) > 0 && tested {
		f.Comment("maxRelDiff is max|a-b| / max|b|.")
		f.Func().Id("maxRelDiff").Params(jen.Id("a"), jen.Id("b").Index().Float64()).Float64().Block(
			jen.Var().Id("d").Op(",").Id("s").Float64(),
			jen.For(jen.Id("i").Op(":=").Range().Id("b")).Block(
				jen.Id("d").Op("=").Max(jen.Id("d"), jen.Qual("math", "Abs").Call(jen.Id("a").Index(jen.Id("i")).Op("-").Id("b").Index(jen.Id("i")))),
				jen.Id("s").Op("=").Max(jen.Id("s"), jen.Qual("math", "Abs").Call(jen.Id("b").Index(jen.Id("i")))),
			),
			jen.Return(jen.Id("d").Op("/").Max(jen.Id("s"), jen.Lit(1e-300))),
		)
	}
}

// poisonPlaces are the elements of input x (at the full batch) where
// TestNonFiniteInputs puts NaN and infinities: the first and the last, the
// second element of the first row, a middle one, and for images the second
// cell of the first pooling window in either direction.
func poisonPlaces(x *ir.Node) []int {
	elems := x.Shape.Elems()
	places := []int{0, 1, elems / 2, elems - 1}
	if s := x.Shape; len(s) == 4 {
		c, w := s[3].Size, s[2].Size
		places = append(places, c, (w+1)*c, w*c)
	}
	var out []int
	for _, p := range places {
		if p >= 0 && p < elems && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// finiteTests writes the tests of what keeps NaN out of the parameters:
// poisoned inputs, the gradient check and its bounds, and anomaly mode.
func (g *gen) finiteTests(f *jen.File) {
	T := g.elem()
	t := func() *jen.Statement { return jen.Id("t").Op("*").Qual("testing", "T") }
	fatal := jen.If(jen.Err().Op("!=").Nil()).Block(jen.Id("t").Dot("Fatal").Call(jen.Err()))
	clone := func(s *jen.Statement) *jen.Statement { return jen.Qual("slices", "Clone").Call(s) }
	trained := func(b *jen.Group) {
		b.Id("m").Op(":=").Id("New").Call()
		b.Id("setup").Call(jen.Id("m"), jen.Lit(1))
		b.Id("opt").Op(":=").Qual(rtPath, "NewAdam").Index(T).Call(jen.Id("NumParams"), jen.Lit(1e-3))
		b.For(jen.Range().Lit(2)).Block(
			jen.If(jen.List(jen.Id("_"), jen.Err()).Op(":=").Id("m").Dot("TrainStep").Call(jen.Id("Batch"), jen.Id("opt")), jen.Err().Op("!=").Nil()).Block(jen.Id("t").Dot("Fatal").Call(jen.Err())),
		)
	}
	unchanged := func(b *jen.Group, what string) {
		b.If(jen.Op("!").Id("sameBits").Call(jen.Id("params"), jen.Id("m").Dot("Params")).Op("||").Op("!").Id("sameBits").Call(jen.Id("moment1"), jen.Id("opt").Dot("M")).
			Op("||").Op("!").Id("sameBits").Call(jen.Id("moment2"), jen.Id("opt").Dot("V")).Op("||").Id("opt").Dot("StepCount").Call().Op("!=").Id("steps")).Block(
			jen.Id("t").Dot("Error").Call(jen.Lit(what + " changed the parameters or the optimizer state")),
		)
	}
	snapshot := func(b *jen.Group) {
		b.List(jen.Id("params"), jen.Id("moment1"), jen.Id("moment2"), jen.Id("steps")).Op(":=").List(
			clone(jen.Id("m").Dot("Params")), clone(jen.Id("opt").Dot("M")), clone(jen.Id("opt").Dot("V")), jen.Id("opt").Dot("StepCount").Call())
	}

	f.Comment("sameBits reports whether a and b hold the same bits (NaN included).")
	f.Func().Id("sameBits").Params(jen.Id("a"), jen.Id("b").Index().Add(T)).Bool().Block(
		jen.If(jen.Len(jen.Id("a")).Op("!=").Len(jen.Id("b"))).Block(jen.Return(jen.False())),
		jen.For(jen.Id("i").Op(":=").Range().Id("a")).Block(
			jen.If(jen.Qual("math", "Float64bits").Call(jen.Float64().Call(jen.Id("a").Index(jen.Id("i")))).Op("!=").Qual("math", "Float64bits").Call(jen.Float64().Call(jen.Id("b").Index(jen.Id("i"))))).Block(jen.Return(jen.False())),
		),
		jen.Return(jen.True()),
	)

	f.Comment("TestNonFiniteInputs puts NaN, +Inf and -Inf into each input at several places")
	f.Comment("(the ends, a middle element, the second cell of a pooling window) and requires")
	f.Comment("an error naming the input and row, and bit-identical parameters and optimizer")
	f.Comment("state.")
	f.Func().Id("TestNonFiniteInputs").Params(t()).BlockFunc(func(b *jen.Group) {
		trained(b)
		snapshot(b)
		for _, x := range g.g.Inputs {
			cols := x.Shape.Elems() / x.Shape[0].Size
			places := make([]jen.Code, 0)
			for _, p := range poisonPlaces(x) {
				places = append(places, jen.Lit(p))
			}
			xf := jen.Id("m").Dot(g.field[x])
			b.For(jen.Id("_").Op(",").Id("v").Op(":=").Range().Index().Float64().Values(jen.Qual("math", "NaN").Call(), jen.Qual("math", "Inf").Call(jen.Lit(1)), jen.Qual("math", "Inf").Call(jen.Lit(-1)))).Block(
				jen.For(jen.Id("_").Op(",").Id("i").Op(":=").Range().Index().Int().Values(places...)).Block(
					jen.Id("saved").Op(":=").Add(xf).Index(jen.Id("i")),
					jen.Add(xf).Index(jen.Id("i")).Op("=").Add(T).Call(jen.Id("v")),
					jen.List(jen.Id("_"), jen.Err()).Op(":=").Id("m").Dot("TrainStep").Call(jen.Id("Batch"), jen.Id("opt")),
					jen.Add(xf).Index(jen.Id("i")).Op("=").Id("saved"),
					jen.If(jen.Id("want").Op(":=").Qual("fmt", "Sprintf").Call(jen.Lit(fmt.Sprintf("input %s row %%d, element %%d", x.Name)), jen.Id("i").Op("/").Lit(cols), jen.Id("i").Op("%").Lit(cols)),
						jen.Err().Op("==").Nil().Op("||").Op("!").Qual("strings", "Contains").Call(jen.Err().Dot("Error").Call(), jen.Id("want"))).Block(
						jen.Id("t").Dot("Errorf").Call(jen.Lit(x.Name+"[%d] = %v: got error %v, want one naming %s"), jen.Id("i"), jen.Id("v"), jen.Err(), jen.Id("want")),
					),
				),
			)
		}
		unchanged(b, "a step with a non-finite input")
	})

	f.Comment("TestCheckGrads checks the check before the optimizer: after a backward pass,")
	f.Comment("every gradient proved finite by its kernels' bounds is within them, and a NaN")
	f.Comment("in any gradient (with its bounds lost, as when an operand is not finite) is")
	f.Comment("reported by the parameter's name, before the optimizer runs.")
	f.Func().Id("TestCheckGrads").Params(t()).BlockFunc(func(b *jen.Group) {
		b.Id("m").Op(":=").Id("New").Call()
		b.Id("setup").Call(jen.Id("m"), jen.Lit(1))
		b.List(jen.Id("_"), jen.Err()).Op(":=").Id("m").Dot("Forward").Call(jen.Id("Batch"))
		b.Add(fatal)
		b.Id("m").Dot("backward").Call(jen.Id("Batch"), jen.False())
		b.If(jen.Err().Op(":=").Id("m").Dot("checkGrads").Call(), jen.Err().Op("!=").Nil()).Block(jen.Id("t").Dot("Fatal").Call(jen.Err()))
		for _, c := range g.p.Plan.GradChecks {
			if !c.Proved || len(c.Bounds) == 0 {
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
			// The bounds hold in exact arithmetic; adding the contributions
			// of several kernels in T rounds up by at most an ulp each.
			eps := 0x1p-23
			if g.float64 {
				eps = 0x1p-52
			}
			slack := jen.Lit(1 + float64(len(c.Bounds)+1)*eps)
			b.If(jen.List(jen.Id("got"), jen.Id("bound")).Op(":=").List(jen.Qual(rtPath, "MaxAbs").Call(jen.Id("m").Dot(g.grad[c.Sink])), sum), jen.Op("!").Parens(jen.Id("got").Op("<=").Id("bound").Op("*").Add(slack))).Block(
				jen.Id("t").Dot("Errorf").Call(jen.Lit("d"+c.Sink.Name+": largest magnitude %v above its bound %v"), jen.Id("got"), jen.Id("bound")),
			)
		}
		b.For(jen.Id("_").Op(",").Id("name").Op(":=").Range().Id("ParamNames")).BlockFunc(func(b *jen.Group) {
			b.Id("grad").Op(":=").Id("m").Dot("Grad").Call(jen.Id("name"))
			b.Id("saved").Op(":=").Id("grad").Index(jen.Len(jen.Id("grad")).Op("-").Lit(1))
			b.Id("grad").Index(jen.Len(jen.Id("grad")).Op("-").Lit(1)).Op("=").Add(T).Call(jen.Qual("math", "NaN").Call())
			if len(g.bounds) > 0 {
				b.Id("bounds").Op(":=").Id("m").Dot("gradBound")
				b.For(jen.Id("i").Op(":=").Range().Id("m").Dot("gradBound")).Block(jen.Id("m").Dot("gradBound").Index(jen.Id("i")).Op("=").Qual("math", "Inf").Call(jen.Lit(1)))
			}
			b.If(jen.Err().Op(":=").Id("m").Dot("checkGrads").Call(), jen.Err().Op("==").Nil().Op("||").Op("!").Qual("strings", "Contains").Call(jen.Err().Dot("Error").Call(), jen.Lit("gradient of ").Op("+").Id("name").Op("+").Lit(" is NaN"))).Block(
				jen.Id("t").Dot("Errorf").Call(jen.Lit("NaN in the gradient of %s: checkGrads returned %v"), jen.Id("name"), jen.Err()),
			)
			b.Id("grad").Index(jen.Len(jen.Id("grad")).Op("-").Lit(1)).Op("=").Id("saved")
			if len(g.bounds) > 0 {
				b.Id("m").Dot("gradBound").Op("=").Id("bounds")
			}
		})
	})

	f.Comment("TestAnomaly checks anomaly mode: it changes no result, and with parameters made")
	f.Comment("huge it either stops at the first kernel that overflows, with an error naming a")
	f.Comment("line of the description and the parameters and optimizer state as they were, or")
	f.Comment("(where saturating cells keep every value finite) takes a finite step.")
	f.Func().Id("TestAnomaly").Params(t()).BlockFunc(func(b *jen.Group) {
		b.List(jen.Id("plain"), jen.Id("checked")).Op(":=").List(jen.Id("New").Call(), jen.Id("New").Call())
		b.Id("setup").Call(jen.Id("plain"), jen.Lit(1))
		b.Id("setup").Call(jen.Id("checked"), jen.Lit(1))
		b.Id("checked").Dot("Anomaly").Op("=").True()
		b.List(jen.Id("opt1"), jen.Id("opt2")).Op(":=").List(jen.Qual(rtPath, "NewAdam").Index(T).Call(jen.Id("NumParams"), jen.Lit(1e-3)), jen.Qual(rtPath, "NewAdam").Index(T).Call(jen.Id("NumParams"), jen.Lit(1e-3)))
		b.For(jen.Range().Lit(2)).Block(
			jen.List(jen.Id("l1"), jen.Err()).Op(":=").Id("plain").Dot("TrainStep").Call(jen.Id("Batch"), jen.Id("opt1")),
			fatal,
			jen.List(jen.Id("l2"), jen.Err()).Op(":=").Id("checked").Dot("TrainStep").Call(jen.Id("Batch"), jen.Id("opt2")),
			fatal,
			jen.If(jen.Id("l1").Op("!=").Id("l2").Op("||").Op("!").Id("sameBits").Call(jen.Id("plain").Dot("Params"), jen.Id("checked").Dot("Params"))).Block(
				jen.Id("t").Dot("Fatalf").Call(jen.Lit("anomaly mode changed the step: loss %v vs %v"), jen.Id("l1"), jen.Id("l2")),
			),
		)
		b.List(jen.Id("m"), jen.Id("opt")).Op(":=").List(jen.Id("checked"), jen.Id("opt2"))
		b.For(jen.Id("i").Op(":=").Range().Id("m").Dot("Params")).Block(
			jen.Id("m").Dot("Params").Index(jen.Id("i")).Op("*=").Lit(1e37),
		)
		snapshot(b)
		b.List(jen.Id("_"), jen.Err()).Op(":=").Id("m").Dot("TrainStep").Call(jen.Id("Batch"), jen.Id("opt"))
		b.Switch().Block(
			jen.Case(jen.Err().Op("==").Nil()).Block(
				jen.If(jen.Id("i").Op(":=").Qual(rtPath, "FirstNonFinite").Call(jen.Id("m").Dot("Params")), jen.Id("i").Op(">=").Lit(0)).Block(
					jen.Id("t").Dot("Errorf").Call(jen.Lit("parameters ×1e37: the step succeeded and left parameter element %d %v"), jen.Id("i"), jen.Id("m").Dot("Params").Index(jen.Id("i"))),
				),
				jen.Id("t").Dot("Log").Call(jen.Lit("parameters ×1e37: every value stayed finite")),
			),
			jen.Case(jen.Op("!").Qual("strings", "Contains").Call(jen.Err().Dot("Error").Call(), jen.Lit("anomaly: ")).Op("||").Op("!").Qual("strings", "Contains").Call(jen.Err().Dot("Error").Call(), jen.Lit("("+g.src+":"))).Block(
				jen.Id("t").Dot("Errorf").Call(jen.Lit("parameters ×1e37: got error %v, want an anomaly naming a line of "+g.src), jen.Err()),
			),
			jen.Default().BlockFunc(func(b *jen.Group) {
				b.Id("t").Dot("Log").Call(jen.Err())
				unchanged(b, "a step stopped by anomaly mode")
			}),
		)
		b.Id("m").Dot("Params").Index(jen.Lit(0)).Op("=").Add(T).Call(jen.Qual("math", "NaN").Call())
		b.If(jen.List(jen.Id("_"), jen.Err()).Op(":=").Id("m").Dot("Forward").Call(jen.Id("Batch")), jen.Err().Op("==").Nil().Op("||").Op("!").Qual("strings", "Contains").Call(jen.Err().Dot("Error").Call(), jen.Lit("parameter element 0 is NaN"))).Block(
			jen.Id("t").Dot("Errorf").Call(jen.Lit("NaN parameter: got error %v"), jen.Err()),
		)
	})
}

// runningStatsTest writes, for a model with batch norms, a test that the
// running statistics after k training-mode passes equal those computed
// directly from each pass's batch (PyTorch's rule, unbiased variance).
func (g *gen) runningStatsTest(f *jen.File) {
	var stats []*ir.Node
	for _, n := range g.p.Forward {
		if n.Op == ir.BatchNormStats {
			stats = append(stats, n)
		}
	}
	if len(stats) == 0 {
		return
	}
	f.Comment("TestRunningStats runs Forward on three batches and requires each batch norm's")
	f.Comment("running statistics to equal their direct computation from the batch norms'")
	f.Comment("inputs: r ← (1-momentum)·r + momentum·(mean, unbiased variance).")
	f.Func().Id("TestRunningStats").Params(jen.Id("t").Op("*").Qual("testing", "T")).BlockFunc(func(b *jen.Group) {
		b.Id("m").Op(":=").Id("New").Call()
		b.Id("setup").Call(jen.Id("m"), jen.Lit(1))
		b.Id("rng").Op(":=").Qual(rtPath, "NewRNG").Call(jen.Lit(5))
		for i := range stats {
			b.List(jen.Id(fmt.Sprintf("mean%d", i)), jen.Id(fmt.Sprintf("variance%d", i))).Op(":=").List(
				jen.Id("toFloat64").Call(g.ref(stats[i].Args[1])), jen.Id("toFloat64").Call(g.ref(stats[i].Args[2])))
		}
		b.For(jen.Id("pass").Op(":=").Range().Lit(3)).BlockFunc(func(b *jen.Group) {
			for _, x := range g.g.Inputs {
				b.Id("fill").Call(jen.Id("m").Dot(g.field[x]), jen.Id("rng"))
			}
			b.Id("n").Op(":=").Id("Batch").Op("-").Id("pass").Op("%").Id("Batch")
			b.If(jen.Id("n").Op("<").Lit(2)).Block(jen.Id("n").Op("=").Id("Batch"))
			b.If(jen.List(jen.Id("_"), jen.Err()).Op(":=").Id("m").Dot("Forward").Call(jen.Id("n")), jen.Err().Op("!=").Nil()).Block(jen.Id("t").Dot("Fatal").Call(jen.Err()))
			for i, st := range stats {
				x := st.Args[0].Args[0]
				C := x.Shape[len(x.Shape)-1].Size
				b.Id("updateStats").Call(jen.Id(fmt.Sprintf("mean%d", i)), jen.Id(fmt.Sprintf("variance%d", i)), g.in(x), jen.Lit(C), jen.Lit(st.Attrs.Momentum))
			}
		})
		for i, st := range stats {
			for k, want := range []string{"mean", "variance"} {
				b.If(jen.Id("e").Op(":=").Id("maxRelDiff64").Call(jen.Id("toFloat64").Call(g.ref(st.Args[1+k])), jen.Id(fmt.Sprintf("%s%d", want, i))), jen.Id("e").Op(">").Lit(1e-6)).Block(
					jen.Id("t").Dot("Errorf").Call(jen.Lit(st.Args[1+k].Name+": %.1e from the direct computation"), jen.Id("e")),
				)
			}
		}
	})
	T := g.elem()
	f.Comment("toFloat64 copies x into float64.")
	f.Func().Id("toFloat64").Params(jen.Id("x").Index().Add(T)).Index().Float64().Block(
		jen.Id("out").Op(":=").Make(jen.Index().Float64(), jen.Len(jen.Id("x"))),
		jen.For(jen.Id("i").Op(",").Id("v").Op(":=").Range().Id("x")).Block(jen.Id("out").Index(jen.Id("i")).Op("=").Float64().Call(jen.Id("v"))),
		jen.Return(jen.Id("out")),
	)
	f.Comment("updateStats moves running statistics toward those of x (rows, C) by momentum.")
	f.Func().Id("updateStats").Params(jen.List(jen.Id("mean"), jen.Id("variance")).Index().Float64(), jen.Id("x").Index().Add(T), jen.Id("C").Int(), jen.Id("momentum").Float64()).Block(
		jen.Id("rows").Op(":=").Len(jen.Id("x")).Op("/").Id("C"),
		jen.For(jen.Id("c").Op(":=").Range().Id("C")).Block(
			jen.Var().List(jen.Id("s"), jen.Id("q")).Float64(),
			jen.For(jen.Id("r").Op(":=").Range().Id("rows")).Block(jen.Id("s").Op("+=").Float64().Call(jen.Id("x").Index(jen.Id("r").Op("*").Id("C").Op("+").Id("c")))),
			jen.Id("mu").Op(":=").Id("s").Op("/").Float64().Call(jen.Id("rows")),
			jen.For(jen.Id("r").Op(":=").Range().Id("rows")).Block(
				jen.Id("d").Op(":=").Float64().Call(jen.Id("x").Index(jen.Id("r").Op("*").Id("C").Op("+").Id("c"))).Op("-").Id("mu"),
				jen.Id("q").Op("+=").Id("d").Op("*").Id("d"),
			),
			jen.Id("mean").Index(jen.Id("c")).Op("=").Parens(jen.Lit(1).Op("-").Id("momentum")).Op("*").Id("mean").Index(jen.Id("c")).Op("+").Id("momentum").Op("*").Id("mu"),
			jen.Id("variance").Index(jen.Id("c")).Op("=").Parens(jen.Lit(1).Op("-").Id("momentum")).Op("*").Id("variance").Index(jen.Id("c")).Op("+").Id("momentum").Op("*").Id("q").Op("/").Float64().Call(jen.Id("rows").Op("-").Lit(1)),
		),
	)
	f.Comment("maxRelDiff64 is max|a-b| / max|b|.")
	f.Func().Id("maxRelDiff64").Params(jen.List(jen.Id("a"), jen.Id("b")).Index().Float64()).Float64().Block(
		jen.Var().List(jen.Id("d"), jen.Id("s")).Float64(),
		jen.For(jen.Id("i").Op(":=").Range().Id("b")).Block(
			jen.Id("d").Op("=").Max(jen.Id("d"), jen.Qual("math", "Abs").Call(jen.Id("a").Index(jen.Id("i")).Op("-").Id("b").Index(jen.Id("i")))),
			jen.Id("s").Op("=").Max(jen.Id("s"), jen.Qual("math", "Abs").Call(jen.Id("b").Index(jen.Id("i")))),
		),
		jen.Return(jen.Id("d").Op("/").Max(jen.Id("s"), jen.Lit(1e-300))),
	)
}

// wrapText breaks text into lines of at most width bytes at spaces.
func wrapText(text string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(text) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	return append(lines, line)
}
