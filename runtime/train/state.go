package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"

	"github.com/backpropgen/backpropgen/runtime"
)

// Metadata keys of Fit's checkpoints.
const (
	MetaTrain     = "backpropgen.train"      // the loop's state, JSON
	MetaBestEpoch = "backpropgen.best_epoch" // in BestCheckpoint: the epoch it holds
)

// state is what a checkpoint saves of the loop besides the model and the
// optimizer: with it, a resumed run takes the steps an uninterrupted one
// would. JSON keeps float64s exactly (shortest round-trip form).
type state struct {
	// The run's shape, checked on resume: the data order depends on them.
	Seed       uint64 `json:"seed"`
	Batch      int    `json:"batch"`
	Examples   int    `json:"examples"`
	PerEpoch   int    `json:"steps_per_epoch"`
	Sequential bool   `json:"sequential,omitempty"`

	Epoch  int   `json:"epoch"`  // epochs completed
	Step   int   `json:"step"`   // steps done in epoch Epoch+1
	Global int64 `json:"global"` // steps done in all

	// The running sums of the epoch in progress.
	LossSum    float64 `json:"loss_sum"`
	Seen       int     `json:"seen"`
	Correct    int     `json:"correct"`
	Seconds    float64 `json:"seconds"`
	PointSum   float64 `json:"point_sum"`
	PointSteps int     `json:"point_steps"`
	LR         float64 `json:"lr"`

	Early   earlyState       `json:"early"`
	Plateau *ReduceOnPlateau `json:"plateau,omitempty"`
	History []Epoch          `json:"history"`
	Points  []Point          `json:"points"`
}

// earlyState is the monitor's: the best value, its epoch, the epochs since.
type earlyState struct {
	Started   bool    `json:"started"`
	Best      float64 `json:"best"`
	BestEpoch int     `json:"best_epoch"`
	Wait      int     `json:"wait"`
}

// meta is the metadata of a checkpoint of the run now.
func (f *fit[T]) meta() map[string]string {
	m := maps.Clone(f.cfg.Meta)
	if m == nil {
		m = map[string]string{}
	}
	st := f.st
	st.Seed, st.Batch, st.Examples, st.PerEpoch, st.Sequential = f.cfg.Seed, f.io.Batch, f.data.Len(), f.perEpoch, f.cfg.Sequential
	st.History = f.res.Epochs
	if p, ok := f.cfg.Schedule.(*ReduceOnPlateau); ok {
		st.Plateau = p
	}
	b, err := json.Marshal(st)
	if err != nil { // a callback's NaN value: keep the run, drop the history
		st.History, st.Points = nil, nil
		b, _ = json.Marshal(st)
	}
	m[MetaTrain] = string(b)
	return m
}

// checkpoint writes the run to path ("" for none), atomically.
func (f *fit[T]) checkpoint(path string) error {
	if path == "" {
		return nil
	}
	return f.m.SaveCheckpoint(path, f.save, f.meta())
}

// resume loads the run from the checkpoint.
func (f *fit[T]) resume() error {
	path := f.cfg.Checkpoint
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("train: resume: checkpoint %s does not exist: train without resuming first, or name an existing checkpoint", path)
	}
	meta, err := runtime.ReadMetadata(path)
	if err != nil {
		return fmt.Errorf("train: resume: %w", err)
	}
	if got := meta[runtime.MetaModel]; got != f.io.Model {
		return fmt.Errorf("train: resume: checkpoint %s holds model %q, not %q: resume it with the model that wrote it", path, got, f.io.Model)
	}
	var st state
	if err := json.Unmarshal([]byte(meta[MetaTrain]), &st); err != nil {
		return fmt.Errorf("train: resume: checkpoint %s has no valid %s metadata (%v): it was not written by train.Fit; load it with the model's LoadCheckpoint and train with KeepWeights", path, MetaTrain, err)
	}
	if st.Seed != f.cfg.Seed || st.Batch != f.io.Batch || st.Examples != f.data.Len() || st.PerEpoch != f.perEpoch || st.Sequential != f.cfg.Sequential {
		return fmt.Errorf("train: resume: checkpoint %s is of a run with seed %d, %d examples, %d steps per epoch of batch %d (sequential %v); this run has seed %d, %d examples, %d steps per epoch of batch %d (sequential %v): resume with the settings it was written with",
			path, st.Seed, st.Examples, st.PerEpoch, st.Batch, st.Sequential, f.cfg.Seed, f.data.Len(), f.perEpoch, f.io.Batch, f.cfg.Sequential)
	}
	if f.best != nil && st.Early.BestEpoch > 0 {
		// The best weights live in the best checkpoint: read them first,
		// then the run's (which overwrite the model).
		if f.cfg.BestCheckpoint == "" {
			return fmt.Errorf("train: resume: early stopping restores the best weights (of epoch %d), which only a BestCheckpoint keeps across runs: set Config.BestCheckpoint", st.Early.BestEpoch)
		}
		bm, err := f.m.LoadCheckpoint(f.cfg.BestCheckpoint, nil)
		if err != nil {
			return fmt.Errorf("train: resume: best weights: %w", err)
		}
		if bm[MetaBestEpoch] != fmt.Sprint(st.Early.BestEpoch) {
			return fmt.Errorf("train: resume: best checkpoint %s holds epoch %s, but the run's best is epoch %d: it belongs to another run", f.cfg.BestCheckpoint, bm[MetaBestEpoch], st.Early.BestEpoch)
		}
		for _, t := range f.m.Tensors() {
			f.best = append(f.best, t.Data...)
		}
	}
	if _, err := f.m.LoadCheckpoint(path, f.save); err != nil {
		return fmt.Errorf("train: resume: %w", err)
	}
	if st.Plateau != nil {
		p, ok := f.cfg.Schedule.(*ReduceOnPlateau)
		if !ok {
			return fmt.Errorf("train: resume: checkpoint %s was written with a ReduceOnPlateau schedule: resume with one", path)
		}
		p.Rate, p.Best, p.Wait, p.Started = st.Plateau.Rate, st.Plateau.Best, st.Plateau.Wait, st.Plateau.Started
	}
	f.res.Epochs = slices.Clip(st.History)
	f.res.Resumed = st.Global
	st.History = nil
	f.st = st
	return nil
}

// carrying is an optimizer whose state includes the Carry buffers, so that
// the model's checkpoints save and load them with the optimizer's.
type carrying[T runtime.Float] struct {
	runtime.Scheduled[T]
	carry []runtime.Tensor[T]
}

func (c *carrying[T]) State() []runtime.Tensor[T] {
	return append(slices.Clip(c.Scheduled.State()), c.carry...)
}

// carried names the Carry tensors apart from the optimizer's.
func carried[T runtime.Float](ts []runtime.Tensor[T]) []runtime.Tensor[T] {
	out := make([]runtime.Tensor[T], len(ts))
	for i, t := range ts {
		shape := t.Shape
		if shape == nil {
			shape = []int{len(t.Data)}
		}
		out[i] = runtime.Tensor[T]{Name: "train.carry." + t.Name, Shape: shape, Data: t.Data}
	}
	return out
}
