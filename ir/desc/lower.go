package desc

import (
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/backpropgen/backpropgen/ir"
	"github.com/backpropgen/backpropgen/runtime/spec"
)

// Ext is the file extension of model descriptions.
const Ext = ".bpg"

// MaxBatch bounds the batch line; larger batches are better split anyway.
const MaxBatch = 1 << 16

var keywords = []string{"model", "batch", "input", "label", "param", "output"}

// maxErrors is how many errors Parse reports before it stops.
const maxErrors = 10

// bom is the UTF-8 byte-order mark some editors write at the start of a file.
const bom = "\ufeff"

// Parse reads the description src (named file in errors) and lowers it to a
// verified forward graph. The error, if any, is an ErrorList with one entry
// per fault: a line that fails is reported once, and later uses of the name
// it would have defined are not reported again.
func Parse(file string, src []byte) (*ir.Graph, error) {
	l := &lowerer{
		file:    file,
		g:       &ir.Graph{File: file},
		b:       &ir.Builder{},
		names:   map[string]*ir.Node{},
		defined: map[string]ir.Pos{},
		failed:  map[string]bool{},
	}
	text := strings.TrimPrefix(string(src), bom) // as the Go compiler does
	if i := strings.IndexByte(text, 0); i >= 0 {
		line := strings.Count(text[:i], "\n") + 1
		col := i - strings.LastIndexByte(text[:i], '\n')
		return nil, ErrorList{errorf(ir.Pos{File: file, Line: line, Col: col}, "the file holds a NUL byte: it is not a text description; check that you passed the right file")}
	}
	lines := strings.Split(text, "\n")
	statements := 0 // lines that hold a statement, good or bad
	good := 0       // of which had no error
	for i, line := range lines {
		if len(l.errs) >= maxErrors {
			l.errs = append(l.errs, errorf(ir.Pos{File: file, Line: i + 1, Col: 1}, "too many errors; fix the ones above and run again"))
			return nil, l.errs
		}
		toks, err := lexLine(file, i+1, line)
		if err == nil && len(toks) == 1 {
			continue // blank or comment
		}
		statements++
		if err == nil {
			err = l.statement(&parser{toks: toks}, line)
		}
		if err == nil {
			good++
		}
		if err != nil {
			if err != errReported {
				l.errs = append(l.errs, err)
			}
			l.lineFailed(toks)
		}
	}
	top := ir.Pos{File: file, Line: 1, Col: 1}
	switch {
	case statements == 0:
		return nil, ErrorList{errorf(top, "the description is empty: write a model line, a batch line, the inputs, the layers and a loss (the README's tutorial shows one)")}
	case good == 0 && len(l.errs) > 1:
		// Not one line of the file is a statement: another kind of file
		// (Go, Python, JSON...), which is one fault, not one per line.
		e := *l.errs[0]
		e.Msg += "; no line of this file is a valid statement: is it a model description?"
		return nil, ErrorList{&e}
	case good == 0 && len(l.errs) == 1:
		return nil, l.errs // what the file lacks follows from its only line failing
	}
	l.finish(len(lines))
	if len(l.errs) == 0 {
		l.unused()
	}
	if len(l.errs) > 0 {
		sort.SliceStable(l.errs, func(i, j int) bool {
			a, b := l.errs[i].Pos, l.errs[j].Pos
			return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col
		})
		return nil, l.errs
	}
	l.g.Nodes = l.b.Nodes
	l.g.Prune()
	if err := l.g.Verify(); err != nil {
		return nil, ErrorList{{ir.Pos{File: file}, "internal error, please report: " + err.Error()}}
	}
	return l.g, nil
}

// errReported stands for an error already reported on an earlier line: a
// use of a name whose own line failed, which would only repeat it.
var errReported = &Error{}

type lowerer struct {
	failed   map[string]bool // names whose defining line had an error
	file     string
	g        *ir.Graph
	b        *ir.Builder
	names    map[string]*ir.Node
	defined  map[string]ir.Pos
	errs     ErrorList
	output   *token
	lossPred *ir.Node // the prediction argument of the loss function
	stmt     string   // name being assigned
	stmtPos  ir.Pos
	dropouts int // dropout layers so far: the next one's key

	// Lines that failed, or were reported once for all: finish and later
	// declarations do not report their consequences again.
	modelFailed, batchFailed, outputFailed bool
}

