// Command bench times one training step of the generated models, and of the
// same models in PyTorch, and prints them side by side.
//
// For each model it builds the generated package's test binary once, then
// runs its BenchmarkTrainStep single-threaded (-test.cpu 1 with
// GOMAXPROCS=1) and torch_bench.py for the same model in alternation, one
// run of each per round, so that both see the same machine load (on a
// shared machine the load drifts over tens of seconds, which back-to-back
// blocks of runs would turn into a bias). It prints a table of the medians
// and of the median of the per-round ratios, with the target ratio, and
// writes every benchmark line to a file for benchstat.
//
//	go run ./examples/bench                  # Go and PyTorch, all models
//	go run ./examples/bench -count 3 -models mlp,cnn
//	go run ./examples/bench -go-only         # the Go benchmarks only
//	benchstat -col /impl /tmp/backpropgen-bench.txt
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/backpropgen/backpropgen/runtime"
)

// targets are the goals: Go time per step at most this fraction of
// PyTorch's. The MLP at batch 128 (mlpb128) and the larger GPT (gptlarge)
// are timed without one.
var targets = map[string]float64{
	"mlp":     0.2,
	"widemlp": 0.5,
	"cnn":     0.5,
	"rnn":     0.5,
	"lstm":    0.5,
	"gpt":     0.35,
}

// llmcModels are the models examples/bench/llmc/llmc_bench.c builds in
// llm.c's train_gpt2.c.
var llmcModels = []string{"gpt", "gptlarge"}

// torchModels are the models torch_bench.py knows.
var torchModels = []string{"mlp", "mlpb128", "widemlp", "cnn", "rnn", "lstm", "gpt", "gptlarge"}

// installHint says how to get PyTorch for the comparison.
const installHint = "`make bench-compare` installs it (apt-get install python3-torch libopenblas0-pthread), " +
	"or pass -python with an interpreter that has torch"

