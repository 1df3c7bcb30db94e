//go:build mpi && cgo

package mpi_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/backpropgen/backpropgen/generated/cnn"
	"github.com/backpropgen/backpropgen/generated/lstm"
	"github.com/backpropgen/backpropgen/generated/mlp"
	"github.com/backpropgen/backpropgen/generated/mlpb128"
	"github.com/backpropgen/backpropgen/generated/mlpbn"
	"github.com/backpropgen/backpropgen/runtime"
	"github.com/backpropgen/backpropgen/runtime/modeltest"
	"github.com/backpropgen/backpropgen/runtime/mpi"
	"github.com/backpropgen/backpropgen/runtime/train"
)

var _ train.Comm = (*mpi.Comm)(nil)

// The tests start themselves under mpirun with two ranks: outside it they
// launch; inside it (mpi.Launched) they do the work on every rank.
const roleVar = "BACKPROPGEN_MPI_TEST"

// mpirun runs this test binary's test named run on np ranks and returns
// what they printed, failing the test if they fail (unless wantFail).
func mpirun(t *testing.T, np int, run string, timeout time.Duration) (string, error) {
	t.Helper()
	bin, err := exec.LookPath("mpirun")
	if err != nil {
		t.Skip("mpirun not installed (apt-get install openmpi-bin libopenmpi-dev)")
	}
	args := []string{"-np", fmt.Sprint(np), "--oversubscribe"}
	if os.Geteuid() == 0 {
		args = append(args, "--allow-run-as-root")
	}
	args = append(args, os.Args[0], "-test.run", "^"+run+"$", "-test.v")
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), roleVar+"=rank", "OMPI_MCA_btl=self,vader,tcp")
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("mpirun %s did not finish in %v (a hang):\n%s", run, timeout, out)
	}
	return string(out), err
}

func inRank() bool { return os.Getenv(roleVar) == "rank" && mpi.Launched() }

// world is MPI_COMM_WORLD once a test has initialized MPI; TestMain
// finalizes it after the tests (and benchmarks) of a rank.
var world *mpi.Comm

func worldComm(t testing.TB) *mpi.Comm {
	if world == nil {
		c, err := mpi.Init()
		if err != nil {
			t.Fatal(err)
		}
		world = c
	}
	return world
}

