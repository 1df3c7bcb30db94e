// Command gpt trains generated/gpt, a small GPT-2 (4 layers, 4 heads, 128
// channels, context 64, byte vocabulary), on a text with runtime/train,
// then samples from it:
//
//	go run ./examples/gpt                       # the Go spec, 4 epochs
//	go run ./examples/gpt -sample 400 -epochs 0 # sample from the checkpoint only
//
// The text is, by default, the Go specification that ships with the Go
// toolchain ($(go env GOROOT)/doc/go_spec.html, as examples/charlm); its last
// tenth is held out for validation. Every example is a window of 64 bytes
// and the 64 that follow each by one; training windows start at a random
// offset. The checkpoint (gpt.safetensors) is written at the end of every
// epoch and at SIGINT or SIGTERM; -resume continues the run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/signal"
	"syscall"

	"github.com/backpropgen/backpropgen/examples/internal/gospec"
	"github.com/backpropgen/backpropgen/generated/gpt"
	"github.com/backpropgen/backpropgen/runtime"
	"github.com/backpropgen/backpropgen/runtime/train"
)

// ctxLen is gpt.bpg's context: tokens t: [64], one byte each.
const ctxLen = 64

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "gpt:", err)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage error")

// Config holds the settings (the command-line flags).
type Config struct {
	Epochs, Steps int // epochs (0: only sample from Checkpoint), and steps per epoch (0: every window)
	LR, Clip      float64
	Seed          uint64
	Checkpoint    string
	Resume        bool
	Metrics, Plot string
	Quiet         bool
	SampleLen     int
	Temp          float64
	TopK          int
	Prime         string
}

func run(args []string, stdout, stderr io.Writer) error {
	var cfg Config
	flags := flag.NewFlagSet("gpt", flag.ContinueOnError)
	flags.SetOutput(stderr)
	textPath := flags.String("text", "", "text file to learn (default: $(go env GOROOT)/doc/go_spec.html)")
	flags.IntVar(&cfg.Epochs, "epochs", 4, "passes over the text; 0: no training, sample from -checkpoint")
	flags.IntVar(&cfg.Steps, "steps", 0, "training steps per epoch; 0: every window of the text")
	flags.Float64Var(&cfg.LR, "lr", 3e-3, "AdamW's peak learning rate (warm-up over 100 steps, then cosine decay to 0); 3e-3 reached 1.28 nats/byte after 4 epochs where 1e-3 reached 1.33 (measured before GELU was computed as x·σ(2u); 1.27 since)")
	flags.Float64Var(&cfg.Clip, "clip", 1, "clip the gradients' global L2 norm to this; 0: no clipping")
	flags.Uint64Var(&cfg.Seed, "seed", 1, "seed of the initialization, the data order and the sampler")
	flags.StringVar(&cfg.Checkpoint, "checkpoint", "gpt.safetensors", "checkpoint written after every epoch and at SIGINT or SIGTERM; empty: none")
	flags.BoolVar(&cfg.Resume, "resume", false, "continue the run in -checkpoint")
	flags.StringVar(&cfg.Metrics, "metrics", "", "file of the epochs' values (JSON lines, or CSV for .csv); empty: none")
	flags.StringVar(&cfg.Plot, "plot", "", "PNG of the loss curves; empty: none")
	flags.BoolVar(&cfg.Quiet, "quiet", false, "no progress bar")
	flags.IntVar(&cfg.SampleLen, "sample", 300, "bytes to sample after training; 0: none")
	flags.Float64Var(&cfg.Temp, "temp", 0.8, "sampling temperature; 0: always the most likely byte")
	flags.IntVar(&cfg.TopK, "topk", 40, "sample among the k most likely bytes; 0: all 256")
	flags.StringVar(&cfg.Prime, "prime", "The ", "text the sample starts from")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: every setting is a flag (see -help)", flags.Arg(0))
	}
	switch {
	case cfg.Epochs < 0 || cfg.Steps < 0 || cfg.SampleLen < 0 || cfg.TopK < 0 || cfg.TopK > 256:
		return fmt.Errorf("-epochs %d, -steps %d, -sample %d, -topk %d: want counts ≥ 0 (topk ≤ 256)", cfg.Epochs, cfg.Steps, cfg.SampleLen, cfg.TopK)
	case !(cfg.LR > 0) || !(cfg.Clip >= 0) || !(cfg.Temp >= 0) || math.IsInf(cfg.LR+cfg.Clip+cfg.Temp, 0):
		return fmt.Errorf("-lr %v, -clip %v, -temp %v: want a positive learning rate and a clip and temperature ≥ 0", cfg.LR, cfg.Clip, cfg.Temp)
	case cfg.SampleLen > 0 && cfg.Prime == "":
		return errors.New("-prime is empty: a sample needs at least one byte to start from")
	case (cfg.Resume || cfg.Epochs == 0) && cfg.Checkpoint == "":
		return errors.New("-resume and -epochs 0 need a -checkpoint file")
	}
	text, _, err := gospec.Read(*textPath)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()
	m, err := Train(ctx, cfg, text, stdout, stderr)
	if err != nil || m == nil || cfg.SampleLen == 0 {
		return err
	}
	s := Sample(m, []byte(cfg.Prime), cfg.SampleLen, cfg.Temp, cfg.TopK, rand.New(rand.NewPCG(cfg.Seed, 7)))
	fmt.Fprintf(stdout, "--- sample (temperature %g, top-%d) ---\n%s\n", cfg.Temp, cfg.TopK, s)
	return nil
}

// windows are the examples of a text: window k holds bytes k·64 .. k·64+63
// as tokens and the bytes one further on as labels; with shift, a training
// window starts up to 63 bytes later (drawn from the step's rng).
type windows struct {
	text  []byte
	first int // the window of example 0
	n     int
	shift bool
}

