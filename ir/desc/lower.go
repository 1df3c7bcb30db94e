package desc

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/backpropgen/backpropgen/ir"
	"github.com/backpropgen/backpropgen/runtime"
)

// Ext is the file extension of model descriptions.
const Ext = ".bpg"

// MaxBatch bounds the batch line; larger batches are better split anyway.
const MaxBatch = 1 << 16

var keywords = []string{"model", "batch", "input", "label", "param", "output"}

// Parse reads the description src (named file in errors) and lowers it to a
// verified forward graph. The error, if any, is an ErrorList.
func Parse(file string, src []byte) (*ir.Graph, error) {
	l := &lowerer{
		file:    file,
		g:       &ir.Graph{File: file},
		b:       &ir.Builder{},
		names:   map[string]*ir.Node{},
		defined: map[string]ir.Pos{},
		failed:  map[string]bool{},
	}
	lines := strings.Split(string(src), "\n")
	for i, line := range lines {
		if len(l.errs) >= 10 {
			break
		}
		toks, err := lexLine(file, i+1, line)
		if err != nil {
			l.errs = append(l.errs, err)
			continue
		}
		if len(toks) == 1 {
			continue
		}
		if err := l.statement(&parser{toks: toks}, line); err != nil && err != errReported {
			l.errs = append(l.errs, err)
		}
	}
	if len(l.errs) == 0 {
		l.finish(len(lines))
	}
	if len(l.errs) > 0 {
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
		if !isGoIdent(t.text) {
			return errorf(t.pos, "model name %q must be a Go identifier (letters, digits, _)", t.text)
		}
		l.g.Model = t.text
		return p.end()
	case "batch":
		t := p.next()
		if t.kind != tNumber || t.num != math.Trunc(t.num) || t.num < 1 || t.num > MaxBatch {
			return errorf(t.pos, "batch needs a whole number from 1 to %d (the maximum rows per step), found %v", MaxBatch, t)
		}
		if l.g.Batch != 0 {
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
	if _, err := p.expect(":", "after the name"); err != nil {
		return err
	}
	if kw.text != "param" && l.g.Batch == 0 {
		return errorf(kw.pos, "%s before batch: put `batch N` (the maximum rows per step) above the inputs", kw.text)
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
		if _, err := p.expect("(", "after class"); err != nil {
			return err
		}
		t := p.next()
		if t.kind != tNumber || t.num != math.Trunc(t.num) || t.num < 2 || t.num > 1<<24 {
			return errorf(t.pos, "class(C) needs a whole number of classes ≥ 2, found %v", t)
		}
		if _, err := p.expect(")", "after the class count"); err != nil {
			return err
		}
		if err := l.claim(name); err != nil {
			return err
		}
		n = l.b.Leaf("label", name.text, append(ir.Shape{{Size: l.g.Batch, Batch: true}}, ir.Fixed(steps...)...), ir.Attrs{Classes: int(t.num)})
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
		} else {
			attrs.Init = "glorot_uniform"
			if len(dims) == 1 {
				attrs.Init = "zeros"
			}
			if p.peek().kind == tIdent && p.peek().text == "init" {
				p.next()
				t, err := p.ident("an initializer name after init")
				if err != nil {
					return err
				}
				if _, perr := runtime.ParseInit(t.text); perr != nil {
					return errorf(t.pos, "%v", perr)
				}
				attrs.Init = t.text
			}
		}
		if len(shape) > 4 {
			return errorf(name.pos, "%s has rank %d; ranks above 4 are not supported", name.text, len(shape))
		}
		if err := l.claim(name); err != nil {
			return err
		}
		n = l.b.Leaf(kw.text, name.text, shape, attrs)
		if kw.text == "input" {
			l.g.Inputs = append(l.g.Inputs, n)
		} else {
			l.g.Params = append(l.g.Params, n)
		}
	}
	l.names[name.text] = n
	return p.end()
}

// shapeList reads [d1, d2, ...] of positive static sizes.
func (l *lowerer) shapeList(p *parser) ([]int, *Error) {
	open, err := p.expect("[", "to start the shape, as in [784]")
	if err != nil {
		return nil, err
	}
	var dims []int
	for !p.is("]") {
		if len(dims) > 0 {
			if _, err := p.expect(",", "between dimensions"); err != nil {
				return nil, err
			}
		}
		t := p.next()
		if t.kind == tEOL {
			return nil, errorf(t.pos, "missing \"]\" to close the shape opened at column %d", open.pos.Col)
		}
		if t.kind != tNumber || t.num != math.Trunc(t.num) || t.num < 1 || t.num > 1<<30 {
			return nil, errorf(t.pos, "a dimension must be a whole number ≥ 1, found %v", t)
		}
		dims = append(dims, int(t.num))
	}
	p.next()
	if len(dims) == 0 {
		return nil, errorf(open.pos, "empty shape: list at least one dimension")
	}
	return dims, nil
}

func (l *lowerer) assign(p *parser, name token, line string) *Error {
	p.next() // "="
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
	if n.Name == "" || slices.Contains(l.b.Nodes[start:], n) && n.Op.Name != "param" {
		n.Name = name.text
	}
	l.names[name.text] = n
	text := strings.TrimSpace(line[min(rhsCol-1, len(line)):])
	if i := strings.IndexByte(text, '#'); i >= 0 {
		text = strings.TrimSpace(text[:i])
	}
	l.g.Statements = append(l.g.Statements, ir.Statement{Name: name.text, Pos: name.pos, Text: text})
	if name.text == "loss" {
		if !n.Shape.IsScalar() || len(n.Shape) != 0 {
			return errorf(name.pos, "loss must be a scalar, but this expression has shape %v; reduce it with mean(...) or sum(...)", n.Shape)
		}
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
			if l.failed[e.name] {
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
			n = l.b.MatMul(x, y, false, false)
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

func (l *lowerer) finish(lines int) {
	end := ir.Pos{File: l.file, Line: lines, Col: 1}
	if l.g.Model == "" {
		base := strings.TrimSuffix(filepath.Base(l.file), filepath.Ext(l.file))
		l.errs = append(l.errs, errorf(ir.Pos{File: l.file, Line: 1, Col: 1}, "missing model line: add `model %s` at the top", goName(base)))
		return
	}
	if l.g.Batch == 0 {
		l.errs = append(l.errs, errorf(ir.Pos{File: l.file, Line: 1, Col: 1}, "missing batch line: add `batch 32` (the maximum rows per step) before the inputs"))
		return
	}
	if l.g.Loss == nil && !l.failed["loss"] {
		l.errs = append(l.errs, errorf(end, "missing loss: add a line `loss = softmax_cross_entropy(logits, labels)` (or mse, bce, or any scalar expression)"))
		return
	}
	l.g.Output = l.lossPred
	if l.output != nil {
		n, ok := l.names[l.output.text]
		if !ok {
			l.errs = append(l.errs, l.unknown(l.output.pos, l.output.text))
			return
		}
		l.g.Output = n
	}
	if l.g.Output == nil {
		l.errs = append(l.errs, errorf(end, "missing output: add `output NAME` naming the prediction that Infer computes"))
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
