package modeltest

import "github.com/backpropgen/backpropgen/runtime"

// RandomFeeds returns n examples for a model's inputs and labels, in the
// order of io.Inputs and io.Labels: inputs drawn from N(0, 1), labels
// (and token ids) uniform over their classes, from seed.
func RandomFeeds[T runtime.Float](io runtime.IO[T], n int, seed uint64) (inputs [][]T, labels [][]int32) {
	rng := runtime.NewRNG(seed)
	for _, f := range io.Inputs {
		x := make([]T, n*f.Row)
		for i := range x {
			x[i] = T(rng.NormFloat64())
		}
		inputs = append(inputs, x)
	}
	for _, f := range io.Labels {
		y := make([]int32, n*f.Row)
		for i := range y {
			y[i] = int32(rng.IntN(f.Classes))
		}
		labels = append(labels, y)
	}
	return inputs, labels
}