func main() {
	var (
		models     = flag.String("models", "mlp,mlpb128,widemlp,cnn,rnn,lstm,gpt,gptlarge", "comma-separated generated models to time")
		count      = flag.Int("count", 5, "rounds of one Go run and one PyTorch run")
		benchtime  = flag.String("benchtime", "2s", "time per run (go test -benchtime; seconds for torch_bench.py)")
		python     = flag.String("python", "", "Python interpreter with torch (default: the first of python3, /usr/bin/python3 that imports torch)")
		gomaxprocs = flag.Int("gomaxprocs", 1, "threads on both sides: GOMAXPROCS, -cpu and "+runtime.ThreadsEnv+" for the Go benchmarks, PyTorch's intra-op threads")
		raw        = flag.String("raw", filepath.Join(os.TempDir(), "backpropgen-bench.txt"), "file for the raw benchmark lines (benchstat input); empty for none")
		goOnly     = flag.Bool("go-only", false, "run only the Go benchmarks")
		llmc       = flag.String("llmc", "", "llm.c's step as a third column for gpt and gptlarge: the llmc_bench binary examples/bench/llmc/run.sh builds ($TMPDIR/backpropgen-llmc/llmc_bench); empty: not run")
	)
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: go run ./examples/bench [flags]\n\n"+
			"Times BenchmarkTrainStep of generated/<model> and the same model in PyTorch.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if err := run(*models, *count, *benchtime, *python, *gomaxprocs, *raw, *goOnly, *llmc); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(modelList string, count int, benchtime, python string, procs int, rawPath string, goOnly bool, llmc string) error {
	if count < 1 || procs < 1 {
		return errors.New("-count and -gomaxprocs must be at least 1")
	}
	var torchSeconds float64
	if !goOnly {
		var err error
		if torchSeconds, err = seconds(benchtime); err != nil {
			return err
		}
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	var names []string
	for _, m := range strings.Split(modelList, ",") {
		if m = strings.TrimSpace(m); m != "" {
			names = append(names, m)
		}
	}
	if len(names) == 0 {
		return errors.New("no models given")
	}

	withTorch := !goOnly
	if withTorch {
		python, err = findPython(python)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\nbench: %s; timing the Go benchmarks only.\n", err, installHint)
			withTorch = false
		} else {
			fmt.Fprintf(os.Stderr, "bench: PyTorch from %s\n", python)
		}
	}

	binDir, err := os.MkdirTemp("", "backpropgen-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(binDir)

	var rawBuf bytes.Buffer
	var rows []row
	var failed []string
	for _, m := range names {
		r := row{Model: m, Batch: batchOf(root, m), Target: targets[m]}
		r.TorchRun = withTorch && slices.Contains(torchModels, m)
		r.LLMCRun = llmc != "" && !goOnly && slices.Contains(llmcModels, m)
		bin, err := buildGo(root, m, binDir)
		if err != nil {
			failed = append(failed, m+" (go)")
			fmt.Fprintf(os.Stderr, "bench: %s: go test -c: %v\n", m, err)
			rows = append(rows, r)
			continue
		}
		// record keeps a run's lines (times into ns, lines into the raw
		// file) and reports whether it succeeded.
		record := func(lines []benchLine, ns *[]float64, err error, side string) bool {
			for _, l := range lines {
				*ns = append(*ns, l.NsPerOp)
				rawBuf.WriteString(l.Line + "\n")
			}
			if err != nil {
				failed = append(failed, m+" ("+side+")")
				fmt.Fprintf(os.Stderr, "bench: %s: %s: %v\n", m, side, err)
			}
			return err == nil
		}
		goOK, torchOK, llmcOK := true, r.TorchRun, r.LLMCRun
		for round := 0; round < count && goOK; round++ {
			lines, header, err := runGo(root, bin, m, benchtime, procs)
			if rawBuf.Len() == 0 {
				rawBuf.WriteString(header)
			}
			goOK = record(lines, &r.Go, err, "go")
			if torchOK {
				lines, comment, err := runTorch(root, python, m, 1, torchSeconds, procs)
				if comment != "" && round == 0 {
					rawBuf.WriteString(comment + "\n")
				}
				torchOK = record(lines, &r.Torch, err, "torch")
			}
			if llmcOK {
				lines, err := runLLMC(llmc, m, torchSeconds, procs)
				llmcOK = record(lines, &r.LLMC, err, "llm.c")
			}
		}
		rows = append(rows, r)
	}

	fmt.Println()
	writeTable(os.Stdout, rows, withTorch)
	fmt.Printf("\nMedians of %d rounds of one Go run and one PyTorch run of %s each; ± is half the range of the runs\nover the median; Go/PyTorch is the median of the %d per-round ratios.\n", count, benchtime, count)
	fmt.Printf("Go: go test -c, then per round <model>.test -test.run '^$' -test.bench TrainStep -test.benchtime %s -test.cpu %d, GOMAXPROCS=%d %s=%d.\n", benchtime, procs, procs, runtime.ThreadsEnv, procs)
	if llmc != "" && !goOnly {
		fmt.Printf("llm.c: per round OMP_NUM_THREADS=%d %s -model <model> -benchtime %g (train_gpt2.c's step; examples/bench/llmc).\n", procs, llmc, torchSeconds)
	}
	if withTorch {
		fmt.Printf("PyTorch: per round %s examples/bench/torch_bench.py --models <model> --count 1 --benchtime %g --threads %d --each (interop threads 1); CNN is NCHW there, NHWC in Go.\n",
			python, torchSeconds, procs)
	} else if !goOnly {
		fmt.Printf("PyTorch not run: %s.\n", installHint)
	}
	if rawPath != "" {
		if err := os.WriteFile(rawPath, rawBuf.Bytes(), 0o644); err != nil {
			return err
		}
		fmt.Printf("Raw lines: %s (benchstat -col /impl %s)\n", rawPath, rawPath)
	}
	if len(failed) > 0 {
		return fmt.Errorf("failed: %s", strings.Join(failed, ", "))
	}
	return nil
}

// benchLine is one result line of Go benchmark output.
type benchLine struct {
	Name    string  // as printed, e.g. BenchmarkTrainStep-2
	Iters   int64   // iterations
	NsPerOp float64 // ns/op
	Line    string  // the whole line
}

// parseBench returns the benchmark result lines of go test -bench output
// (or torch_bench.py's, which prints the same format). Other lines are
// skipped, as are benchmark lines without an ns/op value.
func parseBench(r io.Reader) []benchLine {
	var out []benchLine
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if l, ok := parseBenchLine(sc.Text()); ok {
			out = append(out, l)
		}
	}
	return out
}

