package spec

import (
	"fmt"
	"strconv"
	"strings"
)

// UnaryOp is an element-wise operator of the runtime's Unary, UnaryGrad,
// BiasAct and fused kernels.
type UnaryOp uint8

// Unary operators.
const (
	Relu UnaryOp = iota
	Sigmoid
	Tanh
	Exp
	Log
	Neg
	Sqrt
	Linear  // the identity: a fused product's epilogue with a bias and no activation
	Gelu    // GPT-2's tanh approximation of GELU
	GeluErf // the exact GELU, x·Φ(x)
	numUnary
)

var unaryNames = [numUnary]string{"Relu", "Sigmoid", "Tanh", "Exp", "Log", "Neg", "Sqrt", "Linear", "Gelu", "GeluErf"}

// String returns the operator's name in package runtime, e.g. "Sigmoid".
func (op UnaryOp) String() string {
	if op < numUnary {
		return unaryNames[op]
	}
	return "UnaryOp(" + strconv.Itoa(int(op)) + ")"
}

// UnaryOps returns every operator, in constant order.
func UnaryOps() []UnaryOp {
	out := make([]UnaryOp, numUnary)
	for i := range out {
		out[i] = UnaryOp(i)
	}
	return out
}

// BinaryOp is an element-wise binary operator of the runtime's Binary,
// BinaryScalar, BinaryRows and BinaryStrided kernels.
type BinaryOp uint8

// Binary operators.
const (
	Add BinaryOp = iota
	Sub
	Mul
	Div
	numBinary
)

var binaryNames = [numBinary]string{"Add", "Sub", "Mul", "Div"}

// String returns the operator's name in package runtime, e.g. "Add".
func (op BinaryOp) String() string {
	if op < numBinary {
		return binaryNames[op]
	}
	return "BinaryOp(" + strconv.Itoa(int(op)) + ")"
}

// BinaryOps returns every operator, in constant order.
func BinaryOps() []BinaryOp { return []BinaryOp{Add, Sub, Mul, Div} }

// RNNCell selects the recurrent cell of an RNN layer.
type RNNCell uint8

// Recurrent cells, with PyTorch's gate order.
const (
	SimpleRNN RNNCell = iota
	LSTM
	GRU
	numCells
)

var (
	cellNames   = [numCells]string{"simple_rnn", "lstm", "gru"}
	cellGoNames = [numCells]string{"SimpleRNN", "LSTM", "GRU"}
)

// Gates returns the number of H-wide gate blocks of the cell: 1 for
// SimpleRNN, 4 for LSTM, 3 for GRU. It panics on an unknown cell.
func (c RNNCell) Gates() int {
	switch c {
	case SimpleRNN:
		return 1
	case LSTM:
		return 4
	case GRU:
		return 3
	}
	panic("spec.RNNCell.Gates: unknown cell " + c.String())
}

// CellState reports whether the cell carries a cell state c besides the
// hidden state h (LSTM): an initial c0, a final c.
func (c RNNCell) CellState() bool { return c == LSTM }

// String returns the cell's name in descriptions: "simple_rnn", "lstm" or
// "gru".
func (c RNNCell) String() string {
	if c < numCells {
		return cellNames[c]
	}
	return "RNNCell(" + strconv.Itoa(int(c)) + ")"
}

// GoName returns the cell's constant in package runtime, e.g. "LSTM".
func (c RNNCell) GoName() string {
	if c < numCells {
		return cellGoNames[c]
	}
	return c.String()
}

// Cells returns every cell, in constant order.
func Cells() []RNNCell { return []RNNCell{SimpleRNN, LSTM, GRU} }

// ParseCell returns the cell with the given description name.
func ParseCell(name string) (RNNCell, bool) {
	for i, n := range cellNames {
		if n == name {
			return RNNCell(i), true
		}
	}
	return 0, false
}

// Init names a weight initializer. The definitions follow Keras
// (keras.initializers), so models ported from Keras start from the same
// distributions.
type Init uint8

// The initializers. The zero value is Zeros.
const (
	Zeros         Init = iota // all 0
	Ones                      // all 1
	GlorotUniform             // U(-l, l), l = √(6/(fanIn+fanOut))
	GlorotNormal              // truncated N(0, σ²), σ = √(2/(fanIn+fanOut)) / 0.8796…
	HeUniform                 // U(-l, l), l = √(6/fanIn)
	HeNormal                  // truncated N(0, σ²), σ = √(2/fanIn) / 0.8796…
	LeCunUniform              // U(-l, l), l = √(3/fanIn)
	LeCunNormal               // truncated N(0, σ²), σ = √(1/fanIn) / 0.8796…
	NumInits
)

var (
	initNames   = [NumInits]string{"zeros", "ones", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform", "lecun_normal"}
	initGoNames = [NumInits]string{"Zeros", "Ones", "GlorotUniform", "GlorotNormal", "HeUniform", "HeNormal", "LeCunUniform", "LeCunNormal"}
)

// String returns the Keras name of the initializer, e.g. "glorot_uniform".
func (i Init) String() string {
	if i < NumInits {
		return initNames[i]
	}
	return fmt.Sprintf("Init(%d)", uint8(i))
}

// GoName returns the initializer's constant in package runtime, e.g.
// "GlorotUniform".
func (i Init) GoName() string {
	if i < NumInits {
		return initGoNames[i]
	}
	return i.String()
}

// InitNames returns the names ParseInit accepts, in constant order.
func InitNames() []string { return append([]string(nil), initNames[:]...) }

// ParseInit returns the initializer with the given Keras name (case and
// surrounding space are ignored). The error lists the valid names.
func ParseInit(name string) (Init, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	for i, s := range initNames {
		if s == n {
			return Init(i), nil
		}
	}
	return 0, fmt.Errorf("unknown initializer %q: valid names are %s", name, strings.Join(initNames[:], ", "))
}

// FanInOut returns the fans of a weight tensor with the given shape, using
// Keras' convention: [] → (1, 1); [n] → (n, n); [in, out] → (in, out); and
// for convolution kernels [k1, ..., kd, in, out] the receptive field size
// k1·…·kd multiplies both in and out.
func FanInOut(shape []int) (fanIn, fanOut int) {
	switch len(shape) {
	case 0:
		return 1, 1
	case 1:
		return shape[0], shape[0]
	case 2:
		return shape[0], shape[1]
	}
	receptive := 1
	for _, d := range shape[:len(shape)-2] {
		receptive *= d
	}
	return shape[len(shape)-2] * receptive, shape[len(shape)-1] * receptive
}