func (w windows) Len() int { return w.n }

func (w windows) Fill(io runtime.IO[float32], rows []int, rng *rand.Rand) {
	tok, next := io.Labels[0].Data, io.Labels[1].Data
	for i, r := range rows {
		at := (w.first + r) * ctxLen
		if w.shift && rng != nil {
			at = min(at+rng.IntN(ctxLen), len(w.text)-ctxLen-1)
		}
		for j := range ctxLen {
			tok[i*ctxLen+j] = int32(w.text[at+j])
			next[i*ctxLen+j] = int32(w.text[at+j+1])
		}
	}
}

// split cuts text into the training and the validation windows: the last
// tenth of the windows is held out, as gospec.HeldOut says (examples/charlm
// validates on the same bytes).
func split(text []byte) (training, validation windows, err error) {
	start, end := gospec.HeldOut(len(text), 0.1)
	all, held := (end-1)/ctxLen, (end-1-start)/ctxLen
	if all-held < 1 || held < 1 {
		return windows{}, windows{}, fmt.Errorf("the text has %d bytes: want at least %d (ten windows of %d and one byte)", len(text), 10*ctxLen+1, ctxLen)
	}
	// text[:start+1]: a shifted training window ends at byte start at the
	// latest, the held-out part's first byte, which is read there but
	// never predicted.
	return windows{text: text[:start+1], n: all - held, shift: true}, windows{text: text, first: all - held, n: held}, nil
}

// Train trains a new model (or continues the checkpoint's run) and returns
// it; with Epochs 0 it loads the checkpoint only. nil, nil: interrupted.
func Train(ctx context.Context, cfg Config, text []byte, stdout, stderr io.Writer) (*gpt.Model, error) {
	training, validation, err := split(text)
	if err != nil {
		return nil, err
	}
	m := gpt.New()
	opt := runtime.NewAdamW[float32](gpt.NumParams, float32(cfg.LR))
	opt.NoDecay = runtime.Select(gpt.ParamNames, gpt.ParamOffsets, runtime.BiasOrNorm)
	if cfg.Epochs == 0 {
		if _, err := m.LoadCheckpoint(cfg.Checkpoint, nil); err != nil {
			return nil, err
		}
		return m, nil
	}
	fc := train.Config[float32]{
		Epochs: cfg.Epochs, EpochSteps: cfg.Steps, Optimizer: opt,
		Schedule: train.WarmupCosine{LR: cfg.LR, Warmup: 100},
		Clip:     cfg.Clip, Seed: cfg.Seed,
		Validation: validation,
		Checkpoint: cfg.Checkpoint, Resume: cfg.Resume,
		Log: stdout, MetricsFile: cfg.Metrics, Plot: cfg.Plot,
	}
	if !cfg.Quiet {
		fc.Progress = stderr
	}
	res, err := train.Fit(ctx, train.Model[float32](m), training, fc)
	if err != nil || res.Interrupted {
		return nil, err
	}
	return m, nil
}

// Sample continues prime by n bytes, each drawn from the model's logits
// after the bytes before it, at temperature temp among the topk most
// likely (0: the most likely byte). A Decoder feeds one byte a step and
// keeps each attention's keys and values (a key/value cache), so a byte
// costs one position's products, not the context's. When its 64 positions
// are full it starts again from the last 32 bytes: the learned positions
// cannot shift, so from then on a byte sees 32 to 63 bytes before it.
func Sample(m *gpt.Model, prime []byte, n int, temp float64, topk int, rng *rand.Rand) []byte {
	out := append([]byte(nil), prime...)
	probs := make([]float64, 256)
	order := make([]int, 256)
	d := m.NewDecoder()
	token := make([]int32, 1)
	var logits []float32
	// feed steps the decoder over bs; Step fails only on ids past 255 or
	// a full context, which bytes and the Reset below rule out.
	feed := func(bs []byte) bool {
		for _, b := range bs {
			token[0] = int32(b)
			var err error
			if logits, err = d.Step(token); err != nil {
				return false
			}
		}
		return true
	}
	if !feed(out[max(0, len(out)-ctxLen):]) {
		return out
	}
	for i := range n {
		b := pick(logits, temp, topk, probs, order, rng)
		out = append(out, b)
		if i == n-1 {
			break
		}
		next := out[len(out)-1:]
		if d.Pos() == ctxLen {
			d.Reset()
			next = out[len(out)-ctxLen/2:]
		}
		if !feed(next) {
			break
		}
	}
	return out
}

// pick draws a byte from softmax(logits/temp) over the topk largest logits.
func pick(logits []float32, temp float64, topk int, probs []float64, order []int, rng *rand.Rand) byte {
	best := 0
	for i, v := range logits {
		if v > logits[best] {
			best = i
		}
	}
	if temp == 0 {
		return byte(best)
	}
	for i := range order {
		order[i] = i
	}
	if topk > 0 && topk < len(order) {
		// Partial selection sort: the k largest first.
		for i := range topk {
			j := i
			for c := i + 1; c < len(order); c++ {
				if logits[order[c]] > logits[order[j]] {
					j = c
				}
			}
			order[i], order[j] = order[j], order[i]
		}
		order = order[:topk]
	}
	var sum float64
	for _, c := range order {
		probs[c] = math.Exp((float64(logits[c]) - float64(logits[best])) / temp)
		sum += probs[c]
	}
	u := rng.Float64() * sum
	for _, c := range order {
		if u -= probs[c]; u <= 0 {
			return byte(c)
		}
	}
	return byte(order[len(order)-1])
}