// parseBenchLine parses "BenchmarkName  N  V ns/op [V unit]...".
func parseBenchLine(line string) (benchLine, bool) {
	f := strings.Fields(line)
	if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
		return benchLine{}, false
	}
	n, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return benchLine{}, false
	}
	for i := 2; i+1 < len(f); i += 2 {
		if f[i+1] != "ns/op" {
			continue
		}
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return benchLine{}, false
		}
		return benchLine{Name: f[0], Iters: n, NsPerOp: v, Line: strings.TrimRight(line, " \t\r")}, true
	}
	return benchLine{}, false
}

// procsSuffix matches the -GOMAXPROCS suffix go test adds to a benchmark name.
var procsSuffix = regexp.MustCompile(`-\d+$`)

// renameGo renames a generated package's BenchmarkTrainStep[-P] line to
// BenchmarkTrainStep/model=M/impl=go[-P], the scheme torch_bench.py uses, so
// that benchstat -col /impl puts the two side by side.
func renameGo(l benchLine, model string) benchLine {
	suffix := procsSuffix.FindString(l.Name)
	base := strings.TrimSuffix(l.Name, suffix)
	name := base + "/model=" + model + "/impl=go" + suffix
	l.Line = name + strings.TrimPrefix(l.Line, l.Name)
	l.Name = name
	return l
}

// buildGo compiles the generated package's test binary into dir and
// returns its path.
func buildGo(root, model, dir string) (string, error) {
	bin := filepath.Join(dir, model+".test")
	args := []string{"test", "-c", "-o", bin, "./generated/" + model + "/"}
	fmt.Fprintf(os.Stderr, "bench: go %s\n", strings.Join(args, " "))
	cmd := exec.Command(goCommand(), args...)
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return bin, cmd.Run()
}

// runGo runs BenchmarkTrainStep once in the test binary bin and returns
// its line (renamed), and the goos/goarch/cpu header for the raw file.
func runGo(root, bin, model string, benchtime string, procs int) ([]benchLine, string, error) {
	args := []string{"-test.run", "^$", "-test.bench", "TrainStep", "-test.benchtime", benchtime,
		"-test.count", "1", "-test.cpu", strconv.Itoa(procs)}
	// The GEMM worker pool (runtime.SetThreads) takes the same number of
	// threads as PyTorch's intra-op pool.
	env := []string{"GOMAXPROCS=" + strconv.Itoa(procs), runtime.ThreadsEnv + "=" + strconv.Itoa(procs)}
	fmt.Fprintf(os.Stderr, "bench: %s %s %s\n", strings.Join(env, " "), filepath.Base(bin), strings.Join(quoteArgs(args), " "))
	cmd := exec.Command(bin, args...)
	cmd.Dir = filepath.Join(root, "generated", model)
	cmd.Env = append(os.Environ(), env...)
	out, err := runTee(cmd)
	var header strings.Builder
	for _, l := range strings.Split(out, "\n") {
		for _, k := range []string{"goos:", "goarch:", "cpu:"} {
			if strings.HasPrefix(l, k) {
				header.WriteString(l + "\n")
			}
		}
	}
	var lines []benchLine
	for _, l := range parseBench(strings.NewReader(out)) {
		lines = append(lines, renameGo(l, model))
	}
	if err == nil && len(lines) == 0 {
		err = errors.New("no benchmark lines in the output")
	}
	return lines, header.String(), err
}

