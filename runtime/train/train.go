package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/backpropgen/backpropgen/runtime"
)

// Model is what Fit needs of a model: every generated package's *Model has
// these methods.
type Model[T runtime.Float] interface {
	IO() runtime.IO[T]
	Init(seed uint64)
	Gradients(n int) (T, error)
	Evaluate(n int) (T, error)
	Output(n int) []T
	Tensors() []runtime.Tensor[T]
	SaveCheckpoint(path string, opt runtime.Optimizer[T], meta map[string]string) error
	LoadCheckpoint(path string, opt runtime.Optimizer[T]) (map[string]string, error)
}

// stepper is a model that applies the optimizer's step itself (Parallel,
// on its workers).
type stepper[T runtime.Float] interface {
	Step(opt runtime.Optimizer[T])
}

// Config is a training run. The zero value of every field but Schedule (or
// Optimizer) and Epochs (or Steps) is a sensible default.
type Config[T runtime.Float] struct {
	// How long: Epochs passes over the data, or Steps optimizer steps in
	// all when Steps > 0 (the last epoch may then be partial). EpochSteps,
	// when > 0, caps the steps of one epoch (a pass over part of the data).
	Epochs     int
	Steps      int64
	EpochSteps int

	// The optimizer (nil: Adam) and the learning rate of every step.
	// Schedule sets the optimizer's rate before each step.
	Optimizer runtime.Scheduled[T]
	Schedule  Schedule

	// Clip, when > 0, scales the gradients to a global L2 norm of at most
	// Clip before each step (runtime.ClipGradNorm).
	Clip float64

	// Seed seeds the initialization (Init), the data order and the
	// augmentation's random numbers (Dataset.Fill).
	Seed uint64
	// Sequential keeps the data in order instead of shuffling it every
	// epoch (truncated BPTT over streams, where step k reads window k).
	Sequential bool
	// KeepWeights starts from the model's current parameters (set or
	// loaded by the caller, for fine-tuning) instead of Init(Seed).
	KeepWeights bool

	// Validation, when not nil, is evaluated in inference mode after every
	// epoch: its loss, accuracy (for class labels) and Metrics.
	Validation Dataset[T]
	Metrics    []Metric[T]

	// Monitor names the epoch value that early stopping, ReduceOnPlateau
	// and the best checkpoint watch: "val_loss" (the default with
	// Validation, else "loss"), "val_accuracy", or any metric's "val_"
	// name. Values whose name ends in "loss" are better lower, the others
	// higher (Keras' "auto" mode).
	Monitor       string
	EarlyStopping *EarlyStopping

	// Checkpoint, when not "", is written at the end of every epoch,
	// every CheckpointEvery steps when > 0, when ctx is cancelled (SIGINT,
	// SIGTERM) and before Fit returns an error from a step. Resume
	// continues the run it holds. BestCheckpoint, when not "", is written
	// whenever the monitored value improves (by default, with early
	// stopping that restores the best weights, Checkpoint with "-best"
	// before its extension).
	Checkpoint      string
	CheckpointEvery int64
	BestCheckpoint  string
	Resume          bool
	// Meta is added to every checkpoint's metadata.
	Meta map[string]string

	// Carry lists buffers that the callbacks carry from step to step (the
	// recurrent state of truncated BPTT): checkpoints save them, so a
	// resumed run carries what an uninterrupted one would.
	Carry []runtime.Tensor[T]

	// Callbacks run at the points of the loop they name.
	Callbacks []Callback

	// What a person looks at: a progress bar on Progress when it is a
	// terminal (nothing otherwise), a summary line per epoch on Log, the
	// epochs' values appended to MetricsFile (JSON lines, or CSV when its
	// name ends in .csv) and the loss and accuracy curves drawn to Plot
	// (a PNG) after every epoch. Any may be nil or "".
	Progress    io.Writer
	Log         io.Writer
	MetricsFile string
	Plot        string
	// PointsPerEpoch is how many training-loss points per epoch the
	// history keeps for the plot (default 20).
	PointsPerEpoch int

	forceBar bool // draw the bar on Progress even when it is no terminal (tests)
}

