// Package emit writes a derive.Program as a Go package with
// github.com/dave/jennifer: one file with the model (forward and backward
// functions per description statement, parameters and gradients in one
// contiguous slice each, every intermediate in one arena) and one file with
// its tests. Output is deterministic byte for byte: everything is walked in
// slice order, never in map order.
package emit

import (
	"bytes"
	"cmp"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dave/jennifer/jen"

	"github.com/backpropgen/backpropgen/derive"
	"github.com/backpropgen/backpropgen/ir"
	"github.com/backpropgen/backpropgen/runtime/spec"
)

const rtPath = "github.com/backpropgen/backpropgen/runtime"

// Options control the generated package.
type Options struct {
	Package string // Go package name; default: the model name, lower-cased
	Float64 bool   // float64 instead of float32 elements
	Command string // how the file was generated, for the header (e.g. "backpropgen mlp.bpg")
}

// gen holds what both files need: the program, names and element type.
type gen struct {
	p        *derive.Program
	g        *ir.Graph
	opt      Options
	float64  bool
	typeName string // Model, or model64 in the test file's float64 variant
	ctor     string // New, or newModel64
	variant  bool   // the float64 variant inside the test file: no package-level declarations
	field    map[*ir.Node]string
	grad     map[*ir.Node]string    // sink → gradient view field
	scratch  map[*ir.Node]string    // work buffer views (im2col)
	aux      map[*ir.Node]string    // int32 records (argmax) views
	saved    map[*ir.Node]string    // floats saved for the backward pass (rnn gates)
	state    map[*ir.Node][2]string // rnn final state views (h, c)
	geoms    []geomVar              // window geometries, in first-use order
	bounds   map[*ir.Node]int       // kernels whose bounds prove gradients finite → gradBound index
	inputAbs map[*ir.Node]string    // input → field with its largest magnitude this step (check)
	users    map[*ir.Node][]*ir.Node
	src      string              // description file base name, for provenance
	groups   []group             // forward statements
	bgroups  []group             // backward statements
	igroups  []group             // inference statements: a forward one, or one of its own (inferX) where the modes differ
	egroups  []group             // Evaluate's statements: Infer's, and those to the loss
	dgroups  []group             // a Decoder's statements, one position at a time (derive's Decode)
	caches   map[*ir.Node]string // Decoder fields: the caches of the StepCached ops
}

// group is the run of nodes that implements one description statement.
type group struct {
	fn    string
	stmt  ir.Statement
	nodes []*ir.Node
	infer bool // an inference statement with nodes of its own (inferX)
}

// modelNames are the fields and methods every generated model may have
// whatever its description: a tensor of the description named like one
// (a line called check, a parameter called init, whose field is Init) gets
// a suffixed name instead.
var modelNames = []string{
	// Fields.
	"Params", "Grads", "State", "Loss", "Anomaly", "arena", "saved", "aux", "gradBound", "seed", "step",
	// Methods.
	"Backward", "CarryState", "Counters", "Evaluate", "FinalState", "Forward", "Grad", "Gradients", "IO",
	"Infer", "Init", "LoadCheckpoint", "NewDecoder", "NewReplica", "Output", "Param", "Predict",
	"SaveCheckpoint", "SetCounters", "Tensors", "TrainStep", "ZeroGrad",
	"anomaly", "backward", "backwardChecked", "check", "checkGrads", "forwardChecked", "gradError", "nonFinite",
	// Package-level names a field is not, but a reader would confuse.
	"Batch",
}