// lineFailed records what a line that failed (in the lexer, the parser, a
// declaration or lowering) would have defined, from the tokens read before
// the error, so that its consequences are not reported as faults of their
// own: later uses of its name, inputs below a bad batch line, a missing
// model or loss line.
func (l *lowerer) lineFailed(toks []token) {
	if len(toks) == 0 || toks[0].kind != tIdent {
		return
	}
	first := toks[0].text
	fail := func(name string) {
		if _, ok := l.names[name]; !ok {
			l.failed[name] = true
		}
	}
	second := func(kind tokKind, text string) bool {
		return len(toks) > 1 && toks[1].kind == kind && (text == "" || toks[1].text == text)
	}
	switch {
	case second(tPunct, "="):
		fail(first)
	case first == "model":
		l.modelFailed = true
	case first == "batch":
		l.batchFailed = true
		if l.g.Batch == 0 {
			l.g.Batch = 1 // a stand-in, so the lines below still check their shapes
		}
	case first == "output":
		l.outputFailed = true
	case first == "input" || first == "label" || first == "param":
		if second(tIdent, "") {
			fail(toks[1].text)
		}
	case !slices.Contains(keywords, first):
		fail(first) // "h1 dense(x)": an unknown statement that meant to define h1
	}
}

// isFailed reports whether name, or the layer that would have created it
// (h1 for h1.W), was defined on a line that failed.
func (l *lowerer) isFailed(name string) bool {
	if l.failed[name] {
		return true
	}
	layer, _, dotted := strings.Cut(name, ".")
	return dotted && l.failed[layer]
}

func errorf(pos ir.Pos, format string, args ...any) *Error {
	return &Error{pos, fmt.Sprintf(format, args...)}
}

func (l *lowerer) statement(p *parser, line string) *Error {
	first := p.next()
	if first.kind != tIdent {
		return errorf(first.pos, "a statement starts with a keyword (%s) or a name to assign, found %v", strings.Join(keywords, ", "), first)
	}
	if p.is("=") {
		return l.assign(p, first, line)
	}
	switch first.text {
	case "model":
		t, err := p.ident("the model's name after model")
		if err != nil {
			return err
		}
		if l.g.Model != "" {
			return errorf(first.pos, "model is already named %q; keep one model line", l.g.Model)
		}
		if err := checkModelName(t.text); err != nil {
			return errorf(t.pos, "%v", err)
		}
		l.g.Model = t.text
		return p.end()
	case "batch":
		t := p.next()
		if t.kind == tPunct && t.text == "-" && p.peek().kind == tNumber {
			n := p.next()
			t = token{kind: tNumber, text: "-" + n.text, pos: t.pos, num: -n.num}
		}
		if t.kind != tNumber || t.num != math.Trunc(t.num) || t.num < 1 || t.num > MaxBatch {
			return errorf(t.pos, "batch needs a whole number from 1 to %d (the maximum rows per step), found %v", MaxBatch, t)
		}
		if l.g.Batch != 0 && !l.batchFailed {
			return errorf(first.pos, "batch is already set to %d; keep one batch line", l.g.Batch)
		}
		l.g.Batch = int(t.num)
		return p.end()
	case "input", "label", "param":
		return l.declare(p, first)
	case "output":
		t, err := p.ident("the name of the prediction after output")
		if err != nil {
			return err
		}
		if l.output != nil {
			return errorf(first.pos, "output is already given at line %d; keep one output line", l.output.pos.Line)
		}
		l.output = &t
		return p.end()
	}
	return errorf(first.pos, "unknown statement %q: a line is `name = expression` or starts with one of %s", first.text, strings.Join(keywords, ", "))
}