// EarlyStopping ends training when the monitored value has not improved by
// more than MinDelta for Patience epochs, as Keras' EarlyStopping does;
// with RestoreBest, the parameters and state of the best epoch are
// restored when it stops.
type EarlyStopping struct {
	Patience    int
	MinDelta    float64
	RestoreBest bool
}

// Callback holds functions that Fit calls; nil ones are skipped. An error
// stops training and Fit returns it (after writing the checkpoint), except
// ErrStop, which ends training as if it were complete.
type Callback struct {
	// EpochStart runs before the first step of each epoch (1-based).
	EpochStart func(epoch int) error
	// AfterGradients runs after the step's gradients are computed, before
	// clipping and the optimizer: it may read or change io.Grads, or carry
	// recurrent state into the next step's inputs.
	AfterGradients func(s *Step) error
	// StepEnd runs after the optimizer step.
	StepEnd func(s *Step) error
	// EpochEnd runs after the epoch's validation, with its values; it may
	// add values to e.Values, which the summary, metrics file and
	// monitor then see.
	EpochEnd func(e *Epoch) error
}

// ErrStop, returned by a callback, ends training early without an error.
var ErrStop = errors.New("train: stop requested by a callback")

// Step describes the step in progress to callbacks.
type Step struct {
	Epoch  int   // 1-based
	Step   int   // 0-based, within the epoch
	Global int64 // 0-based over the run
	Total  int64 // steps in the whole run
	Rows   []int // the dataset rows in the batch
	Loss   float64
	LR     float64
	Norm   float64 // the gradients' global L2 norm before clipping (0 unless Clip > 0)
}

// Epoch is the outcome of an epoch: the mean training loss (and accuracy,
// for class labels, from the training-mode outputs), the validation values,
// the learning rate at its last step and its wall time.
type Epoch struct {
	Epoch   int
	Steps   int64 // global step count at its end
	Values  map[string]float64
	Seconds float64
}

// Point is a training-loss point for the plot: the mean loss of the steps
// since the previous point, at a fractional epoch.
type Point struct {
	Epoch float64 `json:"epoch"`
	Loss  float64 `json:"loss"`
}

// Result is the outcome of Fit.
type Result struct {
	Epochs      []Epoch // every epoch of the run, including those before a resume
	Points      []Point
	Steps       int64 // optimizer steps taken in all
	Resumed     int64 // steps restored from the checkpoint
	BestEpoch   int   // the epoch of the best monitored value (0: none)
	Best        float64
	Stopped     bool // early stopping (or ErrStop) ended training
	Interrupted bool // ctx was cancelled; Checkpoint holds the run
}

// Fit trains m on data as cfg says. It returns when the run is complete,
// early stopping ends it, ctx is cancelled (after finishing the step and
// writing the checkpoint: res.Interrupted) or a step fails (an error that
// names the epoch and step, with the checkpoint written before the step).
func Fit[T runtime.Float](ctx context.Context, m Model[T], data Dataset[T], cfg Config[T]) (*Result, error) {
	f, err := newFit(m, data, cfg)
	if err != nil {
		return nil, err
	}
	defer f.close()
	if err := f.start(); err != nil {
		return nil, err
	}
	return f.run(ctx)
}

// fit is one run of Fit.
type fit[T runtime.Float] struct {
	cfg      Config[T]
	m        Model[T]
	io       runtime.IO[T]
	data     Dataset[T]
	opt      runtime.Scheduled[T]
	save     runtime.Optimizer[T] // opt, with Carry in its state
	perEpoch int                  // steps per epoch
	total    int64
	minimize bool
	points   int // steps per plot point

	st     state // what a checkpoint saves of the loop
	res    Result
	perm   []int
	rows   []int // validation rows
	rng    *rand.Rand
	pcg    *rand.PCG
	acc    *accuracy[T]
	best   []T // parameters and state of the best epoch, for RestoreBest
	bar    *bar
	out    *metricsFile
	step   Step
	epochT time.Time
}

