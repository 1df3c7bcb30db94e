package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/backpropgen/backpropgen/generated/lenet5"
	"github.com/backpropgen/backpropgen/generated/mlp"
	"github.com/backpropgen/backpropgen/generated/mlpbn"
	"github.com/backpropgen/backpropgen/generated/resnet"
	"github.com/backpropgen/backpropgen/generated/seqmnist"
	"github.com/backpropgen/backpropgen/runtime"
)

// model is the part of a generated model's API that training uses: the
// methods every generated package has. Each *Model of generated/mlp,
// generated/lenet5 and generated/seqmnist satisfies it as is.
type model interface {
	Init(seed uint64)
	ZeroGrad()
	Forward(n int) (float32, error)
	Backward(n int) error
	TrainStep(n int, opt runtime.Optimizer[float32]) (float32, error)
	Predict(n int, classes []int32) error
	SaveCheckpoint(path string, opt runtime.Optimizer[float32], meta map[string]string) error
	LoadCheckpoint(path string, opt runtime.Optimizer[float32]) (map[string]string, error)
}

// Net is a generated model together with the fields and constants that an
// interface cannot reach: its inputs, parameters, gradients and batch size.
// The three models read the same memory layout, Batch rows of 784 pixels in
// row-major order, whatever their input shape.
type Net struct {
	model
	Name   string
	X      []float32 // Batch rows of mnistdata.Pixels values
	Y      []int32   // Batch labels
	Params []float32
	Grads  []float32
	Batch  int
}

// Defaults are a model's default training settings: those that reach its
// target test accuracy with the default seed.
type Defaults struct {
	Epochs   int
	LR       float64
	Schedule string
	Clip     float64 // maximum global gradient norm; 0: no clipping
	Shift    int     // random shifts of the training images, in pixels
}

// Arch describes one of the models this program trains.
type Arch struct {
	Name        string
	Description string
	New         func() *Net // a new model with zero parameters
	Defaults    Defaults
}

// Checkpoint is the default checkpoint file of the model.
func (a *Arch) Checkpoint() string { return "mnist-" + a.Name + ".safetensors" }

// archs lists the models, the default first.
var archs = []*Arch{
	{
		Name:        "mlp",
		Description: "784-128-64-10 perceptron with ReLU",
		New: func() *Net {
			m := mlp.New()
			return &Net{model: m, Name: "mlp", X: m.X, Y: m.Y, Params: m.Params, Grads: m.Grads, Batch: mlp.Batch}
		},
		Defaults: Defaults{Epochs: 5, LR: 1e-3, Schedule: "cosine"},
	},
	{
		Name:        "lenet5",
		Description: "LeNet-5 with ReLU and max pooling",
		New: func() *Net {
			m := lenet5.New()
			return &Net{model: m, Name: "lenet5", X: m.X, Y: m.Y, Params: m.Params, Grads: m.Grads, Batch: lenet5.Batch}
		},
		Defaults: Defaults{Epochs: 12, LR: 2e-3, Schedule: "cosine"},
	},
	{
		Name:        "seqmnist",
		Description: "sequential MNIST: LSTM(128) over the 28 rows, then dense(10)",
		New: func() *Net {
			m := seqmnist.New()
			return &Net{model: m, Name: "seqmnist", X: m.X, Y: m.Y, Params: m.Params, Grads: m.Grads, Batch: seqmnist.Batch}
		},
		Defaults: Defaults{Epochs: 10, LR: 2e-3, Schedule: "cosine", Clip: 1},
	},
	{
		Name:        "resnet",
		Description: "residual CNN: a stem and two residual blocks with batch norm, global average pooling, dense(10)",
		New: func() *Net {
			m := resnet.New()
			return &Net{model: m, Name: "resnet", X: m.X, Y: m.Y, Params: m.Params, Grads: m.Grads, Batch: resnet.Batch}
		},
		Defaults: Defaults{Epochs: 10, LR: 3e-3, Schedule: "cosine", Shift: 2},
	},
	{
		Name:        "mlpbn",
		Description: "784-256-128-10 perceptron with batch norm, ReLU and dropout 0.2",
		New: func() *Net {
			m := mlpbn.New()
			return &Net{model: m, Name: "mlpbn", X: m.X, Y: m.Y, Params: m.Params, Grads: m.Grads, Batch: mlpbn.Batch}
		},
		Defaults: Defaults{Epochs: 10, LR: 2e-3, Schedule: "cosine"},
	},
}

// archByName returns the model called name.
func archByName(name string) (*Arch, error) {
	i := slices.IndexFunc(archs, func(a *Arch) bool { return a.Name == name })
	if i < 0 {
		return nil, fmt.Errorf("-model %q: want one of %s", name, archNames())
	}
	return archs[i], nil
}

// archNames returns "mlp, lenet5 or seqmnist".
func archNames() string {
	names := make([]string, len(archs))
	for i, a := range archs {
		names[i] = a.Name
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// defaultsHelp describes a per-model default for the flag usage, e.g.
// "mlp 5, lenet5 12, seqmnist 10".
func defaultsHelp(value func(*Arch) string) string {
	parts := make([]string, len(archs))
	for i, a := range archs {
		parts[i] = a.Name + " " + value(a)
	}
	return strings.Join(parts, ", ")
}