func (l *lowerer) claim(t token) *Error {
	if slices.Contains(keywords, t.text) {
		return errorf(t.pos, "%q is a keyword; pick another name", t.text)
	}
	if _, isFn := functions[t.text]; isFn {
		return errorf(t.pos, "%q is a function name; pick another name", t.text)
	}
	if at, dup := l.defined[t.text]; dup {
		return errorf(t.pos, "%s is already defined at line %d; pick another name", t.text, at.Line)
	}
	if strings.Contains(t.text, ".") {
		return errorf(t.pos, "declared names cannot contain dots (%s): dots name the parameters a layer creates, like h1.W", t.text)
	}
	l.defined[t.text] = t.pos
	return nil
}

// declare handles input, label and param lines.
func (l *lowerer) declare(p *parser, kw token) *Error {
	name, err := p.ident("a name after " + kw.text)
	if err != nil {
		return err
	}
	if _, err := p.expect(":", fmt.Sprintf("after the name (as in %s %s: %s)", kw.text, name.text, map[bool]string{true: "class(10)", false: "[784]"}[kw.text == "label"])); err != nil {
		return err
	}
	if kw.text != "param" && l.g.Batch == 0 {
		// Reported once: the declarations below it are fine once the batch
		// line moves up, so they go on with a stand-in batch size.
		l.batchFailed, l.g.Batch = true, 1
		l.errs = append(l.errs, errorf(kw.pos, "%s before batch: put `batch N` (the maximum rows per step) above the inputs", kw.text))
	}
	l.b.Pos = kw.pos
	var n *ir.Node
	switch kw.text {
	case "label":
		// label y: class(C), or label y: [T] class(C) for one label per step.
		var steps []int
		if p.is("[") {
			var err *Error
			if steps, err = l.shapeList(p); err != nil {
				return err
			}
		}
		c, err := p.ident("class(C) after label NAME:")
		if err != nil {
			return err
		}
		if c.text != "class" {
			return errorf(c.pos, "labels are declared as class(C), with C the number of classes")
		}
		classes, err := l.count(p, "class", "C", "a whole number of classes", "class count")
		if err != nil {
			return err
		}
		if err := l.claim(name); err != nil {
			return err
		}
		n = l.b.Leaf(ir.Label, name.text, append(ir.Shape{{Size: l.g.Batch, Batch: true}}, ir.Fixed(steps...)...), ir.Attrs{Classes: classes})
		if err := l.check(name.pos, "label"); err != nil {
			delete(l.defined, name.text)
			return err
		}
		l.g.Labels = append(l.g.Labels, n)
	case "input", "param":
		dims, err := l.shapeList(p)
		if err != nil {
			return err
		}
		shape := ir.Fixed(dims...)
		attrs := ir.Attrs{}
		if kw.text == "input" {
			shape = append(ir.Shape{{Size: l.g.Batch, Batch: true}}, shape...)
			if t := p.peek(); t.kind == tIdent && t.text == "tokens" {
				// input t: [T] tokens(V): one int32 token id per position,
				// checked against the vocabulary at run time like labels.
				p.next()
				vocab, err := l.count(p, "tokens", "V", "a vocabulary size", "vocabulary size")
				if err != nil {
					return err
				}
				if err := l.claim(name); err != nil {
					return err
				}
				n = l.b.Leaf(ir.Label, name.text, shape, ir.Attrs{Classes: vocab, Tokens: true})
				if err := l.check(name.pos, "token input"); err != nil {
					delete(l.defined, name.text)
					return err
				}
				l.g.Labels = append(l.g.Labels, n)
				break
			}
			if t := p.peek(); t.kind == tIdent {
				return errorf(t.pos, "unexpected name %q after the shape; an input is floats, or token ids written [T] tokens(VOCAB)", t.text)
			}
		} else {
			attrs.Init = spec.GlorotUniform
			if len(dims) == 1 {
				attrs.Init = spec.Zeros
			}
			if t := p.peek(); t.kind == tIdent && t.text != "init" {
				return errorf(t.pos, "unexpected name %q after the shape; to choose an initializer, write init %s", t.text, t.text)
			}
			if p.peek().kind == tIdent && p.peek().text == "init" {
				p.next()
				t, err := p.ident("an initializer name after init (" + strings.Join(spec.InitNames(), ", ") + ")")
				if err != nil {
					return err
				}
				init, perr := spec.ParseInit(t.text)
				if perr != nil {
					return errorf(t.pos, "%v", perr)
				}
				attrs.Init = init
			}
		}
		if len(shape) > 4 {
			return errorf(name.pos, "%s has rank %d; ranks above 4 are not supported", name.text, len(shape))
		}
		if err := l.claim(name); err != nil {
			return err
		}
		leaf := ir.Input
		if kw.text == "param" {
			leaf = ir.Param
		}
		n = l.b.Leaf(leaf, name.text, shape, attrs)
		if err := l.check(name.pos, kw.text); err != nil {
			delete(l.defined, name.text)
			return err
		}
		if kw.text == "input" {
			l.g.Inputs = append(l.g.Inputs, n)
		} else {
			l.g.Params = append(l.g.Params, n)
		}
	}
	l.names[name.text] = n
	return p.end()
}