func newFit[T runtime.Float](m Model[T], data Dataset[T], cfg Config[T]) (*fit[T], error) {
	io := m.IO()
	if data == nil || data.Len() == 0 {
		return nil, fmt.Errorf("train: no training examples for model %s", io.Model)
	}
	if cfg.Epochs < 0 || cfg.Steps < 0 || cfg.EpochSteps < 0 || cfg.CheckpointEvery < 0 || cfg.PointsPerEpoch < 0 {
		return nil, fmt.Errorf("train: negative Epochs (%d), Steps (%d), EpochSteps (%d), CheckpointEvery (%d) or PointsPerEpoch (%d)", cfg.Epochs, cfg.Steps, cfg.EpochSteps, cfg.CheckpointEvery, cfg.PointsPerEpoch)
	}
	if cfg.Epochs == 0 && cfg.Steps == 0 {
		return nil, fmt.Errorf("train: set Config.Epochs or Config.Steps to say how long to train")
	}
	if !(cfg.Clip >= 0) || math.IsInf(cfg.Clip, 0) {
		return nil, fmt.Errorf("train: Clip %v: want a maximum gradient norm > 0, or 0 for none", cfg.Clip)
	}
	if cfg.Optimizer == nil && cfg.Schedule == nil {
		return nil, validate(nil)
	}
	if cfg.Schedule == nil {
		cfg.Schedule = Constant{LR: float64(lrOf(cfg.Optimizer))}
	}
	if err := validate(cfg.Schedule); err != nil {
		return nil, err
	}
	if cfg.Resume && cfg.Checkpoint == "" {
		return nil, fmt.Errorf("train: Resume needs a Checkpoint file")
	}
	if cfg.Validation != nil && cfg.Validation.Len() == 0 {
		return nil, fmt.Errorf("train: the validation set is empty; leave Validation nil for none")
	}
	f := &fit[T]{cfg: cfg, m: m, io: io, data: data}
	f.perEpoch = (data.Len() + io.Batch - 1) / io.Batch
	if cfg.EpochSteps > 0 {
		f.perEpoch = min(f.perEpoch, cfg.EpochSteps)
	}
	f.total = int64(cfg.Epochs) * int64(f.perEpoch)
	if cfg.Steps > 0 {
		f.total = cfg.Steps
	}
	if f.cfg.Monitor == "" {
		f.cfg.Monitor = "loss"
		if cfg.Validation != nil {
			f.cfg.Monitor = "val_loss"
		}
	}
	if strings.HasPrefix(f.cfg.Monitor, "val_") && cfg.Validation == nil {
		return nil, fmt.Errorf("train: Monitor %q needs a Validation set", f.cfg.Monitor)
	}
	f.minimize = strings.HasSuffix(f.cfg.Monitor, "loss")
	if r, ok := m.(interface{ Rank() int }); ok && r.Rank() != 0 {
		// One of several processes training one model: rank 0 speaks and
		// writes the files (the model saves checkpoints on rank 0 only).
		f.cfg.Log, f.cfg.Progress, f.cfg.MetricsFile, f.cfg.Plot = nil, nil, "", ""
	}
	if es := cfg.EarlyStopping; es != nil && es.RestoreBest && cfg.Checkpoint != "" && cfg.BestCheckpoint == "" {
		f.cfg.BestCheckpoint = bestName(cfg.Checkpoint)
	}
	ppe := cfg.PointsPerEpoch
	if ppe == 0 {
		ppe = 20
	}
	f.points = max(1, f.perEpoch/ppe)

	f.opt = cfg.Optimizer
	if f.opt == nil {
		f.opt = runtime.NewAdam[T](len(io.Params), T(cfg.Schedule.At(0, f.total)))
	}
	f.save = f.opt
	if len(cfg.Carry) > 0 {
		f.save = &carrying[T]{Scheduled: f.opt, carry: carried(cfg.Carry)}
	}
	f.perm = make([]int, data.Len())
	f.rows = make([]int, io.Batch)
	f.pcg = rand.NewPCG(0, 0)
	f.rng = rand.New(f.pcg)
	f.acc = newAccuracy(io)
	f.step.Total = f.total
	if es := cfg.EarlyStopping; es != nil && es.RestoreBest {
		f.best = make([]T, 0, len(io.Params))
	}
	return f, nil
}