func newGen(p *derive.Program, opt Options, float64, variant bool) *gen {
	g := &gen{p: p, g: p.Graph, opt: opt, float64: float64, variant: variant,
		typeName: "Model", ctor: "New", field: map[*ir.Node]string{}, grad: map[*ir.Node]string{},
		scratch: map[*ir.Node]string{}, aux: map[*ir.Node]string{}, saved: map[*ir.Node]string{}, state: map[*ir.Node][2]string{},
		src: filepath.Base(p.Graph.File)}
	if variant {
		g.typeName, g.ctor = "model64", "newModel64"
	}
	names := newNamer(modelNames...)
	for _, n := range g.g.Params {
		g.field[n] = names.get(goIdent(n.Name, true))
	}
	for _, n := range g.g.Params {
		g.grad[n] = names.get("D" + goIdent(n.Name, true))
	}
	for _, n := range g.g.States {
		g.field[n] = names.get(goIdent(n.Name, true))
	}
	for _, n := range append(append([]*ir.Node{}, g.g.Inputs...), g.g.Labels...) {
		g.field[n] = names.get(goIdent(n.Name, true))
	}
	for _, n := range p.Sinks[len(g.g.Params):] {
		g.grad[n] = names.get("D" + goIdent(n.Name, true))
	}
	g.inputAbs = map[*ir.Node]string{}
	for _, n := range g.g.Inputs {
		g.inputAbs[n] = names.get(goIdent(n.Name, false) + "Abs")
	}
	for _, n := range g.order() {
		s := p.Plan.Slot(n)
		if s.Kind == derive.Arena && n.Op != ir.AccGrad {
			g.field[n] = names.get(goIdent(label(n), false))
		}
		if s.ScratchSize > 0 {
			g.scratch[n] = names.get(goIdent(label(n), false) + cmp.Or(n.Op.ScratchName, "Work"))
		}
		if s.AuxSize > 0 {
			g.aux[n] = names.get(goIdent(label(n), false) + "Argmax")
		}
		if s.SavedSize > 0 {
			g.saved[n] = names.get(goIdent(label(n), false) + "Saved")
		}
		if n.Op == ir.RNN {
			g.state[n] = [2]string{names.get("final" + goIdent(label(n), true) + "H"), names.get("final" + goIdent(label(n), true) + "C")}
		}
	}
	g.collectGeoms()
	g.bounds = g.boundIndex()
	g.users = p.Users()
	g.groups = g.group(p.Forward, "forward")
	g.bgroups = g.group(p.Backward, "backward")
	g.igroups = g.inferGroups()
	g.egroups = g.evalGroups()
	g.decodeNodes()
	return g
}

// order is every op of both modes, in the memory plan's order.
func (g *gen) order() []*ir.Node { return g.p.Order() }

// group splits nodes into runs by the statement they implement.
func (g *gen) group(nodes []*ir.Node, prefix string) []group {
	stmts := map[int]ir.Statement{}
	for _, s := range g.g.Statements {
		stmts[s.Pos.Line] = s
	}
	for _, n := range append(append([]*ir.Node{}, g.g.Params...), g.g.Inputs...) {
		if _, ok := stmts[n.Pos.Line]; !ok {
			stmts[n.Pos.Line] = ir.Statement{Name: n.Name, Pos: n.Pos} // a declaration
		}
	}
	names := newNamer()
	var out []group
	for _, n := range nodes {
		if s := g.p.Plan.Slot(n); s.Kind == derive.Folded || n.Op.Alias || s.Kind == derive.Literal || g.p.Plan.Fused(n) {
			// no code of its own; keep it out so empty groups vanish
			if len(out) > 0 && out[len(out)-1].stmt.Pos.Line == n.Pos.Line {
				continue
			}
			continue
		}
		if len(out) == 0 || out[len(out)-1].stmt.Pos.Line != n.Pos.Line {
			st := stmts[n.Pos.Line]
			out = append(out, group{fn: names.get(prefix + goIdent(st.Name, true)), stmt: st})
		}
		out[len(out)-1].nodes = append(out[len(out)-1].nodes, n)
	}
	return out
}

// inferGroups returns the statements of the inference program: each the
// forward group of its line when inference runs the same nodes there, else
// a group of its own.
func (g *gen) inferGroups() []group { return g.modeGroups(g.p.Infer, "infer", g.groups) }

// evalGroups returns the statements of Evaluate, as inferGroups does,
// sharing Infer's where they are the same.
func (g *gen) evalGroups() []group {
	return g.modeGroups(g.p.Eval, "eval", append(append([]group{}, g.groups...), g.igroups...))
}

// modeGroups groups nodes by statement, each the first of have with the same
// nodes, else a new function named with prefix.
func (g *gen) modeGroups(nodes []*ir.Node, prefix string, have []group) []group {
	var out []group
	for _, gr := range g.group(nodes, prefix) {
		i := slices.IndexFunc(have, func(h group) bool { return h.stmt.Pos.Line == gr.stmt.Pos.Line && slices.Equal(h.nodes, gr.nodes) })
		if i >= 0 {
			gr = have[i]
		} else {
			gr.infer = true
		}
		out = append(out, gr)
	}
	return out
}

// random reports whether the model draws random numbers (dropout masks;
// OpDef.Random): it then keeps a seed and a step count.
func (g *gen) random() bool {
	for _, n := range g.p.Forward {
		if n.Op.Random {
			return true
		}
	}
	return false
}

