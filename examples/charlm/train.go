package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/backpropgen/backpropgen/examples/internal/gospec"
	"github.com/backpropgen/backpropgen/generated/charlm"
	"github.com/backpropgen/backpropgen/runtime"
	"github.com/backpropgen/backpropgen/runtime/train"
)

// Config holds the training settings (the command-line flags).
type Config struct {
	Epochs     int     // passes over the text
	HoldOut    float64 // fraction of the text held out for validation (gospec.HeldOut); 0: none
	Steps      int     // windows per epoch; 0: every window of the text
	LR         float64 // Adam's initial learning rate, decayed to LR·minLRFactor
	Clip       float64 // maximum global gradient norm; 0: no clipping
	Temp       float64 // sampling temperature; 0: always the most likely character
	Seed       uint64  // seed of the weight initialization and of the sampler
	SampleLen  int     // characters sampled after every epoch; 0: no samples
	Prime      string  // text the samples start from
	Checkpoint string  // written at the end of every epoch and at an interrupt; "": none
	Resume     bool    // continue the run in Checkpoint
	Metrics    string  // metrics file (JSON lines, or CSV for .csv); "": none
	Plot       string  // PNG of the loss curve; "": none
	Quiet      bool    // no progress bar

	callbacks func(*charlm.Model) []train.Callback // tests' own, run before the program's
}

// minLRFactor is where the cosine schedule ends: the learning rate falls
// from LR at the first step to LR·minLRFactor at the last.
const minLRFactor = 0.1