// lrOf reads the learning rate of the built-in optimizers.
func lrOf[T runtime.Float](opt runtime.Scheduled[T]) T {
	switch o := opt.(type) {
	case *runtime.Adam[T]:
		return o.LR
	case *runtime.SGD[T]:
		return o.LR
	}
	return 0
}

// bestName is the default best checkpoint of path: mlp.safetensors →
// mlp-best.safetensors.
func bestName(path string) string {
	if i := strings.LastIndexByte(path, '.'); i > strings.LastIndexByte(path, '/') {
		return path[:i] + "-best" + path[i:]
	}
	return path + "-best"
}

// start initializes or resumes the run and opens the outputs.
func (f *fit[T]) start() error {
	if f.cfg.Resume {
		if err := f.resume(); err != nil {
			return err
		}
		if f.cfg.Log != nil {
			at := fmt.Sprintf("%d steps into epoch %d", f.st.Step, f.st.Epoch+1)
			if f.st.Step == 0 {
				at = fmt.Sprintf("after epoch %d", f.st.Epoch)
			}
			fmt.Fprintf(f.cfg.Log, "resumed from %s %s (step %d of the run)\n", f.cfg.Checkpoint, at, f.st.Global)
		}
	} else if !f.cfg.KeepWeights {
		f.m.Init(f.cfg.Seed)
	}
	// Room for every plot point of the run, so that steps do not allocate.
	n := int(f.total/int64(f.points)) + int(f.epochs()) + 1
	f.st.Points = slices.Grow(f.st.Points, n)
	if f.cfg.MetricsFile != "" {
		out, err := openMetrics(f.cfg.MetricsFile, f.res.Epochs)
		if err != nil {
			return err
		}
		f.out = out
	}
	if f.cfg.Progress != nil && (f.cfg.forceBar || isTerminal(f.cfg.Progress)) {
		f.bar = newBar(f.cfg.Progress, f.cfg.forceBar)
	}
	return nil
}

func (f *fit[T]) close() {
	if f.out != nil {
		f.out.close()
	}
}

