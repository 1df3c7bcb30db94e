// Backpropgen generates Go training code from a model description.
//
// Given a description such as mlp.bpg
//
//	model mlp
//	batch 32
//	input  x: [784]
//	label  y: class(10)
//	h1     = dense(x, 128, relu)
//	logits = dense(h1, 10)
//	loss   = softmax_cross_entropy(logits, y)
//
// in a directory of its own, with one Go file holding
//
//	//go:generate go tool backpropgen mlp.bpg
//
// go generate writes mlp.go (the model: Forward, Backward, TrainStep, ...)
// and mlp_test.go (finite-difference gradient checks, allocation and NaN
// tests, BenchmarkTrainStep) next to it. The module names the command as a
// tool (go get -tool github.com/backpropgen/backpropgen/cmd/backpropgen),
// so that go tool runs the version it requires; the README's tutorial
// shows the whole path, from a checkout too.
//
// Usage:
//
//	backpropgen [flags] file.bpg
//
// Flags:
//
//	-o file        model file to write (default: <model>.go beside the description)
//	-pkg name      package name (default: the model name, lower-cased)
//	-float64       use float64 elements instead of float32
//	-input-grads   also compute gradients with respect to the inputs
//	-no-fold       keep inference-mode batch norms as a pass of their own
//	-tests=false   do not write the _test.go file
//	-check         write nothing; exit 1 if a generated file is missing or stale
//	-ir            print the forward and backward IR and exit
//	-max-memory    refuse models that need more to train (default 16GiB; 0: no limit)
//	-version       print the version and exit
//
// Exit status: 0 on success, 1 on a description error or stale files with
// -check, 2 on a usage error.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/backpropgen/backpropgen/derive"
	"github.com/backpropgen/backpropgen/emit"
	"github.com/backpropgen/backpropgen/ir"
	"github.com/backpropgen/backpropgen/ir/desc"
	"github.com/backpropgen/backpropgen/runtime/spec"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// errUsage marks errors that exit with status 2.
var errUsage = errors.New("usage")

func run(args []string, stdout, stderr io.Writer) int {
	err := generate(args, stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintln(stderr, err)
	return 1
}

type config struct {
	out, pkg                    string
	float64, inputGrads, tests  bool
	noFold, allBounds           bool
	check, printIR, showVersion bool
	maxMemory                   byteSize
}

func generate(args []string, stdout, stderr io.Writer) (err error) {
	// A panic below is a bug in backpropgen, not in the description: say
	// so in one line rather than with a stack trace.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("backpropgen: internal error: %v; please report it with the description", r)
		}
	}()
	fs := flag.NewFlagSet("backpropgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	fs.StringVar(&c.out, "o", "", "model `file` to write (default: <model>.go beside the description)")
	fs.StringVar(&c.pkg, "pkg", "", "package `name` (default: the model name, lower-cased)")
	fs.BoolVar(&c.float64, "float64", false, "use float64 elements instead of float32")
	fs.BoolVar(&c.inputGrads, "input-grads", false, "also compute gradients with respect to the inputs")
	fs.BoolVar(&c.noFold, "no-fold", false, "keep inference-mode batch norms as a pass of their own instead of folding them into the products before them")
	fs.BoolVar(&c.allBounds, "all-bounds", false, "prove every gradient a bound rule covers finite from its kernel's operands, even where scanning it would read less (the generated TestCheckGrads then checks every op's bound)")
	fs.BoolVar(&c.tests, "tests", true, "also write <model>_test.go with gradient checks and benchmarks")
	fs.BoolVar(&c.check, "check", false, "write nothing; exit 1 if a generated file is missing or stale")
	fs.BoolVar(&c.printIR, "ir", false, "print the forward and backward IR and exit")
	fs.BoolVar(&c.showVersion, "version", false, "print the version and exit")
	c.maxMemory = 16 << 30
	fs.Var(&c.maxMemory, "max-memory", "refuse a model that needs more memory than `size` to train (e.g. 64GiB; 0: no limit)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: backpropgen [flags] file%s\n\nGenerates a Go package with forward, backward and training code for the model.\n\nFlags:\n", desc.Ext)
		fs.PrintDefaults()
	}
	// A bad flag is one line; the whole usage is for -h and a missing file.
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		fs.SetOutput(stderr)
		if errors.Is(err, flag.ErrHelp) {
			fs.Usage()
			return err
		}
		fmt.Fprintf(stderr, "backpropgen: %v; run backpropgen -h for the flags\n", err)
		return errUsage
	}
	fs.SetOutput(stderr)
	if c.showVersion {
		fmt.Fprintln(stdout, "backpropgen", spec.Version)
		return nil
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(stderr, "backpropgen: need exactly one description file, got %d\n", fs.NArg())
		fs.Usage()
		return errUsage
	}
	path := fs.Arg(0)
	if filepath.Ext(path) != desc.Ext {
		fmt.Fprintf(stderr, "backpropgen: %s: description files end in %s\n", path, desc.Ext)
		return errUsage
	}
	if err := c.validate(); err != nil {
		fmt.Fprintf(stderr, "backpropgen: %v\n", err)
		return errUsage
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	g, err := desc.Parse(filepath.Base(path), src)
	if err != nil {
		return err
	}
	prog, err := derive.Derive(g, derive.Options{InputGrads: c.inputGrads, NoFold: c.noFold, AllBounds: c.allBounds})
	if err != nil {
		return err
	}
	if err := c.checkMemory(prog); err != nil {
		return err
	}
	if !c.float64 {
		if err := checkFloat32Constants(prog); err != nil {
			return err
		}
	}
	for _, p := range prog.Unused {
		fmt.Fprintf(stderr, "%v: warning: the loss does not depend on parameter %s; its gradient stays zero\n", p.Pos, p.Name)
	}
	if c.printIR {
		fmt.Fprint(stdout, prog)
		return nil
	}
	opt := emit.Options{Package: c.pkg, Float64: c.float64, Command: c.command(path)}
	model, err := emit.Generate(prog, opt)
	if err != nil {
		return err
	}
	out := c.out
	if out == "" {
		out = filepath.Join(filepath.Dir(path), strings.ToLower(g.Model)+".go")
	}
	files := []struct {
		path string
		data []byte
	}{{out, model}}
	if c.tests {
		tests, err := emit.GenerateTest(prog, opt)
		if err != nil {
			return err
		}
		files = append(files, struct {
			path string
			data []byte
		}{strings.TrimSuffix(out, ".go") + "_test.go", tests})
	}
	var stale []string
	for _, f := range files {
		old, err := os.ReadFile(f.path)
		if err == nil && bytes.Equal(old, f.data) {
			continue
		}
		if err == nil && !generated(old) {
			return fmt.Errorf("backpropgen: %s exists and was not written by backpropgen; move it away or choose another file with -o", f.path)
		}
		if c.check {
			stale = append(stale, f.path)
			continue
		}
		if err := writeFile(f.path, f.data); err != nil {
			return err
		}
	}
	if len(stale) > 0 {
		return fmt.Errorf("backpropgen: stale or missing: %s; run go generate", strings.Join(stale, ", "))
	}
	return nil
}