func (c Config) validate() error {
	if c.Epochs < 1 {
		return fmt.Errorf("-epochs %d: want at least 1", c.Epochs)
	}
	if !(c.HoldOut >= 0 && c.HoldOut < 1) {
		return fmt.Errorf("-holdout %v: want a fraction of the text in [0, 1)", c.HoldOut)
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
	if c.Resume && c.Checkpoint == "" {
		return errors.New("-resume needs a -checkpoint file")
	}
	return nil
}

// Result is the outcome of Train.
type Result struct {
	Model   *charlm.Model
	Fit     *train.Result
	Samples []string // the sample after each epoch of this run ("" without one)
}

// windows is the text as a train.Dataset for truncated BPTT: example
// k·rows + r is window k of stream r, so that, in order, step k fills
// window k of every stream (the batch's rows).
type windows struct {
	streams
	x []float32
	y []int32
}

func (w windows) Len() int { return w.windows() * rows }

func (w windows) Fill(_ runtime.IO[float32], batch []int, _ *rand.Rand) {
	w.fill(batch[0]/rows, w.x, w.y)
}

// Train trains charlm on text for cfg.Epochs epochs with truncated BPTT,
// Adam and gradient clipping (runtime/train, in order rather than
// shuffled), printing a summary and a sample after every epoch. name is the
// text's file, for the messages and the checkpoint's metadata.
func Train(ctx context.Context, cfg Config, name string, text []byte, stdout, stderr io.Writer) (*Result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	// The held-out part is examples/gpt's (gospec.HeldOut), so that both
	// models are validated on the same bytes; training reads the text
	// before it. Bytes are characters here (encode maps each to a class).
	trainText, heldText := text, []byte(nil)
	if cfg.HoldOut > 0 {
		start, end := gospec.HeldOut(len(text), cfg.HoldOut)
		trainText, heldText = text[:start], text[start:end]
	}
	classes, outside := encodeText(trainText)
	data, err := newStreams(classes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var held *heldOut
	heldOutside := 0
	if cfg.HoldOut > 0 {
		classes, _ := encodeText(heldText)
		if held, err = newHeldOut(classes); err != nil {
			return nil, fmt.Errorf("%s, -holdout %g: %w", name, cfg.HoldOut, err)
		}
		_, heldOutside = encodeText(heldText[1:]) // the predicted bytes
	}
	m := charlm.New()
	if len(m.X) != rows*window*numClasses || len(m.Y) != rows*window {
		return nil, fmt.Errorf("generated/charlm takes x of %d and y of %d elements, not (%d, %d, %d) and (%d, %d): it does not match this program",
			len(m.X), len(m.Y), rows, window, numClasses, rows, window)
	}
	steps := data.windows()
	if cfg.Steps > 0 {
		steps = min(steps, cfg.Steps)
	}
	fmt.Fprintf(stdout, "%s: %d bytes; training on %d (%d outside the alphabet, read as ' '): %d streams of %d characters, %d windows of %d each\n",
		name, len(text), len(trainText), outside, rows, data.length, data.windows(), window)
	if held != nil {
		fmt.Fprintf(stdout, "held out for val_loss: bytes %d to %d (the last %g of the 64-byte windows; examples/gpt holds out 0.1), %d predicted (%d of them outside the alphabet, read as ' '), %d streams from a zero state\n",
			len(trainText), len(trainText)+len(heldText)-1, cfg.HoldOut, held.predicted(), heldOutside, rows)
	}
	fmt.Fprintf(stdout, "charlm: LSTM(256), %d parameters; %d epochs of %d steps, Adam lr %g (cosine to %g), clip %g\n",
		charlm.NumParams, cfg.Epochs, steps, cfg.LR, cfg.LR*minLRFactor, cfg.Clip)

	res := &Result{Model: m}
	tbptt := train.Callback{
		// The streams start over from their first character: zero state.
		EpochStart: func(int) error {
			clear(m.H0)
			clear(m.C0)
			return nil
		},
		// The final state of this window is the initial state of the next
		// (Gradients has run the backward pass, which reads H0 and C0).
		AfterGradients: func(*train.Step) error {
			m.CarryState()
			return nil
		},
		EpochEnd: func(e *train.Epoch) error {
			e.Values["bits_per_char"] = e.Values["loss"] / math.Ln2
			if held != nil {
				// The validation runs here rather than as Fit's Validation:
				// it carries the state across windows and counts only the
				// positions within the streams. Its time is added to the
				// epoch's, as Fit adds its own validation's (examples/gpt's).
				t0 := time.Now()
				h0, c0 := slices.Clone(m.H0), slices.Clone(m.C0)
				loss, err := held.loss(m)
				if err != nil {
					return err
				}
				copy(m.H0, h0) // the checkpoint carries the training's state
				copy(m.C0, c0)
				e.Values["val_loss"] = loss
				e.Values["val_bits_per_char"] = loss / math.Ln2
				e.Seconds += time.Since(t0).Seconds()
			}
			if cfg.SampleLen == 0 {
				res.Samples = append(res.Samples, "")
				return nil
			}
			s, err := newSampler(m, cfg.Temp, runtime.NewRNG(cfg.Seed^0x5eed5a3b1e^uint64(e.Epoch)<<32))
			if err != nil {
				return err
			}
			text, err := s.sample(cfg.Prime, cfg.SampleLen)
			if err != nil {
				return err
			}
			res.Samples = append(res.Samples, text)
			fmt.Fprintf(stdout, "--- sample after epoch %d (temperature %g) ---\n%s\n---\n", e.Epoch, cfg.Temp, text)
			return nil
		},
	}
	fc := train.Config[float32]{
		Epochs:      cfg.Epochs,
		EpochSteps:  steps,
		Schedule:    train.Cosine{LR: cfg.LR, Min: cfg.LR * minLRFactor},
		Clip:        cfg.Clip,
		Seed:        cfg.Seed,
		Sequential:  true,
		Checkpoint:  cfg.Checkpoint,
		Resume:      cfg.Resume,
		Meta:        map[string]string{"charlm.text": name},
		Carry:       []runtime.Tensor[float32]{{Name: "h0", Data: m.H0}, {Name: "c0", Data: m.C0}},
		Callbacks:   []train.Callback{tbptt},
		Log:         stdout,
		MetricsFile: cfg.Metrics,
		Plot:        cfg.Plot,
	}
	if cfg.callbacks != nil {
		fc.Callbacks = append(cfg.callbacks(m), tbptt)
	}
	if !cfg.Quiet {
		fc.Progress = stderr
	}
	res.Fit, err = train.Fit(ctx, m, train.Dataset[float32](windows{streams: data, x: m.X, y: m.Y}), fc)
	if err != nil {
		return res, err
	}
	return res, nil
}