// run is the loop: epochs of steps, until the run is complete.
func (f *fit[T]) run(ctx context.Context) (*Result, error) {
	done := ctx.Done()
	for (f.st.Global < f.total || f.st.Step > 0) && !f.res.Stopped { // Step > 0: an epoch to finish
		epoch := f.st.Epoch + 1
		if f.st.Step == 0 {
			if err := f.callbacks(func(c Callback) error { return call(c.EpochStart, epoch) }); err != nil {
				return f.stop(err)
			}
		}
		f.order(epoch)
		steps := min(int64(f.perEpoch), f.total-f.st.Global+int64(f.st.Step))
		f.bar.start(fmt.Sprintf("epoch %d/%d", epoch, f.epochs()), steps, f.st.Step)
		f.epochT = time.Now()
		for int64(f.st.Step) < steps {
			if err := f.trainStep(epoch); err != nil {
				f.bar.clear()
				return f.fail(err)
			}
			if f.cfg.CheckpointEvery > 0 && f.st.Global%f.cfg.CheckpointEvery == 0 && int64(f.st.Step) < steps {
				if err := f.checkpoint(f.cfg.Checkpoint); err != nil {
					f.bar.clear()
					return nil, err
				}
			}
			select {
			case <-done:
				f.bar.clear()
				f.res.Interrupted = true
				f.st.Seconds += time.Since(f.epochT).Seconds()
				// Even after an epoch's last step, stop now: a resumed run
				// starts with the epoch's end (its validation).
				err := f.checkpoint(f.cfg.Checkpoint)
				if f.cfg.Log != nil && err == nil {
					if f.cfg.Checkpoint == "" {
						fmt.Fprintf(f.cfg.Log, "interrupted after step %d; without a checkpoint the run is not saved\n", f.st.Global)
					} else {
						fmt.Fprintf(f.cfg.Log, "interrupted after step %d: %s holds the run; resume from it to continue\n", f.st.Global, f.cfg.Checkpoint)
					}
				}
				return f.result(err)
			default:
			}
		}
		f.bar.clear()
		f.st.Seconds += time.Since(f.epochT).Seconds()
		if err := f.endEpoch(epoch); err != nil {
			return f.stop(err)
		}
		if err := f.checkpoint(f.cfg.Checkpoint); err != nil {
			return nil, err
		}
	}
	return f.result(nil)
}

// epochs is the number of epochs of the run, for the bar's label.
func (f *fit[T]) epochs() int64 {
	return (f.total + int64(f.perEpoch) - 1) / int64(f.perEpoch)
}

// order puts the rows of the epoch in f.perm.
func (f *fit[T]) order(epoch int) {
	if f.cfg.Sequential {
		for i := range f.perm {
			f.perm[i] = i
		}
		return
	}
	shuffle(f.perm, f.cfg.Seed, epoch)
}

// trainStep takes step f.st.Step of the epoch.
func (f *fit[T]) trainStep(epoch int) error {
	b := f.io.Batch
	lo := f.st.Step * b
	rows := f.perm[lo:min(lo+b, len(f.perm))]
	n := len(rows)
	s := &f.step
	*s = Step{Epoch: epoch, Step: f.st.Step, Global: f.st.Global, Total: f.total, Rows: rows}
	f.pcg.Seed(f.cfg.Seed^0x9e3779b97f4a7c15, uint64(f.st.Global))
	f.data.Fill(f.io, rows, f.rng)
	loss, err := f.m.Gradients(n)
	if err != nil {
		return err
	}
	s.Loss = float64(loss)
	if err := f.callbacks(func(c Callback) error { return call(c.AfterGradients, s) }); err != nil {
		return err
	}
	if f.cfg.Clip > 0 {
		s.Norm = runtime.ClipGradNorm(f.io.Grads, f.cfg.Clip)
		if math.IsNaN(s.Norm) || math.IsInf(s.Norm, 0) {
			return fmt.Errorf("the gradients' norm is %v after the callbacks: parameters not updated", s.Norm)
		}
	}
	s.LR = f.cfg.Schedule.At(f.st.Global, f.total)
	f.opt.SetLR(s.LR)
	if st, ok := f.m.(stepper[T]); ok {
		st.Step(f.opt)
	} else {
		f.opt.Step(f.io.Params, f.io.Grads)
	}
	f.st.LR = s.LR

	f.st.LossSum += s.Loss * float64(n)
	f.st.Seen += n
	if f.acc != nil {
		f.st.Correct += f.acc.count(f.m.Output(n), n)
	}
	f.st.PointSum += s.Loss
	f.st.PointSteps++
	f.st.Step++
	f.st.Global++
	if f.st.PointSteps == f.points || f.st.Step == f.perEpoch {
		f.st.Points = append(f.st.Points, Point{
			Epoch: float64(epoch-1) + float64(f.st.Step)/float64(f.perEpoch),
			Loss:  f.st.PointSum / float64(f.st.PointSteps),
		})
		f.st.PointSum, f.st.PointSteps = 0, 0
	}
	if err := f.callbacks(func(c Callback) error { return call(c.StepEnd, s) }); err != nil {
		return err
	}
	f.bar.update(f.st.Step, f.st.LossSum/float64(f.st.Seen))
	return nil
}

