// Command charlm trains generated/charlm, a character-level language model
// (one LSTM of 256 units, then dense(97) logits), on a text file and prints
// samples of the text it learned to write.
//
// The text is, by default, the Go specification that ships with the Go
// toolchain ($(go env GOROOT)/doc/go_spec.html); -text names another file.
// Its bytes are read over an alphabet of 97 classes: '\t', '\n' and the
// printable ASCII bytes ' ' to '~'; any other byte is read as ' ' (see
// encode in text.go).
//
// Training is truncated backpropagation through time with 20 time steps:
// the text is cut into 32 contiguous streams, one per batch row, and every
// step trains on the next 20 characters of each stream (labels: the
// character after each). The LSTM's final state of one window is the
// initial state of the next (CarryState), zeroed at the start of every
// epoch; since that state is an input of the generated model, no gradient
// flows back past the window. Each step clips the gradients' global norm
// (the usual remedy for exploding gradients in recurrent networks) and
// takes an Adam step, the learning rate following a cosine from -lr down to
// a tenth of it. The loop is runtime/train's, in order rather than shuffled,
// with the LSTM state among what its checkpoints carry, so -resume
// continues a stopped run exactly.
//
// The end of the text is held out (-holdout, a tenth by default): the same
// bytes examples/gpt validates on (gospec.HeldOut), so that the two
// models' val_loss compare, in nats per byte, which is per character here.
// After every epoch the held-out text runs through the model as 32
// contiguous streams, each from a zero state, the state carried from window
// to window (see heldOut), and val_loss is the mean cross-entropy of the
// characters it predicts; the encoding reads the few non-ASCII bytes there
// as ' ', which makes them easier to predict than examples/gpt's raw bytes
// (15 of the Go spec's 29,312 held-out bytes).
//
// After every epoch the parameters are copied by name into
// generated/charlmstep (the same layers, one character at a time) which,
// primed with -prime, samples -sample characters at temperature -temp.
//
//	go run ./examples/charlm                     # 10 epochs, 3 to 4 minutes on 2 cores
//	go run ./examples/charlm -epochs 10 -temp 0.5
//	go run ./examples/charlm -text README.md -steps 200
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/backpropgen/backpropgen/examples/internal/gospec"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "charlm:", err)
		}
		os.Exit(1)
	}
}

// errUsage reports a command-line error the flag package has already printed.
var errUsage = errors.New("usage error")

// run parses the flags, reads the text and trains.
func run(args []string, stdout, stderr io.Writer) error {
	var cfg Config
	flags := flag.NewFlagSet("charlm", flag.ContinueOnError)
	flags.SetOutput(stderr)
	textPath := flags.String("text", "", "text file to learn (default: $(go env GOROOT)/doc/go_spec.html)")
	flags.IntVar(&cfg.Epochs, "epochs", 10, "passes over the text")
	flags.Float64Var(&cfg.HoldOut, "holdout", 0.1, "fraction of the text held out for the validation loss: its end, as examples/gpt holds out (the last tenth of the text's 64-byte windows); 0: train on the whole text")
	flags.IntVar(&cfg.Steps, "steps", 0, "training steps (windows of 20 characters per stream) per epoch; 0: the whole text")
	flags.Float64Var(&cfg.LR, "lr", 2e-3, "Adam's initial learning rate (cosine decay to a tenth of it over all steps)")
	flags.Float64Var(&cfg.Clip, "clip", 5, "clip the gradients' global L2 norm to this before every step; 0: no clipping")
	flags.Float64Var(&cfg.Temp, "temp", 0.8, "sampling temperature; 0: always the most likely character")
	flags.Uint64Var(&cfg.Seed, "seed", 1, "seed of the weight initialization and of the sampler")
	flags.IntVar(&cfg.SampleLen, "sample", 300, "characters to sample after every epoch; 0: no samples")
	flags.StringVar(&cfg.Prime, "prime", "func ", "text the samples start from")
	flags.StringVar(&cfg.Checkpoint, "checkpoint", "", "safetensors checkpoint (parameters, Adam's and the loop's state, the carried LSTM state) written at the end of every epoch and at SIGINT or SIGTERM; empty: none")
	flags.BoolVar(&cfg.Resume, "resume", false, "continue the run in -checkpoint")
	flags.StringVar(&cfg.Metrics, "metrics", "", "file of the epochs' values: JSON lines, or CSV when it ends in .csv; empty: none")
	flags.StringVar(&cfg.Plot, "plot", "", "PNG of the loss and accuracy curves, redrawn after every epoch; empty: none")
	flags.BoolVar(&cfg.Quiet, "quiet", false, "no progress bar: only the epoch summaries and samples")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: every setting is a flag (see -help)", flags.Arg(0))
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	text, path, err := gospec.Read(*textPath)
	if err != nil {
		return err
	}
	// SIGINT and SIGTERM finish the step, write the checkpoint and exit.
	// A second signal kills the process as usual.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()
	_, err = Train(ctx, cfg, path, text, stdout, stderr)
	return err
}
