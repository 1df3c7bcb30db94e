package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"

	"github.com/backpropgen/backpropgen/examples/internal/mnistdata"
	"github.com/backpropgen/backpropgen/runtime"
	"github.com/backpropgen/backpropgen/runtime/mpi"
	"github.com/backpropgen/backpropgen/runtime/train"
)

// Config holds the training settings (the command-line flags).
type Config struct {
	Model      string  // one of archs
	Epochs     int     // total epochs, counting those restored by Resume
	LR         float64 // Adam's peak learning rate
	Schedule   string  // "cosine" or "constant"
	Clip       float64 // maximum global gradient norm; 0: no clipping
	Shift      int     // random shifts of the training images, in pixels; 0: none
	Seed       uint64  // initialization, shuffling and augmentation seed
	Checkpoint string  // written after every epoch and at an interrupt; "" for none
	Resume     bool    // continue the run in Checkpoint
	Metrics    string  // metrics file (JSON lines, or CSV for .csv); "" for none
	Plot       string  // PNG of the curves; "" for none
	Quiet      bool    // no progress bar

	// Data parallelism (train.Parallel): Workers goroutines compute Shards
	// replicas' gradients over Batch rows per step; Comm spreads the
	// shards over MPI ranks. Workers 0 and no Comm: the model alone.
	Workers, Shards, Batch int
	Comm                   train.Comm
}

func (c Config) validate() error {
	if _, err := archByName(c.Model); err != nil {
		return err
	}
	if c.Epochs < 1 {
		return fmt.Errorf("-epochs %d: want at least 1", c.Epochs)
	}
	if !(c.LR > 0) || math.IsInf(c.LR, 0) {
		return fmt.Errorf("-lr %v: want a positive learning rate", c.LR)
	}
	if c.Schedule != "cosine" && c.Schedule != "constant" {
		return fmt.Errorf("-schedule %q: want cosine or constant", c.Schedule)
	}
	if c.Shift < 0 || c.Shift > 8 {
		return fmt.Errorf("-shift %d: want 0 (no augmentation) to 8 pixels", c.Shift)
	}
	if !(c.Clip >= 0) || math.IsInf(c.Clip, 0) {
		return fmt.Errorf("-clip %v: want a maximum gradient norm > 0, or 0 for no clipping", c.Clip)
	}
	if c.Resume && c.Checkpoint == "" {
		return errors.New("-resume needs a -checkpoint file")
	}
	if c.Workers < 0 || c.Shards < 0 || c.Batch < 0 {
		return fmt.Errorf("-workers %d, -shards %d, -batch %d: want 0 (the default) or more", c.Workers, c.Shards, c.Batch)
	}
	if (c.Shards > 0 || c.Batch > 0) && c.Workers == 0 && c.Comm == nil && !mpi.Launched() {
		return errors.New("-shards and -batch split a step over replicas: give -workers too (or run under mpirun)")
	}
	return nil
}

// Result is the outcome of Train.
type Result struct {
	Model        train.Model[float32]
	Fit          *train.Result
	TestAccuracy float64 // after the last epoch
}

// images is an MNIST set as a train.Dataset, shifted at random by up to
// shift pixels when shift > 0.
type images struct {
	set   *mnistdata.Set
	shift int
}

func (d images) Len() int { return d.set.N }

func (d images) Fill(io runtime.IO[float32], rows []int, rng *rand.Rand) {
	x, y := io.Inputs[0].Data, io.Labels[0].Data
	for i, r := range rows {
		dst := x[i*mnistdata.Pixels : (i+1)*mnistdata.Pixels]
		if d.shift > 0 {
			shifted(dst, d.set.Image(r), rng, d.shift)
		} else {
			copy(dst, d.set.Image(r))
		}
		y[i] = d.set.Labels[r]
	}
}

