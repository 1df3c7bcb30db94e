package train

import (
	"context"
	"testing"

	"github.com/backpropgen/backpropgen/generated/cnn"
	"github.com/backpropgen/backpropgen/generated/lstm"
	"github.com/backpropgen/backpropgen/generated/mlp"
	"github.com/backpropgen/backpropgen/generated/mlpb128"
	"github.com/backpropgen/backpropgen/runtime"
)

// BenchmarkLoop measures Fit's cost per step against the loop a user
// would write by hand around the generated TrainStep: both shuffle every
// epoch, fill the batch from the same in-memory dataset, set a cosine
// rate and step Adam on generated/mlp; Fit also keeps the loss and
// accuracy sums, the plot points and the checks for cancellation. Compare
// the two with benchstat: ns/op is per step.
//
//	go test ./runtime/train -run '^$' -bench Loop -count 10 | benchstat -col /loop -
func BenchmarkLoop(b *testing.B) {
	m := mlp.New()
	m.Init(1)
	data := synthetic(b, m.IO(), 64*mlp.Batch, 1)
	sched := Cosine{LR: 1e-3}

	b.Run("loop=bare", func(b *testing.B) {
		io := m.IO()
		opt := runtime.NewAdam[float32](mlp.NumParams, 1e-3)
		perm := make([]int, data.Len())
		total := int64(b.N)
		b.ResetTimer()
		for step := int64(0); step < total; {
			shuffle(perm, 1, int(step))
			for lo := 0; lo < len(perm) && step < total; lo += mlp.Batch {
				rows := perm[lo:min(lo+mlp.Batch, len(perm))]
				data.Fill(io, rows, nil)
				opt.SetLR(sched.At(step, total))
				if _, err := m.TrainStep(len(rows), opt); err != nil {
					b.Fatal(err)
				}
				step++
			}
		}
	})
	b.Run("loop=fit", func(b *testing.B) {
		cfg := Config[float32]{Steps: int64(b.N), Schedule: sched, Seed: 1, KeepWeights: true}
		b.ResetTimer()
		if _, err := Fit(context.Background(), m, data, cfg); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkParallel measures data-parallel steps (gradients and Adam) on
// generated/mlpb128, cnn and lstm: the model's own TrainStep on its batch
// (plain), then that batch in 2 shards on 1 and 2 workers, and twice the
// batch (2 shards of the model's batch) on 1 and 2 workers. ns/op is per
// step; compare samples per second within a batch size.
//
//	go test ./runtime/train -run '^$' -bench Parallel -count 6 | benchstat -col /mode -
func BenchmarkParallel(b *testing.B) {
	models := []struct {
		name string
		new  func() (Model[float32], func() Model[float32], func(int, runtime.Optimizer[float32]) (float32, error))
	}{
		{"mlpb128", func() (Model[float32], func() Model[float32], func(int, runtime.Optimizer[float32]) (float32, error)) {
			m := mlpb128.New()
			return m, func() Model[float32] { return m.NewReplica() }, m.TrainStep
		}},
		{"cnn", func() (Model[float32], func() Model[float32], func(int, runtime.Optimizer[float32]) (float32, error)) {
			m := cnn.New()
			return m, func() Model[float32] { return m.NewReplica() }, m.TrainStep
		}},
		{"lstm", func() (Model[float32], func() Model[float32], func(int, runtime.Optimizer[float32]) (float32, error)) {
			m := lstm.New()
			return m, func() Model[float32] { return m.NewReplica() }, m.TrainStep
		}},
	}
	for _, mc := range models {
		for _, mode := range []struct {
			name             string
			workers, batches int // batches: the step's rows in model batches
		}{{"plain", 0, 1}, {"b1/w1", 1, 1}, {"b1/w2", 2, 1}, {"b2/w1", 1, 2}, {"b2/w2", 2, 2}} {
			b.Run("model="+mc.name+"/mode="+mode.name, func(b *testing.B) {
				m, replica, trainStep := mc.new()
				m.Init(1)
				io := m.IO()
				var model Model[float32] = m
				if mode.workers > 0 {
					p, err := NewParallel(model, replica, ParallelConfig{Shards: 2, Workers: mode.workers, Batch: mode.batches * io.Batch})
					if err != nil {
						b.Fatal(err)
					}
					defer p.Close()
					model = p
				}
				pio := model.IO()
				data := randomData(b, pio, pio.Batch, 3)
				rows := make([]int, pio.Batch)
				for i := range rows {
					rows[i] = i
				}
				data.Fill(pio, rows, nil)
				opt := runtime.NewAdam[float32](len(io.Params), 1e-4)
				b.ResetTimer()
				for range b.N {
					if mode.workers == 0 {
						if _, err := trainStep(pio.Batch, opt); err != nil {
							b.Fatal(err)
						}
						continue
					}
					if _, err := model.Gradients(pio.Batch); err != nil {
						b.Fatal(err)
					}
					model.(*Parallel[float32]).Step(opt)
				}
				b.ReportMetric(float64(b.N*pio.Batch)/b.Elapsed().Seconds(), "samples/s")
			})
		}
	}
}