// runTorch runs torch_bench.py for one model and returns its lines and its
// "# torch ..." description line.
func runTorch(root, python, model string, count int, seconds float64, threads int) ([]benchLine, string, error) {
	args := []string{filepath.Join("examples", "bench", "torch_bench.py"), "--models", model,
		"--count", strconv.Itoa(count), "--benchtime", strconv.FormatFloat(seconds, 'g', -1, 64),
		"--threads", strconv.Itoa(threads), "--each"}
	fmt.Fprintf(os.Stderr, "bench: %s %s\n", python, strings.Join(args, " "))
	cmd := exec.Command(python, args...)
	cmd.Dir = root
	out, err := runTee(cmd)
	var comment string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "# torch") {
			comment = l
		}
	}
	lines := parseBench(strings.NewReader(out))
	if err == nil && len(lines) == 0 {
		err = errors.New("no benchmark lines in the output")
	}
	return lines, comment, err
}

// runLLMC runs llm.c's step for model (examples/bench/llmc/llmc_bench.c)
// for about seconds, on threads OpenMP threads.
func runLLMC(bin, model string, seconds float64, threads int) ([]benchLine, error) {
	args := []string{"-model", model, "-benchtime", strconv.FormatFloat(seconds, 'g', -1, 64)}
	fmt.Fprintf(os.Stderr, "bench: OMP_NUM_THREADS=%d %s %s\n", threads, bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS="+strconv.Itoa(threads))
	out, err := runTee(cmd)
	lines := parseBench(strings.NewReader(out))
	if err == nil && len(lines) == 0 {
		err = errors.New("no benchmark lines in the output")
	}
	return lines, err
}

// runTee runs cmd, copying its output to stderr as it comes, and returns the
// standard output.
func runTee(cmd *exec.Cmd) (string, error) {
	var buf bytes.Buffer
	cmd.Stdout = io.MultiWriter(&buf, os.Stderr)
	cmd.Stderr = os.Stderr
	err := cmd.Run()
	return buf.String(), err
}

// findPython returns the first interpreter that imports torch: the given one,
// or else python3 on PATH, then /usr/bin/python3 (Debian's python3-torch is
// for the system Python, which a pyenv or venv python3 may hide).
func findPython(given string) (string, error) {
	candidates := []string{"python3", "/usr/bin/python3"}
	if given != "" {
		candidates = []string{given}
	}
	for _, p := range candidates {
		if exec.Command(p, "-c", "import torch").Run() == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("PyTorch is not importable by %s", strings.Join(candidates, " or "))
}

// goCommand is the go command to run: $GO if set (as in the Makefile), else go.
func goCommand() string {
	if g := os.Getenv("GO"); g != "" {
		return g
	}
	return "go"
}

// moduleRoot is the directory of the main module's go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command(goCommand(), "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run this inside the backpropgen module (go run ./examples/bench)")
	}
	return filepath.Dir(gomod), nil
}

var batchLine = regexp.MustCompile(`(?m)^\s*batch\s+(\d+)`)

// batchOf reads the batch size from generated/<model>/<model>.bpg, or 0.
func batchOf(root, model string) int {
	src, err := os.ReadFile(filepath.Join(root, "generated", model, model+".bpg"))
	if err != nil {
		return 0
	}
	m := batchLine.FindSubmatch(src)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// seconds converts a -benchtime duration ("2s", "500ms") to seconds; an
// iteration count ("100x") is refused since torch_bench.py times by duration.
func seconds(benchtime string) (float64, error) {
	for _, u := range []struct {
		suffix string
		scale  float64
	}{{"ms", 1e-3}, {"s", 1}, {"m", 60}} {
		if v, ok := strings.CutSuffix(benchtime, u.suffix); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil && f > 0 {
				return f * u.scale, nil
			}
		}
	}
	return 0, fmt.Errorf("-benchtime %q: want a duration such as 2s or 500ms", benchtime)
}