// count reads the (C) after class, or the (V) after tokens: a whole number
// from 2 to 2^24. need and noun name it in messages ("a vocabulary size",
// "vocabulary size").
func (l *lowerer) count(p *parser, kw, letter, need, noun string) (int, *Error) {
	if _, err := p.expect("(", fmt.Sprintf("after %s (as in %s(10))", kw, kw)); err != nil {
		return 0, err
	}
	t := p.next()
	if t.kind != tNumber || t.num != math.Trunc(t.num) || t.num < 2 || t.num > 1<<24 {
		return 0, errorf(t.pos, "%s(%s) needs %s from 2 to %d, found %v", kw, letter, need, 1<<24, t)
	}
	if _, err := p.expect(")", "after the "+noun); err != nil {
		return 0, err
	}
	return int(t.num), nil
}

// shapeList reads [d1, d2, ...] of positive static sizes.
func (l *lowerer) shapeList(p *parser) ([]int, *Error) {
	open, err := p.expect("[", "to start the shape, as in [784]")
	if err != nil {
		return nil, err
	}
	var dims []int
	for !p.is("]") {
		if p.peek().kind == tEOL {
			return nil, errorf(p.peek().pos, "missing \"]\" to close the shape opened at column %d", open.pos.Col)
		}
		if len(dims) > 0 {
			if _, err := p.expect(",", "between dimensions"); err != nil {
				return nil, err
			}
		}
		t := p.next()
		if t.kind == tEOL {
			return nil, errorf(t.pos, "missing \"]\" to close the shape opened at column %d", open.pos.Col)
		}
		if t.kind == tPunct && t.text == "-" && p.peek().kind == tNumber {
			n := p.next()
			t = token{kind: tNumber, text: "-" + n.text, pos: t.pos, num: -n.num}
		}
		v, err := wholeNumber(&numLit{pos: t.pos, val: t.num, txt: t.text}, "a dimension", 1)
		if t.kind != tNumber {
			err = errorf(t.pos, "a dimension must be a whole number, found %v", t)
		}
		if err != nil {
			return nil, err
		}
		dims = append(dims, v)
	}
	p.next()
	if len(dims) == 0 {
		return nil, errorf(open.pos, "empty shape: list at least one dimension")
	}
	return dims, nil
}

func (l *lowerer) assign(p *parser, name token, line string) *Error {
	p.next() // "="
	if p.is("=") {
		return errorf(name.pos, "== is not an operator: write %s = expression to define %s", name.text, name.text)
	}
	rhsCol := p.peek().pos.Col
	if p.peek().kind == tEOL {
		return errorf(p.peek().pos, "missing expression after %s =", name.text)
	}
	e, err := p.expr()
	if err != nil {
		return err
	}
	if err := p.end(); err != nil {
		return err
	}
	if err := l.claim(name); err != nil {
		return err
	}
	start := len(l.b.Nodes)
	l.stmt, l.stmtPos = name.text, name.pos
	l.b.Pos = name.pos
	n, err := l.lower(e)
	if err == nil && name.text == "loss" && (!n.Shape.IsScalar() || len(n.Shape) != 0) {
		err = errorf(name.pos, "loss must be a scalar, but this expression has shape %v; reduce it with mean(...) or sum(...)", n.Shape)
	}
	if err != nil {
		delete(l.defined, name.text)
		l.failed[name.text] = true
		return err
	}
	// Name what this statement created: its result after the statement,
	// helpers after the op that made them.
	counts := map[string]int{}
	for _, m := range l.b.Nodes[start:] {
		if m.Name != "" || m == n {
			continue
		}
		op := m.Op.Name
		counts[op]++
		m.Name = fmt.Sprintf("%s.%s", name.text, op)
		if counts[op] > 1 {
			m.Name += fmt.Sprint(counts[op])
		}
	}
	if n.Name == "" || slices.Contains(l.b.Nodes[start:], n) && n.Op != ir.Param {
		n.Name = name.text
	}
	l.names[name.text] = n
	text := strings.TrimSpace(line[min(rhsCol-1, len(line)):])
	if i := strings.IndexByte(text, '#'); i >= 0 {
		text = strings.TrimSpace(text[:i])
	}
	l.g.Statements = append(l.g.Statements, ir.Statement{Name: name.text, Pos: name.pos, Text: text})
	if name.text == "loss" {
		l.g.Loss = n
	}
	return nil
}

