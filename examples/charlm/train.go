package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/backpropgen/backpropgen/generated/charlm"
	"github.com/backpropgen/backpropgen/runtime"
)

// Config holds the training settings (the command-line flags).
type Config struct {
	Epochs     int     // passes over the text
	Steps      int     // windows per epoch; 0: every window of the text
	LR         float64 // Adam's initial learning rate, decayed to LR·minLRFactor
	Clip       float64 // maximum global gradient norm (ClipGradNorm); 0: no clipping
	Temp       float64 // sampling temperature; 0: always the most likely character
	Seed       uint64  // seed of the weight initialization and of the sampler
	SampleLen  int     // characters sampled after every epoch; 0: no samples
	Prime      string  // text the samples start from
	Checkpoint string  // written at the end of every epoch; "": none
	LogEvery   int     // steps between loss lines
	Quiet      bool    // no loss lines
}

// minLRFactor is where the cosine schedule ends: the learning rate falls
// from LR at the first step to LR·minLRFactor at the last.
const minLRFactor = 0.1

func (c Config) validate() error {
	if c.Epochs < 1 {
		return fmt.Errorf("-epochs %d: want at least 1", c.Epochs)
	}
	if c.Steps < 0 {
		return fmt.Errorf("-steps %d: want a number of windows per epoch, or 0 for the whole text", c.Steps)
	}
	if !(c.LR > 0) || math.IsInf(c.LR, 0) {
		return fmt.Errorf("-lr %v: want a positive learning rate", c.LR)
	}
	if !(c.Clip >= 0) || math.IsInf(c.Clip, 0) {
		return fmt.Errorf("-clip %v: want a maximum gradient norm > 0, or 0 for no clipping", c.Clip)
	}
	if !(c.Temp >= 0) || math.IsInf(c.Temp, 0) {
		return fmt.Errorf("-temp %v: want a temperature ≥ 0 (0: always the most likely character)", c.Temp)
	}
	if c.SampleLen < 0 {
		return fmt.Errorf("-sample %d: want a number of characters ≥ 0", c.SampleLen)
	}
	if c.SampleLen > 0 && c.Prime == "" {
		return errors.New("-prime is empty: samples need at least one character to start from")
	}
	if c.LogEvery < 1 {
		return fmt.Errorf("-log %d: want at least 1", c.LogEvery)
	}
	return nil
}

// Epoch is the outcome of one epoch.
type Epoch struct {
	Epoch   int     // 1-based
	Loss    float64 // mean training loss over the epoch, nats per character
	Skipped int     // steps skipped for a non-finite gradient norm
	Sample  string  // the sample printed after the epoch ("" without one)
	Time    time.Duration
}

// Result is the outcome of Train.
type Result struct {
	Model  *charlm.Model
	Losses []float64 // the training loss of every step, nats per character
	Epochs []Epoch
}

// trainer runs truncated backpropagation through time over the streams:
// window k of every stream is one batch, and the LSTM state at the end of
// window k is the initial state (h0, c0) of window k+1. Since h0 and c0 are
// inputs of the generated model, no gradient flows back past a window.
type trainer struct {
	cfg   Config
	m     *charlm.Model
	opt   *runtime.Adam[float32]
	data  streams
	steps int // windows per epoch
	total int // steps over all epochs, for the schedule
	done  int // steps taken so far
}

func newTrainer(cfg Config, data streams) (*trainer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m := charlm.New()
	if len(m.X) != rows*window*numClasses || len(m.Y) != rows*window {
		return nil, fmt.Errorf("generated/charlm takes x of %d and y of %d elements, not (%d, %d, %d) and (%d, %d): it does not match this program",
			len(m.X), len(m.Y), rows, window, numClasses, rows, window)
	}
	m.Init(cfg.Seed)
	steps := data.windows()
	if cfg.Steps > 0 {
		steps = min(steps, cfg.Steps)
	}
	return &trainer{
		cfg:   cfg,
		m:     m,
		opt:   runtime.NewAdam[float32](charlm.NumParams, float32(cfg.LR)),
		data:  data,
		steps: steps,
		total: cfg.Epochs * steps,
	}, nil
}

// lr is the learning rate of step t (0-based) of total: a cosine from LR
// down to LR·minLRFactor.
func (tr *trainer) lr(t int) float64 {
	frac := 0.0
	if tr.total > 1 {
		frac = float64(t) / float64(tr.total-1)
	}
	lo := tr.cfg.LR * minLRFactor
	return lo + (tr.cfg.LR-lo)*0.5*(1+math.Cos(math.Pi*frac))
}

// resetState zeroes the carried state, at the start of every epoch (the
// streams start over from their first character).
func (tr *trainer) resetState() {
	clear(tr.m.H0)
	clear(tr.m.C0)
}

