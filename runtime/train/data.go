package train

import (
	"fmt"
	"math/rand/v2"

	"github.com/backpropgen/backpropgen/runtime"
)

// Dataset is a set of examples that a training loop copies, a batch at a
// time, into a model's inputs and labels.
type Dataset[T runtime.Float] interface {
	// Len is the number of examples.
	Len() int
	// Fill writes examples rows[0], rows[1], ... into rows 0, 1, ... of
	// the model's inputs and labels (io, from the model's IO method). rng
	// is for augmentation: Fit seeds it from the run's seed, the epoch and
	// the step, so a resumed run draws what an uninterrupted one would.
	Fill(io runtime.IO[T], rows []int, rng *rand.Rand)
}

// Slices is a dataset held in memory: for each input of the model (in the
// order of its IO's Inputs) the examples' rows one after another, and the
// same for each label input.
type Slices[T runtime.Float] struct {
	Inputs [][]T
	Labels [][]int32
	n      int
}

// NewSlices returns the dataset of n examples whose rows are in inputs and
// labels, checking their lengths against the model's rows (io).
func NewSlices[T runtime.Float](io runtime.IO[T], n int, inputs [][]T, labels [][]int32) (*Slices[T], error) {
	if len(inputs) != len(io.Inputs) || len(labels) != len(io.Labels) {
		return nil, fmt.Errorf("train: %d inputs and %d label sets for model %s, which has %d and %d", len(inputs), len(labels), io.Model, len(io.Inputs), len(io.Labels))
	}
	for i, f := range io.Inputs {
		if len(inputs[i]) != n*f.Row {
			return nil, fmt.Errorf("train: input %s holds %d values for %d examples of %d", f.Name, len(inputs[i]), n, f.Row)
		}
	}
	for i, f := range io.Labels {
		if len(labels[i]) != n*f.Row {
			return nil, fmt.Errorf("train: labels %s hold %d values for %d examples of %d", f.Name, len(labels[i]), n, f.Row)
		}
		for j, c := range labels[i] {
			if c < 0 || int(c) >= f.Classes {
				return nil, fmt.Errorf("train: labels %s: example %d has class %d, want [0, %d)", f.Name, j/f.Row, c, f.Classes)
			}
		}
	}
	return &Slices[T]{Inputs: inputs, Labels: labels, n: n}, nil
}

// Len is the number of examples.
func (s *Slices[T]) Len() int { return s.n }

// Fill copies the rows.
func (s *Slices[T]) Fill(io runtime.IO[T], rows []int, rng *rand.Rand) {
	for k, f := range io.Inputs {
		src := s.Inputs[k]
		for i, r := range rows {
			copy(f.Data[i*f.Row:(i+1)*f.Row], src[r*f.Row:(r+1)*f.Row])
		}
	}
	for k, f := range io.Labels {
		src := s.Labels[k]
		for i, r := range rows {
			copy(f.Data[i*f.Row:(i+1)*f.Row], src[r*f.Row:(r+1)*f.Row])
		}
	}
}

// Subset is the examples of a dataset at the given indices, in order.
type Subset[T runtime.Float] struct {
	Of   Dataset[T]
	Rows []int
	buf  []int
}

// Len is the number of examples.
func (s *Subset[T]) Len() int { return len(s.Rows) }

// Fill maps rows to the underlying dataset's.
func (s *Subset[T]) Fill(io runtime.IO[T], rows []int, rng *rand.Rand) {
	if cap(s.buf) < len(rows) {
		s.buf = make([]int, len(rows), max(len(rows), io.Batch))
	}
	b := s.buf[:len(rows)]
	for i, r := range rows {
		b[i] = s.Rows[r]
	}
	s.Of.Fill(io, b, rng)
}

// Split divides ds into a training and a validation part, the last
// fraction of its examples after one shuffle from seed (so both parts are
// the same on every run with the seed), as a validation split does.
func Split[T runtime.Float](ds Dataset[T], fraction float64, seed uint64) (train, validation *Subset[T], err error) {
	if !(fraction > 0 && fraction < 1) {
		return nil, nil, fmt.Errorf("train: validation fraction %v, want 0 < fraction < 1", fraction)
	}
	n := ds.Len()
	nv := int(float64(n)*fraction + 0.5)
	if nv < 1 || nv >= n {
		return nil, nil, fmt.Errorf("train: a validation fraction of %v leaves %d of %d examples for validation; want at least one in each part", fraction, nv, n)
	}
	perm := order(n, seed, 0)
	return &Subset[T]{Of: ds, Rows: perm[:n-nv]}, &Subset[T]{Of: ds, Rows: perm[n-nv:]}, nil
}

// order is the permutation of n examples for an epoch: a shuffle from
// (seed, epoch), the same on every run.
func order(n int, seed uint64, epoch int) []int {
	perm := make([]int, n)
	shuffle(perm, seed, epoch)
	return perm
}

func shuffle(perm []int, seed uint64, epoch int) {
	for i := range perm {
		perm[i] = i
	}
	rng := rand.New(rand.NewPCG(seed, uint64(epoch)^0xda942042e4dd58b5))
	rng.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
}
