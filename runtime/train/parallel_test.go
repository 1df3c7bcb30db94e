package train

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/backpropgen/backpropgen/generated/lstm"
	"github.com/backpropgen/backpropgen/generated/mlp"
	"github.com/backpropgen/backpropgen/generated/mlpbn"
	"github.com/backpropgen/backpropgen/runtime"
	"github.com/backpropgen/backpropgen/runtime/modeltest"
)

// replicated are the models with their replica constructors.
var replicated = []struct {
	name string
	new  func() (Model[float32], func() Model[float32])
}{
	{"mlp", func() (Model[float32], func() Model[float32]) {
		m := mlp.New()
		return m, func() Model[float32] { return m.NewReplica() }
	}},
	{"mlpbn", func() (Model[float32], func() Model[float32]) { // batch norm and dropout
		m := mlpbn.New()
		return m, func() Model[float32] { return m.NewReplica() }
	}},
	{"lstm", func() (Model[float32], func() Model[float32]) {
		m := lstm.New()
		return m, func() Model[float32] { return m.NewReplica() }
	}},
}

// random fills a dataset of n examples for io's inputs and labels.
func randomData(t testing.TB, io runtime.IO[float32], n int, seed uint64) *Slices[float32] {
	inputs, labels := modeltest.RandomFeeds(io, n, seed)
	ds, err := NewSlices(io, n, inputs, labels)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// fitParallel trains a new model for two epochs (the last batch partial)
// on shards with the given workers and returns its parameters and state.
func fitParallel(t *testing.T, newModel func() (Model[float32], func() Model[float32]), pc ParallelConfig, examples int) []float32 {
	m, replica := newModel()
	p, err := NewParallel(m, replica, pc)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	data := randomData(t, p.IO(), examples, 3)
	cfg := Config[float32]{Epochs: 2, Schedule: Constant{LR: 1e-3}, Clip: 5, Seed: 1, Validation: randomData(t, p.IO(), 50, 4)}
	if _, err := Fit(context.Background(), p, data, cfg); err != nil {
		t.Fatal(err)
	}
	return params(m)
}

// TestParallelWorkers: with the same shards, 1, 2 and 4 workers give the
// same parameters and state, bit for bit: with a partial last batch, and
// with shards larger than the model's batch (gradient accumulation, the
// last micro-batch partial).
func TestParallelWorkers(t *testing.T) {
	for _, mc := range replicated {
		t.Run(mc.name, func(t *testing.T) {
			m, _ := mc.new()
			b := m.IO().Batch
			for _, tc := range []struct {
				name  string
				batch int
			}{
				{"shards", 0},               // 4 shards of b rows
				{"accumulate", 4*b + 4*b/3}, // 4 shards of b + b/3 rows: two passes each
			} {
				var want []float32
				for _, workers := range []int{1, 2, 4} {
					got := fitParallel(t, mc.new, ParallelConfig{Shards: 4, Workers: workers, Batch: tc.batch}, 9*b+5)
					if want == nil {
						want = got
					} else if i := equalBits(got, want); i >= 0 {
						t.Errorf("%s: %d workers: element %d differs from 1 worker's", tc.name, workers, i)
					}
				}
			}
		})
	}
}

// TestParallelOneShard: one shard is the model itself, bit for bit.
func TestParallelOneShard(t *testing.T) {
	m := mlpbn.New()
	data := randomData(t, m.IO(), 5*mlpbn.Batch+7, 3)
	cfg := Config[float32]{Epochs: 2, Schedule: Constant{LR: 1e-3}, Clip: 5, Seed: 1, Validation: randomData(t, m.IO(), 50, 4)}
	if _, err := Fit(context.Background(), Model[float32](m), data, cfg); err != nil {
		t.Fatal(err)
	}
	want := params(m)
	got := fitParallel(t, replicated[1].new, ParallelConfig{Shards: 1}, 5*mlpbn.Batch+7)
	if i := equalBits(got, want); i >= 0 {
		t.Errorf("one shard: element %d differs from the model trained alone", i)
	}
}

// TestParallelMean: the loss and gradients of shards of unequal size, some
// accumulated over passes, are the mean over all the rows, as the model
// computes it on them at once (to float32 rounding).
func TestParallelMean(t *testing.T) {
	m := mlp.New()
	m.Init(1)
	p, err := NewParallel(Model[float32](m), func() Model[float32] { return m.NewReplica() }, ParallelConfig{Shards: 3, Batch: 3*mlp.Batch + 30})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	data := randomData(t, p.IO(), p.IO().Batch, 3)
	rows := make([]int, p.IO().Batch)
	for i := range rows {
		rows[i] = i
	}
	whole := mlp.New() // the same parameters, all the rows in passes of its batch
	copy(whole.Params, m.Params)
	for _, n := range []int{p.IO().Batch, 100, 31, 2} { // 3 passes per shard; 1; one shard empty
		data.Fill(p.IO(), rows[:n], nil)
		loss, err := p.Gradients(n)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]float64, mlp.NumParams)
		var wantLoss float64
		for lo := 0; lo < n; lo += mlp.Batch {
			k := min(mlp.Batch, n-lo)
			data.Fill(whole.IO(), rows[lo:lo+k], nil)
			l, err := whole.Gradients(k)
			if err != nil {
				t.Fatal(err)
			}
			wantLoss += float64(l) * float64(k) / float64(n)
			for i, g := range whole.Grads {
				want[i] += float64(g) * float64(k) / float64(n)
			}
		}
		if math.Abs(float64(loss)-wantLoss) > 1e-5*math.Abs(wantLoss) {
			t.Errorf("n=%d: loss %v, want %v", n, loss, wantLoss)
		}
		var num, den float64
		for i, g := range m.Grads {
			num += (float64(g) - want[i]) * (float64(g) - want[i])
			den += want[i] * want[i]
		}
		if rel := math.Sqrt(num / den); !(rel < 1e-5) {
			t.Errorf("n=%d: gradients off by %.2g (relative L2)", n, rel)
		}
	}
}