// check turns a builder error into a positioned error.
func (l *lowerer) check(pos ir.Pos, what string) *Error {
	if l.b.Err == nil {
		return nil
	}
	err := l.b.Err
	l.b.Err = nil
	return errorf(pos, "%s: %v", what, err)
}

func (l *lowerer) lower(e expr) (*ir.Node, *Error) {
	switch e := e.(type) {
	case *numLit:
		return l.b.Const(e.val), nil
	case *nameRef:
		n, ok := l.names[e.name]
		if !ok {
			if l.isFailed(e.name) {
				return nil, errReported
			}
			return nil, l.unknown(e.pos, e.name)
		}
		return n, nil
	case *unaryExpr:
		x, err := l.lower(e.x)
		if err != nil {
			return nil, err
		}
		return l.b.Neg(x), l.check(e.pos, "in -x")
	case *binExpr:
		x, err := l.lower(e.x)
		if err != nil {
			return nil, err
		}
		y, err := l.lower(e.y)
		if err != nil {
			return nil, err
		}
		if x.DType == ir.Int || y.DType == ir.Int {
			return nil, errorf(e.pos, "class labels cannot take part in arithmetic; use them only in softmax_cross_entropy")
		}
		var n *ir.Node
		switch e.op {
		case "+":
			n = l.b.Add(x, y)
		case "-":
			n = l.b.Sub(x, y)
		case "*":
			n = l.b.Mul(x, y)
		case "/":
			n = l.b.Div(x, y)
		case "@":
			n = l.b.Product(x, y)
		}
		if err := l.check(e.pos, fmt.Sprintf("shape mismatch in %s %s %s", x.Shape, e.op, y.Shape)); err != nil {
			return nil, err
		}
		return n, nil
	case *callExpr:
		fn, ok := functions[e.fn]
		if !ok {
			if _, isName := l.names[e.fn]; isName {
				return nil, errorf(e.pos, "%s is a tensor, not a function; write %s * (...) to multiply", e.fn, e.fn)
			}
			return nil, errorf(e.pos, "unknown function %s; the functions are %s", e.fn, strings.Join(functionNames(), ", "))
		}
		if len(e.args) < fn.minArgs || len(e.args) > fn.maxArgs {
			return nil, errorf(e.pos, "%s takes %s, got %d: %s", e.fn, argCount(fn.minArgs, fn.maxArgs), len(e.args), fn.usage)
		}
		for _, kw := range e.kw {
			if !slices.Contains(fn.keywords, kw.name) {
				if len(fn.keywords) == 0 {
					return nil, errorf(kw.pos, "%s takes no keyword arguments: %s", e.fn, fn.usage)
				}
				return nil, errorf(kw.pos, "%s has no argument %s; it takes %s: %s", e.fn, kw.name, strings.Join(fn.keywords, ", "), fn.usage)
			}
		}
		n, err := fn.lower(l, e)
		if err != nil {
			return nil, err
		}
		if err := l.check(e.pos, e.fn); err != nil {
			return nil, err
		}
		return n, nil
	case *listLit:
		return nil, errorf(e.pos, "a list [...] is only an argument (a shape or axes), not a tensor")
	}
	panic("unreachable")
}