// endEpoch validates, records and reports the epoch, and decides on early
// stopping.
func (f *fit[T]) endEpoch(epoch int) error {
	e := Epoch{Epoch: epoch, Steps: f.st.Global, Values: map[string]float64{}}
	e.Values["loss"] = f.st.LossSum / float64(max(f.st.Seen, 1))
	if f.acc != nil {
		e.Values["accuracy"] = float64(f.st.Correct) / float64(max(f.st.Seen*f.acc.per, 1))
	}
	e.Values["lr"] = f.st.LR
	if f.cfg.Validation != nil {
		t0 := time.Now()
		if err := f.validate(e.Values); err != nil {
			return err
		}
		f.st.Seconds += time.Since(t0).Seconds()
	}
	e.Seconds = f.st.Seconds // training and validation
	if err := f.callbacks(func(c Callback) error { return call(c.EpochEnd, &e) }); err != nil && !errors.Is(err, ErrStop) {
		return err
	} else if err != nil {
		f.res.Stopped = true
	}
	v, ok := e.Values[f.cfg.Monitor]
	if !ok {
		return fmt.Errorf("train: Monitor %q is none of the epoch's values (%s)", f.cfg.Monitor, strings.Join(keys(e.Values), ", "))
	}
	if p, ok := f.cfg.Schedule.(*ReduceOnPlateau); ok {
		p.observe(v, f.minimize)
	}
	if err := f.monitor(epoch, v); err != nil {
		return err
	}
	f.res.Epochs = append(f.res.Epochs, e)
	f.st.Epoch, f.st.Step = epoch, 0
	f.st.LossSum, f.st.Seen, f.st.Correct, f.st.Seconds = 0, 0, 0, 0
	if f.cfg.Log != nil {
		fmt.Fprintln(f.cfg.Log, summary(e, f.epochs()))
	}
	if f.out != nil {
		if err := f.out.write(e); err != nil {
			return err
		}
	}
	if f.cfg.Plot != "" {
		if err := drawPlot(f.cfg.Plot, f.io.Model, f.res.Epochs, f.st.Points); err != nil {
			return err
		}
	}
	return nil
}

// monitor keeps the best value (and its weights and checkpoint) and runs
// early stopping.
func (f *fit[T]) monitor(epoch int, v float64) error {
	st := &f.st.Early
	if !st.Started || improved(v, st.Best, f.minDelta(), f.minimize) {
		st.Started, st.Best, st.BestEpoch, st.Wait = true, v, epoch, 0
		if f.best != nil {
			f.best = f.best[:0]
			for _, t := range f.m.Tensors() {
				f.best = append(f.best, t.Data...)
			}
		}
		if f.cfg.BestCheckpoint != "" {
			meta := f.meta()
			meta[MetaBestEpoch] = fmt.Sprint(epoch)
			if err := f.m.SaveCheckpoint(f.cfg.BestCheckpoint, nil, meta); err != nil {
				return err
			}
		}
		return nil
	}
	st.Wait++
	es := f.cfg.EarlyStopping
	if es == nil || st.Wait < max(es.Patience, 1) {
		return nil
	}
	f.res.Stopped = true
	if es.RestoreBest {
		k := 0
		for _, t := range f.m.Tensors() {
			k += copy(t.Data, f.best[k:])
		}
	}
	if f.cfg.Log != nil {
		fmt.Fprintf(f.cfg.Log, "early stopping: %s has not improved for %d epochs; best %.6g at epoch %d%s\n",
			f.cfg.Monitor, st.Wait, st.Best, st.BestEpoch, map[bool]string{true: " (restored)"}[es.RestoreBest])
	}
	return nil
}

