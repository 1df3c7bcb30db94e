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
	"github.com/backpropgen/backpropgen/runtime/train"
)

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
	New         func() train.Model[float32] // a new model with zero parameters
	// Replica returns a replica of a model New made (sharing its
	// parameters), for data-parallel training.
	Replica  func(train.Model[float32]) train.Model[float32]
	Defaults Defaults
}

// File is the default name of the model's checkpoint (ext .safetensors),
// metrics (.jsonl) and plot (.png): mnist-MODEL.ext.
func (a *Arch) File(ext string) string { return "mnist-" + a.Name + ext }

// archs lists the models, the default first.
var archs = []*Arch{
	{
		Name:        "mlp",
		Description: "784-128-64-10 perceptron with ReLU",
		New:         func() train.Model[float32] { return mlp.New() },
		Replica:     func(m train.Model[float32]) train.Model[float32] { return m.(*mlp.Model).NewReplica() },
		Defaults:    Defaults{Epochs: 5, LR: 1e-3, Schedule: "cosine"},
	},
	{
		Name:        "lenet5",
		Description: "LeNet-5 with ReLU and max pooling",
		New:         func() train.Model[float32] { return lenet5.New() },
		Replica:     func(m train.Model[float32]) train.Model[float32] { return m.(*lenet5.Model).NewReplica() },
		Defaults:    Defaults{Epochs: 12, LR: 2e-3, Schedule: "cosine"},
	},
	{
		Name:        "seqmnist",
		Description: "sequential MNIST: LSTM(128) over the 28 rows, then dense(10)",
		New:         func() train.Model[float32] { return seqmnist.New() },
		Replica:     func(m train.Model[float32]) train.Model[float32] { return m.(*seqmnist.Model).NewReplica() },
		Defaults:    Defaults{Epochs: 10, LR: 2e-3, Schedule: "cosine", Clip: 1},
	},
	{
		Name:        "resnet",
		Description: "residual CNN: a stem and three residual blocks with batch norm, global average pooling, dense(10)",
		New:         func() train.Model[float32] { return resnet.New() },
		Replica:     func(m train.Model[float32]) train.Model[float32] { return m.(*resnet.Model).NewReplica() },
		Defaults:    Defaults{Epochs: 10, LR: 3e-3, Schedule: "cosine", Shift: 2},
	},
	{
		Name:        "mlpbn",
		Description: "784-256-128-10 perceptron with batch norm, ReLU and dropout 0.2",
		New:         func() train.Model[float32] { return mlpbn.New() },
		Replica:     func(m train.Model[float32]) train.Model[float32] { return m.(*mlpbn.Model).NewReplica() },
		Defaults:    Defaults{Epochs: 10, LR: 2e-3, Schedule: "cosine"},
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