// step trains on window k of every stream starting from the state in
// H0/C0, then carries the final state into H0/C0 for window k+1. It
// returns the loss and whether the update was skipped because the gradient
// norm was not finite. A non-finite loss is an error and leaves the
// parameters as they were.
func (tr *trainer) step(k int) (loss float64, skipped bool, err error) {
	m := tr.m
	tr.data.fill(k, m.X, m.Y)
	m.ZeroGrad()
	l, err := m.Forward(rows)
	if err != nil {
		return 0, false, err
	}
	loss = float64(l)
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return loss, false, fmt.Errorf("loss is %v at step %d: training diverged; parameters not updated: lower -lr or -clip", loss, tr.done+1)
	}
	m.Backward(rows)
	// Backward reads H0/C0, so carry the state only after it.
	m.CarryState()
	if tr.cfg.Clip > 0 {
		if norm := runtime.ClipGradNorm(m.Grads, tr.cfg.Clip); math.IsNaN(norm) || math.IsInf(norm, 0) {
			tr.done++
			return loss, true, nil
		}
	}
	tr.opt.LR = float32(tr.lr(tr.done))
	tr.opt.Step(m.Params, m.Grads)
	tr.done++
	return loss, false, nil
}

// Train trains charlm on text for cfg.Epochs epochs with truncated BPTT,
// Adam and gradient clipping, printing the mean loss every cfg.LogEvery
// steps (unless cfg.Quiet) and a sample after every epoch. name is the
// text's file, for the messages and the checkpoint's metadata.
func Train(cfg Config, name string, text []byte, out io.Writer) (*Result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	classes, outside := encodeText(text)
	data, err := newStreams(classes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	tr, err := newTrainer(cfg, data)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "%s: %d bytes (%d outside the alphabet, read as ' '): %d streams of %d characters, %d windows of %d each\n",
		name, len(text), outside, rows, data.length, data.windows(), window)
	fmt.Fprintf(out, "charlm: LSTM(256), %d parameters; %d epochs of %d steps, Adam lr %g (cosine to %g), clip %g\n",
		charlm.NumParams, cfg.Epochs, tr.steps, cfg.LR, cfg.LR*minLRFactor, cfg.Clip)
	rng := runtime.NewRNG(cfg.Seed ^ 0x5eed5a3b1e) // the sampler's, apart from the initialization's
	res := &Result{Model: tr.m}
	start := time.Now()
	for epoch := 1; epoch <= cfg.Epochs; epoch++ {
		epochStart := time.Now()
		tr.resetState()
		var sum, recent float64 // recent: the loss summed since the last line
		var inRecent int
		ep := Epoch{Epoch: epoch}
		for k := range tr.steps {
			loss, skipped, err := tr.step(k)
			if err != nil {
				return res, fmt.Errorf("epoch %d: %w", epoch, err)
			}
			res.Losses = append(res.Losses, loss)
			if skipped {
				ep.Skipped++
			}
			sum += loss
			recent += loss
			inRecent++
			if !cfg.Quiet && (inRecent == cfg.LogEvery || k == tr.steps-1) {
				mean := recent / float64(inRecent)
				fmt.Fprintf(out, "epoch %d step %4d/%d: loss %.3f nats/char = %.3f bits/char  lr %.2e  %6.1fs\n",
					epoch, k+1, tr.steps, mean, mean/math.Ln2, tr.lr(tr.done-1), time.Since(start).Seconds())
				recent, inRecent = 0, 0
			}
		}
		ep.Loss = sum / float64(tr.steps)
		ep.Time = time.Since(epochStart)
		skipped := ""
		if ep.Skipped > 0 {
			skipped = fmt.Sprintf(", %d steps skipped (gradient norm not finite)", ep.Skipped)
		}
		fmt.Fprintf(out, "epoch %d: mean loss %.3f nats/char = %.3f bits/char over %d steps in %.1fs%s\n",
			epoch, ep.Loss, ep.Loss/math.Ln2, tr.steps, ep.Time.Seconds(), skipped)
		if cfg.Checkpoint != "" {
			meta := map[string]string{
				"epoch": strconv.Itoa(epoch),
				"text":  name,
				"lr":    strconv.FormatFloat(cfg.LR, 'g', -1, 64),
				"clip":  strconv.FormatFloat(cfg.Clip, 'g', -1, 64),
			}
			if err := tr.m.SaveCheckpoint(cfg.Checkpoint, tr.opt, meta); err != nil {
				return res, err
			}
			fmt.Fprintf(out, "wrote %s\n", cfg.Checkpoint)
		}
		if cfg.SampleLen > 0 {
			s, err := newSampler(tr.m, cfg.Temp, rng)
			if err != nil {
				return res, err
			}
			if ep.Sample, err = s.sample(cfg.Prime, cfg.SampleLen); err != nil {
				return res, err
			}
			fmt.Fprintf(out, "--- sample after epoch %d (temperature %g) ---\n%s\n---\n", epoch, cfg.Temp, ep.Sample)
		}
		res.Epochs = append(res.Epochs, ep)
	}
	return res, nil
}