// Train trains a model on trainSet for cfg.Epochs epochs (continuing the
// run in the checkpoint with cfg.Resume), validating on testSet after each
// one, until the run ends or ctx is cancelled. It prints one line per epoch
// and the final accuracy on stdout and a progress bar on stderr when it is
// a terminal (unless cfg.Quiet).
func Train(ctx context.Context, cfg Config, trainSet, testSet *mnistdata.Set, stdout, stderr io.Writer) (*Result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if trainSet.N == 0 || testSet.N == 0 {
		return nil, fmt.Errorf("empty data set: %d training and %d test images", trainSet.N, testSet.N)
	}
	if cfg.Resume {
		if err := checkResumable(cfg.Checkpoint, cfg.Model); err != nil {
			return nil, err
		}
	}
	arch, _ := archByName(cfg.Model) // validated
	m := arch.New()
	model := m
	if cfg.Workers > 0 || cfg.Comm != nil {
		p, err := train.NewParallel(m, func() train.Model[float32] { return arch.Replica(m) },
			train.ParallelConfig{Shards: cfg.Shards, Workers: cfg.Workers, Batch: cfg.Batch, Comm: cfg.Comm})
		if err != nil {
			return nil, err
		}
		defer p.Close()
		model = p
		pc := p.IO()
		ranks := 1
		if cfg.Comm != nil {
			ranks = cfg.Comm.Size()
		}
		fmt.Fprintf(stdout, "data parallel: %d rows per step in %d shards of up to %d (the model's batch %d), %d worker%s, %d rank%s\n",
			pc.Batch, p.Shards(), (pc.Batch+p.Shards()-1)/p.Shards(), m.IO().Batch, p.Workers(), plural(p.Workers()), ranks, plural(ranks))
	}
	var sched train.Schedule = train.Cosine{LR: cfg.LR}
	if cfg.Schedule == "constant" {
		sched = train.Constant{LR: cfg.LR}
	}
	fc := train.Config[float32]{
		Epochs:      cfg.Epochs,
		Schedule:    sched,
		Clip:        cfg.Clip,
		Seed:        cfg.Seed,
		Validation:  images{set: testSet},
		Checkpoint:  cfg.Checkpoint,
		Resume:      cfg.Resume,
		Meta:        map[string]string{"mnist.model": cfg.Model, "mnist.schedule": cfg.Schedule, "mnist.shift": fmt.Sprint(cfg.Shift)},
		Log:         stdout,
		MetricsFile: cfg.Metrics,
		Plot:        cfg.Plot,
	}
	if !cfg.Quiet {
		fc.Progress = stderr
	}
	res, err := train.Fit(ctx, model, train.Dataset[float32](images{set: trainSet, shift: cfg.Shift}), fc)
	if err != nil {
		return nil, err
	}
	out := &Result{Model: m, Fit: res}
	if res.Interrupted { // Fit said so on stdout, with the checkpoint
		return out, nil
	}
	if len(res.Epochs) > 0 {
		out.TestAccuracy = res.Epochs[len(res.Epochs)-1].Values["val_accuracy"]
	}
	fmt.Fprintf(stdout, "test accuracy %.2f%% after %d epoch%s\n", 100*out.TestAccuracy, len(res.Epochs), plural(len(res.Epochs)))
	return out, nil
}

// checkResumable explains a missing checkpoint for -resume, or one that
// holds another model than name, before the slow data load. Other problems
// (a corrupt file, say) are left to the loader, which explains them.
func checkResumable(path, name string) error {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("-resume: checkpoint %s does not exist: train without -resume first, or point -checkpoint at an existing file", path)
	}
	meta, err := runtime.ReadMetadata(path)
	if err != nil {
		return nil
	}
	if got := meta[runtime.MetaModel]; got != "" && got != name {
		return fmt.Errorf("-resume: checkpoint %s was written by -model %s, not %s: resume it with -model %s, or point -checkpoint at a %s checkpoint",
			path, got, name, got, name)
	}
	return nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// shifted writes into dst the 28×28 image src moved by up to max pixels in
// each direction (drawn from rng), zeros filling in: the usual augmentation
// of MNIST, which makes a convolutional network's test accuracy less
// dependent on where a digit sits.
func shifted(dst, src []float32, rng *rand.Rand, max int) {
	const side = 28
	dy, dx := rng.IntN(2*max+1)-max, rng.IntN(2*max+1)-max
	clear(dst)
	for y := range side {
		sy := y - dy
		if sy < 0 || sy >= side {
			continue
		}
		x0, x1 := 0, side
		if dx > 0 {
			x0 = dx
		} else {
			x1 = side + dx
		}
		copy(dst[y*side+x0:y*side+x1], src[sy*side+x0-dx:sy*side+x1-dx])
	}
}