// generated reports whether src carries the header of a generated Go file
// (https://go.dev/s/generatedcode): only such files are overwritten.
func generated(src []byte) bool {
	for line := range strings.Lines(string(src)) {
		line = strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(line, "package ") {
			break
		}
		if strings.HasPrefix(line, "// Code generated ") && strings.HasSuffix(line, " DO NOT EDIT.") {
			return true
		}
	}
	return false
}

// validate checks the flags that name Go things: the package and the file.
func (c config) validate() error {
	if c.pkg != "" {
		if err := desc.CheckPackageName(c.pkg); err != nil {
			return fmt.Errorf("-pkg: %v", err)
		}
	}
	if c.out != "" {
		base := filepath.Base(c.out)
		switch {
		case filepath.Ext(c.out) != ".go":
			return fmt.Errorf("-o %s: the model file must end in .go", c.out)
		case strings.HasSuffix(base, "_test.go"):
			return fmt.Errorf("-o %s: a file ending in _test.go is a test file; name the model file without _test (its tests go to <name>_test.go)", c.out)
		case strings.HasPrefix(base, "_") || strings.HasPrefix(base, "."):
			return fmt.Errorf("-o %s: go build ignores files whose names start with _ or .; pick another name", c.out)
		}
	}
	return nil
}

// checkMemory refuses a model that needs more than -max-memory to train,
// naming the line of its largest tensor, before anything is written.
func (c config) checkMemory(p *derive.Program) error {
	elem := 4
	if c.float64 {
		elem = 8
	}
	mem := p.Memory(elem)
	if c.maxMemory == 0 || mem.Total() <= int64(c.maxMemory) {
		return nil
	}
	big := p.Largest()
	return fmt.Errorf("%v: training this model needs %v (parameters, gradients and Adam's state %v; activations and work buffers %v), more than the %v allowed; its largest tensor, %s %v, comes from this line: make it smaller, or raise the limit with -max-memory",
		big.Pos, byteSize(mem.Total()), byteSize(mem.Params+mem.Grads+mem.Optimizer),
		byteSize(mem.Arena+mem.Records+mem.Inputs), c.maxMemory, big.Label(), big.Shape)
}

// writeFile replaces path atomically, so an interrupted run never leaves a
// half-written Go file behind.
func writeFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".backpropgen-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// command is the generating command as recorded in the header: only the
// flags that change the output, and the description's base name, so the
// header does not depend on where or how (-check) the generator ran.
func (c config) command(path string) string {
	parts := []string{"backpropgen"}
	if c.pkg != "" {
		parts = append(parts, "-pkg", c.pkg)
	}
	if c.float64 {
		parts = append(parts, "-float64")
	}
	if c.inputGrads {
		parts = append(parts, "-input-grads")
	}
	if c.noFold {
		parts = append(parts, "-no-fold")
	}
	if c.allBounds {
		parts = append(parts, "-all-bounds")
	}
	if !c.tests {
		parts = append(parts, "-tests=false")
	}
	return strings.Join(append(parts, filepath.Base(path)), " ")
}

// checkFloat32Constants refuses a constant a float32 model cannot hold
// (x * 1e50): its Go literal would not compile.
func checkFloat32Constants(p *derive.Program) error {
	for _, list := range [][]*ir.Node{p.Forward, p.Backward, p.Infer} {
		for _, n := range list {
			if n.Op == ir.Const && math.Abs(n.Attrs.Value) > math.MaxFloat32 {
				return fmt.Errorf("%v: the constant %g is beyond float32's range (±3.4e38), so the generated float32 code cannot hold it; use a smaller constant, or generate float64 code with -float64", n.Pos, n.Attrs.Value)
			}
		}
	}
	return nil
}