// elem is the element type.
func (g *gen) elem() *jen.Statement {
	if g.float64 {
		return jen.Float64()
	}
	return jen.Float32()
}

func rt(name string) *jen.Statement { return jen.Qual(rtPath, name) }

// count is the run-time element count of shape: static sizes multiplied,
// with n for the batch dimension.
func count(s ir.Shape) *jen.Statement {
	c, batches := 1, 0
	for _, d := range s {
		if d.Batch {
			batches++
		} else {
			c *= d.Size
		}
	}
	return product(c, batches)
}

func product(c, batches int) *jen.Statement {
	if batches == 0 {
		return jen.Lit(c)
	}
	var e *jen.Statement
	for range batches {
		if e == nil {
			e = jen.Id("n")
		} else {
			e = e.Op("*").Id("n")
		}
	}
	if c != 1 {
		e = e.Op("*").Lit(c)
	}
	return e
}

func dim(d ir.Dim) *jen.Statement {
	if d.Batch {
		return jen.Id("n")
	}
	return jen.Lit(d.Size)
}

// ref is the Go expression for n's storage.
func (g *gen) ref(n *ir.Node) *jen.Statement {
	if r := g.perPosition(n); r != nil {
		return r
	}
	s := g.p.Plan.Slot(n)
	switch s.Kind {
	case derive.View:
		if s.Offset == 0 && s.Size == s.Root.Shape.Elems() {
			return g.ref(s.Root)
		}
		return g.ref(s.Root).Index(jen.Lit(s.Offset).Op(":").Lit(s.Offset + s.Size))
	case derive.IntoGrad:
		return jen.Id("m").Dot(g.grad[s.Sink])
	}
	return jen.Id("m").Dot(g.field[n])
}

// in is n's storage for reading, sliced to its run-time size when batched.
func (g *gen) in(n *ir.Node) *jen.Statement {
	if n.Shape.HasBatch() {
		return g.ref(n).Index(jen.Empty(), count(n.Shape))
	}
	return g.ref(n)
}

// out is n's storage for writing, sliced to its run-time size.
func (g *gen) out(n *ir.Node) *jen.Statement {
	if n.Shape.HasBatch() || g.p.Plan.Slot(n).Kind == derive.Arena {
		return g.ref(n).Index(jen.Empty(), count(n.Shape))
	}
	return g.ref(n)
}

// lit is an untyped float constant; the kernel's type parameter types it.
func (g *gen) lit(v float64) *jen.Statement { return jen.Lit(v) }

// scalar reads a one-element value: a literal constant or element 0.
func (g *gen) scalar(n *ir.Node) *jen.Statement {
	if n.Op == ir.Const {
		return g.lit(n.Attrs.Value)
	}
	return g.ref(n).Index(jen.Lit(0))
}

// provenance is the statement's place, as printed after each comment.
func (g *gen) provenance(n *ir.Node) string {
	return fmt.Sprintf("(%s:%d)", g.src, n.Pos.Line)
}

// Generate returns the model file.
func Generate(p *derive.Program, opt Options) ([]byte, error) {
	g := newGen(p, opt, opt.Float64, false)
	f := jen.NewFile(g.pkg())
	g.header(f)
	g.file(f)
	return render(f)
}

func (g *gen) pkg() string {
	if g.opt.Package != "" {
		return g.opt.Package
	}
	return strings.ToLower(g.g.Model)
}

func (g *gen) header(f *jen.File) {
	cmd := g.opt.Command
	if cmd == "" {
		cmd = "backpropgen " + g.src
	}
	f.HeaderComment(fmt.Sprintf("Code generated by backpropgen %s from %s; DO NOT EDIT.", spec.Version, g.src))
	f.HeaderComment(fmt.Sprintf("To change it, edit %s and run go generate (%s).", g.src, cmd))
	f.ImportName(rtPath, "runtime")
}

func render(f *jen.File) ([]byte, error) {
	var buf bytes.Buffer
	if err := f.Render(&buf); err != nil {
		// jennifer's error carries the whole unformatted source: keep its
		// first line, the parse error, which is what a bug report needs.
		msg, _, _ := strings.Cut(err.Error(), "\n")
		return nil, fmt.Errorf("internal error: the generated code does not parse (%s); please report it with the description", msg)
	}
	return buf.Bytes(), nil
}