func argCount(lo, hi int) string {
	switch {
	case lo == hi && lo == 1:
		return "1 argument"
	case lo == hi:
		return fmt.Sprintf("%d arguments", lo)
	}
	return fmt.Sprintf("%d to %d arguments", lo, hi)
}

func (l *lowerer) unknown(pos ir.Pos, name string) *Error {
	known := make([]string, 0, len(l.names))
	for k := range l.names {
		known = append(known, k)
	}
	sort.Strings(known)
	if len(known) == 0 {
		return errorf(pos, "unknown name %s; declare it first (input %s: [...], param %s: [...])", name, name, name)
	}
	if len(known) > 12 {
		known = append(known[:12], "...")
	}
	return errorf(pos, "unknown name %s; define it on an earlier line (defined so far: %s)", name, strings.Join(known, ", "))
}

// finish reports what the whole file lacks: a model, batch, loss or output
// line, unless the line meant to give it failed and was reported already.
func (l *lowerer) finish(lines int) {
	end := ir.Pos{File: l.file, Line: lines, Col: 1}
	top := ir.Pos{File: l.file, Line: 1, Col: 1}
	if l.g.Model == "" && !l.modelFailed {
		base := strings.TrimSuffix(filepath.Base(l.file), filepath.Ext(l.file))
		l.errs = append(l.errs, errorf(top, "missing model line: add `model %s` at the top", goName(base)))
	}
	if l.g.Batch == 0 && !l.batchFailed {
		l.errs = append(l.errs, errorf(top, "missing batch line: add `batch 32` (the maximum rows per step) before the inputs"))
	}
	if l.g.Loss == nil {
		if !l.failed["loss"] {
			l.errs = append(l.errs, errorf(end, "missing loss: add a line `loss = softmax_cross_entropy(logits, labels)` (or mse, bce, or any scalar expression)"))
		}
		return
	}
	l.g.Output = l.lossPred
	if l.output != nil {
		n, ok := l.names[l.output.text]
		if !ok {
			if !l.isFailed(l.output.text) {
				l.errs = append(l.errs, l.unknown(l.output.pos, l.output.text))
			}
			return
		}
		l.g.Output = n
	}
	if l.g.Output == nil && !l.outputFailed {
		l.errs = append(l.errs, errorf(end, "missing output: add `output NAME` naming the prediction that Infer computes"))
	}
}

// unused reports every name the description defines (an input, a label,
// a parameter, a line) that neither the loss nor the output depends on:
// as in Go, an unused name is most often a slip, such as a layer wired to
// the wrong input, which would otherwise train without a word (a
// parameter that never moves, an input the model ignores).
func (l *lowerer) unused() {
	used := map[*ir.Node]bool{}
	var visit func(n *ir.Node)
	visit = func(n *ir.Node) {
		if n == nil || used[n] {
			return
		}
		used[n] = true
		for _, a := range n.Args {
			visit(a)
		}
	}
	visit(l.g.Loss)
	visit(l.g.Output)
	// Only the ends of what is unused are reported, as Go reports y and
	// not x in x := 1; y := x: the rest follows once they go.
	read := map[*ir.Node]bool{}
	for _, n := range l.b.Nodes {
		for _, a := range n.Args {
			read[a] = true
		}
	}
	for _, name := range slices.Sorted(maps.Keys(l.names)) {
		n := l.names[name]
		at, ok := l.defined[name]
		if !ok || used[n] || read[n] || strings.Contains(name, ".") {
			continue // a layer's parameters go with its line
		}
		what, remove := "line", "line"
		switch {
		case n.Op == ir.Input || n.Op == ir.Label && n.Attrs.Tokens:
			what, remove = "input", "declaration"
		case n.Op == ir.Label:
			what, remove = "label", "declaration"
		case n.Op == ir.Param:
			what, remove = "parameter", "declaration"
		}
		l.errs = append(l.errs, errorf(at, "%s %s is never used: neither the loss nor the output depends on it; use it or remove the %s", what, name, remove))
	}
}

func isGoIdent(s string) bool {
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}

func goName(s string) string {
	var b strings.Builder
	for i, r := range s {
		if r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "model"
	}
	return b.String()
}
