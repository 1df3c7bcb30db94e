package train

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/backpropgen/backpropgen/generated/mlp"
	"github.com/backpropgen/backpropgen/generated/mlpbn"
	"github.com/backpropgen/backpropgen/runtime"
)

// synthetic returns n examples of 784 features whose class is the index of
// the largest of the first 10 features: learnable in a few epochs.
func synthetic(t testing.TB, io runtime.IO[float32], n int, seed uint64) *Slices[float32] {
	if n == 0 { // training: 5 steps per epoch, the last partial
		n = 4*io.Batch + io.Batch/2
	} else if n == 1 { // validation: two batches, the last partial
		n = io.Batch + io.Batch/3
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	x := make([]float32, n*784)
	y := make([]int32, n)
	for i := range n {
		row := x[i*784 : (i+1)*784]
		for j := range row {
			row[j] = float32(rng.NormFloat64())
			if j >= 10 {
				row[j] *= 0.1
			}
		}
		best := 0
		for j := range 10 {
			if row[j] > row[best] {
				best = j
			}
		}
		y[i] = int32(best)
	}
	ds, err := NewSlices(io, n, [][]float32{x}, [][]int32{y})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// noisy augments a dataset with the rng Fit gives it: a resumed run must
// draw the same noise.
type noisy struct{ *Slices[float32] }

func (d noisy) Fill(io runtime.IO[float32], rows []int, rng *rand.Rand) {
	d.Slices.Fill(io, rows, rng)
	for _, f := range io.Inputs {
		for i := range f.Data[:len(rows)*f.Row] {
			f.Data[i] += float32(0.01 * rng.NormFloat64())
		}
	}
}

// plateau is a ReduceOnPlateau that a scripted val_loss (see scripted)
// makes halve the rate after epoch 2.
func plateau() *ReduceOnPlateau {
	return &ReduceOnPlateau{LR: 2e-3, Factor: 0.5, Patience: 1, Min: 1e-5}
}

// scripted replaces the validation loss by a rising one.
var scripted = Callback{EpochEnd: func(e *Epoch) error {
	e.Values["val_loss"] = 1 + float64(e.Epoch)/10
	return nil
}}

// models are the generated models the loop is tested on: a plain MLP, and
// one with batch norm (state) and dropout (the model's step counter).
var models = []struct {
	name string
	new  func() Model[float32]
}{
	{"mlp", func() Model[float32] { return mlp.New() }},
	{"mlpbn", func() Model[float32] { return mlpbn.New() }},
}

// config is a run of 3 epochs of 5 steps (the last partial) with a
// validation set, clipping, a warmup-cosine schedule and a checkpoint.
func config(dir string, val Dataset[float32]) Config[float32] {
	return Config[float32]{
		Epochs:     3,
		Schedule:   WarmupCosine{LR: 2e-3, Min: 1e-4, Warmup: 3},
		Clip:       1,
		Seed:       5,
		Validation: val,
		Checkpoint: filepath.Join(dir, "run.safetensors"),
	}
}

// params returns a copy of every parameter and state tensor of m.
func params(m Model[float32]) []float32 {
	var all []float32
	for _, t := range m.Tensors() {
		all = append(all, t.Data...)
	}
	return all
}

func equalBits(a, b []float32) int {
	if len(a) != len(b) {
		return 0
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return i
		}
	}
	return -1
}

// TestExactResume stops runs after several steps (mid-epoch, at an epoch's
// last step, in the last epoch) by cancelling the context, resumes each
// from its checkpoint in a fresh model and requires the parameters, the
// state and the history of an uninterrupted run, bit for bit.
func TestExactResume(t *testing.T) {
	for _, mc := range models {
		t.Run(mc.name, func(t *testing.T) {
			m := mc.new()
			data := noisy{synthetic(t, m.IO(), 0, 1)} // 5 steps per epoch
			val := synthetic(t, m.IO(), 1, 2)
			cfg := config(t.TempDir(), val)
			cfg.Schedule = plateau()
			cfg.Callbacks = []Callback{scripted}
			ref, err := Fit(context.Background(), m, data, cfg)
			if err != nil {
				t.Fatal(err)
			}
			want := params(m)
			if lr := ref.Epochs[2].Values["lr"]; lr != 1e-3 {
				t.Fatalf("uninterrupted run: lr %v in epoch 3, want 1e-3 (the plateau's halving)", lr)
			}
			if ref.Steps != 15 || len(ref.Epochs) != 3 {
				t.Fatalf("uninterrupted run: %d steps, %d epochs; want 15 and 3", ref.Steps, len(ref.Epochs))
			}
			for _, stopAt := range []int64{1, 4, 5, 12} {
				dir := t.TempDir()
				cfg := config(dir, val)
				cfg.Schedule = plateau()
				ctx, cancel := context.WithCancel(context.Background())
				cfg.Callbacks = []Callback{scripted, {StepEnd: func(s *Step) error {
					if s.Global+1 == stopAt {
						cancel()
					}
					return nil
				}}}
				m := mc.new()
				res, err := Fit(ctx, m, data, cfg)
				cancel()
				if err != nil {
					t.Fatal(err)
				}
				if !res.Interrupted || res.Steps != stopAt {
					t.Fatalf("stop at %d: interrupted %v after %d steps", stopAt, res.Interrupted, res.Steps)
				}
				cfg.Callbacks = []Callback{scripted}
				cfg.Resume = true
				cfg.Schedule = plateau()
				m = mc.new()
				res, err = Fit(context.Background(), m, data, cfg)
				if err != nil {
					t.Fatal(err)
				}
				if res.Resumed != stopAt || res.Steps != 15 {
					t.Errorf("stop at %d: resumed %d, %d steps in all", stopAt, res.Resumed, res.Steps)
				}
				if i := equalBits(params(m), want); i >= 0 {
					t.Errorf("stop at %d: resumed run's parameter or state element %d differs from the uninterrupted run's", stopAt, i)
				}
				for i, e := range res.Epochs {
					r := ref.Epochs[i]
					for k, v := range r.Values {
						if e.Values[k] != v {
							t.Errorf("stop at %d: epoch %d %s = %v, uninterrupted %v", stopAt, i+1, k, e.Values[k], v)
						}
					}
				}
			}
		})
	}
}

// TestSignalCheckpoint sends the process SIGINT in the middle of a run: Fit
// finishes the step, writes the checkpoint and returns; the checkpoint
// loads, and resuming from it ends where an uninterrupted run ends.
func TestSignalCheckpoint(t *testing.T) {
	m := mlp.New()
	data := synthetic(t, m.IO(), 0, 1)
	cfg := config(t.TempDir(), nil)
	if _, err := Fit(context.Background(), m, data, cfg); err != nil {
		t.Fatal(err)
	}
	want := params(m)

	dir := t.TempDir()
	cfg = config(dir, nil)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg.Callbacks = []Callback{{StepEnd: func(s *Step) error {
		if s.Global == 2 {
			return syscall.Kill(os.Getpid(), syscall.SIGINT)
		}
		if s.Global > 2 {
			<-ctx.Done() // the signal arrives asynchronously; wait for it rather than race
		}
		return nil
	}}}
	m = mlp.New()
	res, err := Fit(ctx, m, data, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Interrupted || res.Steps >= 15 {
		t.Fatalf("after SIGINT: interrupted %v, %d steps", res.Interrupted, res.Steps)
	}
	loaded := mlp.New()
	if _, err := loaded.LoadCheckpoint(cfg.Checkpoint, runtime.NewAdam[float32](mlp.NumParams, 1)); err != nil {
		t.Fatalf("checkpoint written at SIGINT: %v", err)
	}
	if i := equalBits(params(loaded), params(m)); i >= 0 {
		t.Fatalf("checkpoint written at SIGINT differs from the model at element %d", i)
	}
	cfg.Callbacks, cfg.Resume = nil, true
	m = mlp.New()
	if _, err := Fit(context.Background(), m, data, cfg); err != nil {
		t.Fatal(err)
	}
	if i := equalBits(params(m), want); i >= 0 {
		t.Errorf("resumed after SIGINT: element %d differs from the uninterrupted run", i)
	}
}

// TestEarlyStoppingRestoresBest scripts the monitored value so that epoch 2
// is the best and patience 2 runs out after epoch 4: training stops there
// with epoch 2's weights, which the best checkpoint also holds, and a
// resumed run keeps them.
func TestEarlyStoppingRestoresBest(t *testing.T) {
	m := mlpbn.New()
	data := synthetic(t, m.IO(), 0, 1)
	val := synthetic(t, m.IO(), 1, 2)
	dir := t.TempDir()
	cfg := config(dir, val)
	cfg.Epochs = 10
	cfg.EarlyStopping = &EarlyStopping{Patience: 2, RestoreBest: true}
	scripted := []float64{1.0, 0.5, 0.6, 0.55, 0.4, 0.3}
	var atEpoch [][]float32
	cfg.Callbacks = []Callback{{EpochEnd: func(e *Epoch) error {
		e.Values["val_loss"] = scripted[e.Epoch-1]
		atEpoch = append(atEpoch, params(m))
		return nil
	}}}
	var log bytes.Buffer
	cfg.Log = &log
	res, err := Fit(context.Background(), m, data, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Stopped || len(res.Epochs) != 4 || res.BestEpoch != 2 {
		t.Fatalf("stopped %v after %d epochs, best epoch %d; want a stop after 4, best 2", res.Stopped, len(res.Epochs), res.BestEpoch)
	}
	if i := equalBits(params(m), atEpoch[1]); i >= 0 {
		t.Errorf("after early stopping, element %d is not epoch 2's", i)
	}
	if slices.Equal(atEpoch[1], atEpoch[3]) {
		t.Fatal("epochs 2 and 4 have the same weights: the test cannot tell them apart")
	}
	if !strings.Contains(log.String(), "early stopping: val_loss has not improved for 2 epochs; best 0.5 at epoch 2 (restored)") {
		t.Errorf("log:\n%s\nwant the early-stopping line", log.String())
	}
	best := mlpbn.New()
	meta, err := best.LoadCheckpoint(filepath.Join(dir, "run-best.safetensors"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if meta[MetaBestEpoch] != "2" || equalBits(params(best), atEpoch[1]) >= 0 {
		t.Errorf("best checkpoint: epoch %q, or not epoch 2's weights", meta[MetaBestEpoch])
	}

	// A run stopped after epoch 3 and resumed stops after epoch 4 with
	// epoch 2's weights, read back from the best checkpoint.
	dir = t.TempDir()
	cfg.Checkpoint, cfg.BestCheckpoint, cfg.Log = filepath.Join(dir, "run.safetensors"), "", nil
	ctx, cancel := context.WithCancel(context.Background())
	atEpoch = nil
	m = mlpbn.New()
	cfg.Callbacks = append(cfg.Callbacks, Callback{EpochEnd: func(e *Epoch) error {
		if e.Epoch == 3 {
			cancel()
		}
		return nil
	}})
	if res, err = Fit(ctx, m, data, cfg); err != nil || !res.Interrupted {
		t.Fatalf("interrupted run: %v, %+v", err, res)
	}
	cancel()
	want := atEpoch[1]
	m = mlpbn.New()
	cfg.Resume = true
	if res, err = Fit(context.Background(), m, data, cfg); err != nil {
		t.Fatal(err)
	}
	if !res.Stopped || len(res.Epochs) != 4 || equalBits(params(m), want) >= 0 {
		t.Errorf("resumed: stopped %v after %d epochs; weights of epoch 2: %v", res.Stopped, len(res.Epochs), equalBits(params(m), want) < 0)
	}
}

// TestSchedules checks each schedule's rate at chosen steps.
func TestSchedules(t *testing.T) {
	const total = 100
	for _, tc := range []struct {
		name string
		s    Schedule
		step int64
		want float64
	}{
		{"constant", Constant{LR: 0.1}, 57, 0.1},
		{"step/0", StepDecay{LR: 1, Every: 30, Gamma: 0.1}, 0, 1},
		{"step/29", StepDecay{LR: 1, Every: 30, Gamma: 0.1}, 29, 1},
		{"step/30", StepDecay{LR: 1, Every: 30, Gamma: 0.1}, 30, 0.1},
		{"step/95", StepDecay{LR: 1, Every: 30, Gamma: 0.1}, 95, 1e-3},
		{"cosine/0", Cosine{LR: 1, Min: 0.1}, 0, 1},
		{"cosine/half", Cosine{LR: 1, Min: 0.1}, 50, 0.55},
		{"cosine/end", Cosine{LR: 1, Min: 0.1}, 100, 0.1},
		{"cosine/quarter", Cosine{LR: 1}, 25, 0.5 + 0.5*math.Sqrt2/2},
		{"warmup/0", WarmupCosine{LR: 1, Warmup: 10}, 0, 0.1},
		{"warmup/4", WarmupCosine{LR: 1, Warmup: 10}, 4, 0.5},
		{"warmup/9", WarmupCosine{LR: 1, Warmup: 10}, 9, 1},
		{"warmup/10", WarmupCosine{LR: 1, Warmup: 10}, 10, 1},
		{"warmup/55", WarmupCosine{LR: 1, Warmup: 10}, 55, 0.5},
		{"warmup/100", WarmupCosine{LR: 1, Min: 0.2, Warmup: 10}, 100, 0.2},
	} {
		if got := tc.s.At(tc.step, total); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%s: At(%d, %d) = %v, want %v", tc.name, tc.step, total, got, tc.want)
		}
	}

	// ReduceOnPlateau halves the rate after 2 epochs without an improvement
	// of more than 0.01, and stops at Min.
	p := &ReduceOnPlateau{LR: 1, Factor: 0.5, Patience: 2, MinDelta: 0.01, Min: 0.3}
	losses := []float64{1, 0.9, 0.895, 0.9, 0.8, 0.85, 0.81, 0.9, 0.9, 0.9, 0.9}
	want := []float64{1, 1, 1, 0.5, 0.5, 0.5, 0.3, 0.3, 0.3, 0.3, 0.3}
	for i, l := range losses {
		p.observe(l, true)
		if got := p.At(0, total); got != want[i] {
			t.Errorf("plateau: after epoch %d (loss %v): rate %v, want %v", i+1, l, got, want[i])
		}
	}
}

// TestProgress: output that is not a terminal gets no progress bar and no
// escape codes (a buffer, a file); a bar forced onto a buffer shows the
// steps, the rate and the loss, and clears itself.
func TestProgress(t *testing.T) {
	m := mlp.New()
	data := synthetic(t, m.IO(), 0, 1)
	file, err := os.Create(filepath.Join(t.TempDir(), "progress.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	var buf bytes.Buffer
	for _, w := range []interface {
		Write([]byte) (int, error)
	}{&buf, file} {
		cfg := config(t.TempDir(), nil)
		cfg.Progress = w
		if _, err := Fit(context.Background(), m, data, cfg); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := os.ReadFile(file.Name())
	if buf.Len() != 0 || len(got) != 0 {
		t.Errorf("progress written to a non-terminal: %q, %q", buf.String(), got)
	}

	cfg := config(t.TempDir(), nil)
	cfg.Progress, cfg.forceBar = &buf, true
	cfg.Callbacks = []Callback{{StepEnd: func(*Step) error { time.Sleep(120 * time.Millisecond); return nil }}}
	if _, err := Fit(context.Background(), m, data, cfg); err != nil {
		t.Fatal(err)
	}
	s := buf.String()
	for _, want := range []string{"\r", "epoch 3/3 loss ", "/5, ", "steps/s", "% ["} {
		if !strings.Contains(s, want) {
			t.Errorf("forced bar %q: want %q in it", s, want)
		}
	}
	if last := s[strings.LastIndexByte(s, '\r'):]; strings.TrimSpace(last) != "" {
		t.Errorf("bar not cleared: ends with %q", last)
	}
}

// TestOutputs: the summary lines, a JSON-lines and a CSV metrics file (each
// epoch once, also after a resume) and a PNG plot.
func TestOutputs(t *testing.T) {
	m := mlp.New()
	data := synthetic(t, m.IO(), 0, 1)
	val := synthetic(t, m.IO(), 1, 2)
	dir := t.TempDir()
	for _, name := range []string{"metrics.jsonl", "metrics.csv"} {
		cfg := config(dir, val)
		var log bytes.Buffer
		cfg.Log, cfg.MetricsFile, cfg.Plot = &log, filepath.Join(dir, name), filepath.Join(dir, "curves.png")
		ctx, cancel := context.WithCancel(context.Background())
		cfg.Callbacks = []Callback{{StepEnd: func(s *Step) error {
			if s.Global == 7 {
				cancel()
			}
			return nil
		}}}
		if _, err := Fit(ctx, m, data, cfg); err != nil {
			t.Fatal(err)
		}
		cancel()
		cfg.Callbacks, cfg.Resume = nil, true
		if _, err := Fit(context.Background(), m, data, cfg); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(log.String()), "\n")
		if len(lines) != 5 || lines[1] != "interrupted after step 8: "+cfg.Checkpoint+" holds the run; resume from it to continue" ||
			lines[2] != "resumed from "+cfg.Checkpoint+" 3 steps into epoch 2 (step 8 of the run)" ||
			!strings.HasPrefix(lines[4], "epoch 3/3  loss ") || !strings.Contains(lines[4], "  val_accuracy ") {
			t.Errorf("summary lines:\n%s", log.String())
		}
		b, err := os.ReadFile(cfg.MetricsFile)
		if err != nil {
			t.Fatal(err)
		}
		rec := strings.Split(strings.TrimSpace(string(b)), "\n")
		switch name {
		case "metrics.jsonl":
			if len(rec) != 3 || !strings.HasPrefix(rec[0], `{"accuracy":`) || !strings.Contains(rec[2], `"epoch":3,`) {
				t.Errorf("%s:\n%s", name, b)
			}
		case "metrics.csv":
			if len(rec) != 4 || rec[0] != "epoch,steps,seconds,loss,accuracy,val_loss,val_accuracy,lr" || !strings.HasPrefix(rec[3], "3,15,") {
				t.Errorf("%s:\n%s", name, b)
			}
		}
	}
	f, err := os.Open(filepath.Join(dir, "curves.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() < 800 || b.Dy() < 300 {
		t.Errorf("plot is %v", b)
	}
}

// TestErrors: a failing step names its place and leaves a checkpoint of
// the steps before it; bad settings are refused before anything runs.
func TestErrors(t *testing.T) {
	m := mlp.New()
	data := synthetic(t, m.IO(), 0, 1)
	dir := t.TempDir()
	cfg := config(dir, nil)
	cfg.Callbacks = []Callback{{EpochStart: func(epoch int) error {
		if epoch == 2 {
			data.Inputs[0][3*784+5] = float32(math.NaN()) // poisons a row of epoch 2
		}
		return nil
	}}}
	res, err := Fit(context.Background(), m, data, cfg)
	data.Inputs[0][3*784+5] = 0
	if err == nil || !strings.Contains(err.Error(), "epoch 2, step ") || !strings.Contains(err.Error(), "is NaN") || !strings.Contains(err.Error(), "run.safetensors holds the run up to the last complete step") {
		t.Fatalf("NaN input: %v", err)
	}
	if res.Steps < 5 || res.Steps >= 10 {
		t.Errorf("failed after %d steps", res.Steps)
	}
	cfg.Callbacks, cfg.Resume = nil, true
	if _, err := Fit(context.Background(), mlp.New(), data, cfg); err != nil {
		t.Errorf("resume after the failed step: %v", err)
	}

	for _, tc := range []struct {
		edit func(*Config[float32])
		want string
	}{
		{func(c *Config[float32]) { c.Epochs = 0 }, "set Config.Epochs or Config.Steps"},
		{func(c *Config[float32]) { c.Schedule = nil }, "no learning-rate schedule"},
		{func(c *Config[float32]) { c.Clip = math.NaN() }, "Clip NaN"},
		{func(c *Config[float32]) { c.Monitor = "val_loss" }, `Monitor "val_loss" needs a Validation set`},
		{func(c *Config[float32]) { c.Checkpoint = filepath.Join(dir, "none.safetensors"); c.Resume = true }, "none.safetensors does not exist"},
		{func(c *Config[float32]) { c.Seed = 6; c.Resume = true }, "is of a run with seed 5"},
		{func(c *Config[float32]) { c.Schedule = StepDecay{LR: 1, Gamma: 0.5} }, "StepDecay every 0 steps"},
	} {
		c := config(dir, nil)
		tc.edit(&c)
		if _, err := Fit(context.Background(), mlp.New(), data, c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want an error saying %q", err, tc.want)
		}
	}
	if _, err := Fit(context.Background(), mlpbn.New(), synthetic(t, mlpbn.New().IO(), 0, 1), func() Config[float32] {
		c := config(dir, nil)
		c.Resume = true
		return c
	}()); err == nil || !strings.Contains(err.Error(), `holds model "mlp", not "mlpbn"`) {
		t.Errorf("resume into another model: %v", err)
	}
	if _, err := Fit(context.Background(), mlp.New(), data, func() Config[float32] {
		c := config(dir, nil)
		c.Callbacks = []Callback{{StepEnd: func(s *Step) error { return errors.New("callback failed") }}}
		return c
	}()); err == nil || !strings.Contains(err.Error(), "epoch 1, step 1 (step 1 of the run): callback failed") {
		t.Errorf("callback error: %v", err)
	}
}

// TestStepAllocs: a step of the loop (data, gradients, clipping, schedule,
// optimizer, accuracy, bookkeeping) allocates nothing.
func TestStepAllocs(t *testing.T) {
	m := mlpbn.New()
	data := synthetic(t, m.IO(), 0, 1)
	cfg := config(t.TempDir(), nil)
	cfg.Callbacks = []Callback{{AfterGradients: func(*Step) error { return nil }, StepEnd: func(*Step) error { return nil }}}
	rows := make([]int, data.Len())
	for i := range rows {
		rows[i] = len(rows) - 1 - i
	}
	f, err := newFit(m, Dataset[float32](&Subset[float32]{Of: data, Rows: rows}), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.start(); err != nil {
		t.Fatal(err)
	}
	f.order(1)
	allocs := testing.AllocsPerRun(50, func() {
		f.st.Step = 0
		if err := f.trainStep(1); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per step, want 0", allocs)
	}
}

// TestAccuracyTokens: a language model's token inputs are not what its
// output predicts; the accuracy counts its one label input (the next
// tokens), and none is kept for a model with two label inputs.
func TestAccuracyTokens(t *testing.T) {
	tokens := runtime.LabelFeed{Name: "t", Data: []int32{2, 2, 2, 2}, Row: 2, Classes: 3, Tokens: true}
	next := runtime.LabelFeed{Name: "y", Data: []int32{0, 1, 2, 0}, Row: 2, Classes: 3}
	io := runtime.IO[float32]{Batch: 2, Labels: []runtime.LabelFeed{tokens, next}, OutputRow: 6}
	a := newAccuracy(io)
	if a == nil {
		t.Fatal("no accuracy for a model with token inputs and one label")
	}
	// Scores of four positions: argmax 0, 1, 0, 0: three match y, one
	// matches t.
	out := []float32{5, 1, 0, 0, 5, 1, 9, 0, 0, 3, 2, 1}
	if got := a.count(out, 2); got != 3 {
		t.Errorf("count = %d, want 3 (matching y, not t)", got)
	}
	io.Labels = []runtime.LabelFeed{next, next}
	if newAccuracy(io) != nil {
		t.Error("an accuracy for a model with two label inputs: which one the output predicts is unknown")
	}
}