func TestMain(m *testing.M) {
	code := m.Run()
	if world != nil {
		if err := world.Finalize(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

var models = []struct {
	name string
	new  func() (train.Model[float32], func() train.Model[float32])
}{
	{"mlp", func() (train.Model[float32], func() train.Model[float32]) {
		m := mlp.New()
		return m, func() train.Model[float32] { return m.NewReplica() }
	}},
	{"mlpbn", func() (train.Model[float32], func() train.Model[float32]) {
		m := mlpbn.New()
		return m, func() train.Model[float32] { return m.NewReplica() }
	}},
	{"lstm", func() (train.Model[float32], func() train.Model[float32]) {
		m := lstm.New()
		return m, func() train.Model[float32] { return m.NewReplica() }
	}},
}

func randomData(t testing.TB, io runtime.IO[float32], n int, seed uint64) *train.Slices[float32] {
	inputs, labels := modeltest.RandomFeeds(io, n, seed)
	ds, err := train.NewSlices(io, n, inputs, labels)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// fit trains a new model for two epochs on shards (over comm when not nil)
// and returns its parameters and state.
func fit(t *testing.T, newModel func() (train.Model[float32], func() train.Model[float32]), shards int, comm train.Comm, checkpoint string) []float32 {
	m, replica := newModel()
	p, err := train.NewParallel(m, replica, train.ParallelConfig{Shards: shards, Workers: 1, Comm: comm})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	b := m.IO().Batch
	data := randomData(t, p.IO(), 9*b+5, 3)
	cfg := train.Config[float32]{Epochs: 2, Schedule: train.Constant{LR: 1e-3}, Clip: 5, Seed: 1, Validation: randomData(t, p.IO(), 50, 4), Checkpoint: checkpoint}
	if _, err := train.Fit(context.Background(), p, data, cfg); err != nil {
		t.Fatal(err)
	}
	var all []float32
	for _, ts := range m.Tensors() {
		all = append(all, ts.Data...)
	}
	return all
}

// TestTwoRanks: two MPI ranks of one shard each train every model to the
// parameters and state of two shards in one process, bit for bit (an
// all-reduce of two is a+b, the one-process sum), and rank 0 alone writes
// the checkpoint.
func TestTwoRanks(t *testing.T) {
	if !inRank() {
		out, err := mpirun(t, 2, "TestTwoRanks", 5*time.Minute)
		if err != nil || strings.Count(out, "--- PASS: TestTwoRanks") != 2 {
			t.Fatalf("mpirun: %v\n%s", err, out)
		}
		return
	}
	comm := worldComm(t)
	if comm.Size() != 2 {
		t.Fatalf("%d ranks, want 2", comm.Size())
	}
	dir := os.Getenv("BACKPROPGEN_MPI_DIR")
	for _, mc := range models {
		want := fit(t, mc.new, 2, nil, "")
		ckpt := ""
		if dir != "" {
			ckpt = filepath.Join(dir, mc.name+".safetensors")
		}
		got := fit(t, mc.new, 2, comm, ckpt)
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%s: rank %d: element %d is %v over MPI, %v in one process", mc.name, comm.Rank(), i, got[i], want[i])
			}
		}
		t.Logf("%s: rank %d: %d values equal one process's", mc.name, comm.Rank(), len(want))
	}
}

// TestRankDies: when a rank dies in the middle of training, the job stops
// with an error instead of the other rank waiting forever.
func TestRankDies(t *testing.T) {
	if !inRank() {
		start := time.Now()
		out, err := mpirun(t, 2, "TestRankDies", 2*time.Minute)
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() == 0 {
			t.Fatalf("mpirun with a dead rank: %v, want a failed job\n%s", err, out)
		}
		t.Logf("the job stopped %v after it started: %v", time.Since(start).Round(time.Millisecond), err)
		return
	}
	comm := worldComm(t)
	m, replica := models[0].new()
	p, err := train.NewParallel(m, replica, train.ParallelConfig{Shards: 2, Workers: 1, Comm: comm})
	if err != nil {
		t.Fatal(err)
	}
	data := randomData(t, p.IO(), 20*m.IO().Batch, 3)
	steps := 0
	die := train.Callback{StepEnd: func(*train.Step) error {
		if steps++; steps == 5 && comm.Rank() == 1 {
			os.Exit(3) // killed mid-run, without a word to the others
		}
		return nil
	}}
	_, err = train.Fit(context.Background(), p, data, train.Config[float32]{Epochs: 1000, Schedule: train.Constant{LR: 1e-3}, Seed: 1, Callbacks: []train.Callback{die}})
	t.Fatalf("rank %d: Fit returned %v after rank 1 died; the launcher should have stopped the job", comm.Rank(), err)
}

// BenchmarkRanks times a training step of two shards (the models' batch
// each) on the ranks of mpirun, one worker per rank: run it under
// `mpirun -np 1` and `-np 2` with a fixed -test.benchtime Nx (every rank
// must take the same number of steps) and compare the samples/s:
//
//	go test -c -tags mpi -o mpi.test ./runtime/mpi
//	BACKPROPGEN_MPI_TEST=rank mpirun -np 1 ./mpi.test -test.run '^$' -test.bench Ranks -test.benchtime 40x
//	BACKPROPGEN_MPI_TEST=rank mpirun -np 2 --oversubscribe ./mpi.test -test.run '^$' -test.bench Ranks -test.benchtime 40x
func BenchmarkRanks(b *testing.B) {
	if !inRank() {
		b.Skip("run under mpirun with BACKPROPGEN_MPI_TEST=rank (see the comment)")
	}
	comm := worldComm(b)
	for _, mc := range []struct {
		name string
		new  func() (train.Model[float32], func() train.Model[float32])
	}{
		{"mlpb128", func() (train.Model[float32], func() train.Model[float32]) {
			m := mlpb128.New()
			return m, func() train.Model[float32] { return m.NewReplica() }
		}},
		{"cnn", func() (train.Model[float32], func() train.Model[float32]) {
			m := cnn.New()
			return m, func() train.Model[float32] { return m.NewReplica() }
		}},
		{"lstm", models[2].new},
	} {
		b.Run(fmt.Sprintf("model=%s/ranks=%d", mc.name, comm.Size()), func(b *testing.B) {
			m, replica := mc.new()
			m.Init(1)
			p, err := train.NewParallel(m, replica, train.ParallelConfig{Shards: 2, Workers: 1, Comm: comm})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			io := p.IO()
			data := randomData(b, io, io.Batch, 3)
			rows := make([]int, io.Batch)
			for i := range rows {
				rows[i] = i
			}
			data.Fill(io, rows, nil)
			opt := runtime.NewAdam[float32](len(io.Params), 1e-4)
			b.ResetTimer()
			for range b.N {
				if _, err := p.Gradients(io.Batch); err != nil {
					b.Fatal(err)
				}
				p.Step(opt)
			}
			b.ReportMetric(float64(b.N*io.Batch)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}

// BenchmarkAllreduce times the all-reduce of a step's gradients, for the
// parameter counts of the models BenchmarkRanks trains: the most that
// overlapping it with the backward pass (PyTorch DDP's buckets) could
// save per step. Run it under mpirun -np 2 as BenchmarkRanks.
func BenchmarkAllreduce(b *testing.B) {
	if !inRank() {
		b.Skip("run under mpirun with BACKPROPGEN_MPI_TEST=rank (see BenchmarkRanks)")
	}
	comm := worldComm(b)
	for _, mc := range []struct {
		name string
		n    int
	}{{"mlpb128", mlpb128.NumParams}, {"cnn", cnn.NumParams}, {"lstm", lstm.NumParams}} {
		b.Run(fmt.Sprintf("model=%s/ranks=%d", mc.name, comm.Size()), func(b *testing.B) {
			buf := make([]float32, mc.n)
			b.SetBytes(int64(4 * mc.n))
			for range b.N {
				if err := comm.SumFloat32(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