// TestParallelAllocs: a parallel step allocates nothing.
func TestParallelAllocs(t *testing.T) {
	m := mlpbn.New()
	m.Init(1)
	p, err := NewParallel(Model[float32](m), func() Model[float32] { return m.NewReplica() }, ParallelConfig{Shards: 2, Workers: 2, Batch: 3 * mlpbn.Batch})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	data := randomData(t, p.IO(), p.IO().Batch, 3)
	rows := make([]int, p.IO().Batch)
	for i := range rows {
		rows[i] = i
	}
	data.Fill(p.IO(), rows, nil)
	if _, err := p.Gradients(len(rows)); err != nil { // warm up
		t.Fatal(err)
	}
	if a := testing.AllocsPerRun(20, func() {
		if _, err := p.Gradients(len(rows)); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("%v allocations per parallel step, want 0", a)
	}
}

// TestParallelErrors: a NaN in a shard's row names the shard and, through
// Fit, the dataset's example; bad settings are refused.
func TestParallelErrors(t *testing.T) {
	m := mlp.New()
	p, err := NewParallel(Model[float32](m), func() Model[float32] { return m.NewReplica() }, ParallelConfig{Shards: 2, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	data := randomData(t, p.IO(), 2*p.IO().Batch, 3)
	data.Inputs[0][40*784+3] = float32(math.NaN())
	_, err = Fit(context.Background(), p, data, Config[float32]{Epochs: 1, Schedule: Constant{LR: 1e-3}, Sequential: true})
	if err == nil || !strings.Contains(err.Error(), "shard 1 (rows 32 to 63 of the batch): mlp: input x row 8, element 3 is NaN") ||
		!strings.Contains(err.Error(), "example 40 of the dataset in batch row 40") {
		t.Errorf("NaN input: %v", err)
	}
	for _, tc := range []struct {
		pc   ParallelConfig
		want string
	}{
		{ParallelConfig{Shards: 2, Workers: 3}, "3 workers for 2 shards"},
		{ParallelConfig{Shards: 4, Batch: 3}, "a batch of 3 rows cannot fill 4 shards"},
	} {
		if _, err := NewParallel(Model[float32](m), func() Model[float32] { return m.NewReplica() }, tc.pc); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.pc, err, tc.want)
		}
	}
	if _, err := NewParallel(Model[float32](m), func() Model[float32] { return mlp.New() }, ParallelConfig{Shards: 2}); err == nil || !strings.Contains(err.Error(), "does not share the model's parameters") {
		t.Errorf("a replica of its own: %v", err)
	}
}

// TestParallelLateWake: when the caller is delayed between starting a
// phase and waking the sleeping workers (longer than a worker spins), the
// workers that already ran the phase and went to sleep get a late wake-up;
// they must wait for the next phase, not run this one again (which once
// ended a phase early: wrong sums, and a race).
func TestParallelLateWake(t *testing.T) {
	lateWake = func() { time.Sleep(2 * poolSpin) }
	defer func() { lateWake = nil }()
	mc := replicated[0]
	m, _ := mc.new()
	b := m.IO().Batch
	want := fitParallel(t, mc.new, ParallelConfig{Shards: 4, Workers: 1}, 3*b)
	got := fitParallel(t, mc.new, ParallelConfig{Shards: 4, Workers: 4}, 3*b)
	if i := equalBits(got, want); i >= 0 {
		t.Errorf("element %d differs between 4 workers and 1", i)
	}
}