func (f *fit[T]) minDelta() float64 {
	if es := f.cfg.EarlyStopping; es != nil {
		return es.MinDelta
	}
	return 0
}

// validate evaluates the validation set in inference mode.
func (f *fit[T]) validate(values map[string]float64) error {
	v := f.cfg.Validation
	for _, mt := range f.cfg.Metrics {
		mt.Reset()
	}
	var sum float64
	correct, b := 0, f.io.Batch
	for lo := 0; lo < v.Len(); lo += b {
		n := min(b, v.Len()-lo)
		rows := f.rows[:n]
		for i := range rows {
			rows[i] = lo + i
		}
		v.Fill(f.io, rows, f.rng)
		loss, err := f.m.Evaluate(n)
		if err != nil {
			return fmt.Errorf("validation rows %d..%d: %w", lo, lo+n-1, err)
		}
		sum += float64(loss) * float64(n)
		out := f.m.Output(n)
		if f.acc != nil {
			correct += f.acc.count(out, n)
		}
		for _, mt := range f.cfg.Metrics {
			mt.Add(f.io, out, n)
		}
	}
	values["val_loss"] = sum / float64(v.Len())
	if f.acc != nil {
		values["val_accuracy"] = float64(correct) / float64(v.Len()*f.acc.per)
	}
	for _, mt := range f.cfg.Metrics {
		values["val_"+mt.Name()] = mt.Value()
	}
	return nil
}

// fail saves the run up to the last complete step and returns err
// with the place and the way back.
func (f *fit[T]) fail(err error) (*Result, error) {
	s := &f.step
	where := fmt.Sprintf("epoch %d, step %d (step %d of the run)", s.Epoch, s.Step+1, s.Global+1)
	for _, in := range f.io.Inputs { // name the example, not just its row in the batch
		if i := runtime.FirstNonFinite(in.Data[:len(s.Rows)*in.Row]); i >= 0 {
			where += fmt.Sprintf(", example %d of the dataset in batch row %d", s.Rows[i/in.Row], i/in.Row)
			break
		}
	}
	if f.cfg.Checkpoint == "" {
		return &f.res, fmt.Errorf("%s: %w", where, err)
	}
	if serr := f.checkpoint(f.cfg.Checkpoint); serr != nil {
		return &f.res, fmt.Errorf("%s: %w (and writing the checkpoint failed: %v)", where, err, serr)
	}
	return f.result(fmt.Errorf("%s: %w; %s holds the run up to the last complete step: resume from it once the cause is fixed", where, err, f.cfg.Checkpoint))
}

// stop ends the run after a callback's or an epoch's error, keeping the
// checkpoint of the last complete step.
func (f *fit[T]) stop(err error) (*Result, error) {
	if errors.Is(err, ErrStop) {
		f.res.Stopped = true
		return f.result(f.checkpoint(f.cfg.Checkpoint))
	}
	if f.cfg.Checkpoint != "" {
		if serr := f.checkpoint(f.cfg.Checkpoint); serr != nil {
			return &f.res, fmt.Errorf("%w (and writing the checkpoint failed: %v)", err, serr)
		}
	}
	return f.result(err)
}

func (f *fit[T]) result(err error) (*Result, error) {
	f.res.Points = f.st.Points
	f.res.Steps = f.st.Global
	f.res.BestEpoch, f.res.Best = f.st.Early.BestEpoch, f.st.Early.Best
	return &f.res, err
}

func (f *fit[T]) callbacks(run func(Callback) error) error {
	for _, c := range f.cfg.Callbacks {
		if err := run(c); err != nil {
			return err
		}
	}
	return nil
}

func call[A any](fn func(A) error, a A) error {
	if fn == nil {
		return nil
	}
	return fn(a)
}