func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, "^$*? ") {
			a = "'" + a + "'"
		}
		out[i] = a
	}
	return out
}

// row is one model's results.
type row struct {
	Model    string
	Batch    int
	Go       []float64 // ns/op of each Go run
	Torch    []float64 // ns/op of each PyTorch run
	TorchRun bool      // whether PyTorch was run for this model
	Target   float64   // target Go/PyTorch ratio; 0 for none
	LLMC     []float64 // ns/op of each llm.c run
	LLMCRun  bool      // whether llm.c was run for this model
}

// writeTable prints the rows as an aligned table; without torch it has only
// the Go columns, and llm.c's two columns where a row ran it.
func writeTable(w io.Writer, rows []row, withTorch bool) {
	withLLMC := slices.ContainsFunc(rows, func(r row) bool { return r.LLMCRun })
	// Numbers align right; the model names are padded to align left.
	width := len("model")
	for _, r := range rows {
		width = max(width, len(r.Model))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\tbatch\tGo ns/step\t", width, "model")
	if withTorch {
		fmt.Fprintf(tw, "PyTorch ns/step\tGo/PyTorch\ttarget\t")
	}
	if withLLMC {
		fmt.Fprintf(tw, "llm.c ns/step\tGo/llm.c\t")
	}
	fmt.Fprintln(tw)
	for _, r := range rows {
		fmt.Fprintf(tw, "%-*s\t%d\t%s\t", width, r.Model, r.Batch, formatNs(r.Go))
		if withTorch {
			torch, ratio, target := "n/a", "n/a", "-"
			if len(r.Torch) > 0 {
				torch = formatNs(r.Torch)
			} else if !r.TorchRun {
				torch = "not run"
			}
			if len(r.Go) > 0 && len(r.Torch) > 0 {
				q := pairedRatio(r.Go, r.Torch)
				ratio = fmt.Sprintf("%.3fx", q)
				if r.Target > 0 {
					verdict := "not met"
					if q <= r.Target {
						verdict = "met"
					}
					target = fmt.Sprintf("<= %gx %s", r.Target, verdict)
				}
			} else if r.Target > 0 {
				target = fmt.Sprintf("<= %gx n/a", r.Target)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t", torch, ratio, target)
		}
		if withLLMC {
			llmc, ratio := "not run", "n/a"
			if len(r.LLMC) > 0 {
				llmc = formatNs(r.LLMC)
				if len(r.Go) > 0 {
					ratio = fmt.Sprintf("%.3fx", pairedRatio(r.Go, r.LLMC))
				}
			} else if r.LLMCRun {
				llmc = "n/a"
			}
			fmt.Fprintf(tw, "%s\t%s\t", llmc, ratio)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

// formatNs formats the median of xs in ns with the spread of the runs:
// "1234567 ±2%" (half the range over the median), or "n/a".
func formatNs(xs []float64) string {
	if len(xs) == 0 {
		return "n/a"
	}
	m := median(xs)
	s := strconv.FormatFloat(m, 'f', 0, 64)
	if len(xs) > 1 && m > 0 {
		s += fmt.Sprintf(" ±%.0f%%", (slices.Max(xs)-slices.Min(xs))/2/m*100)
	}
	return s
}

// pairedRatio returns the median of the per-round ratios go[i]/torch[i]
// when both have a run for every round, else the ratio of the medians.
func pairedRatio(goNs, torchNs []float64) float64 {
	if len(goNs) != len(torchNs) {
		return median(goNs) / median(torchNs)
	}
	q := make([]float64, len(goNs))
	for i := range q {
		q[i] = goNs[i] / torchNs[i]
	}
	return median(q)
}

// median returns the median of xs (the mean of the middle two for an even
// count), or 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
