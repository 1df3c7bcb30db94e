package train

import (
	"context"
	"testing"

	"github.com/backpropgen/backpropgen/generated/mlp"
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
