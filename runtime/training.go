package runtime

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"unsafe"
)

// Metadata keys written by SaveTraining.
const (
	MetaModel = "backpropgen.model" // the model description's name
	MetaStep  = "backpropgen.step"  // the optimizer's step count
	MetaState = "backpropgen.state" // the optimizer's tensor names, comma-separated

	// The counters of a model that draws dropout masks: its seed, and the
	// training steps it has taken (the masks' key), so that a resumed run
	// draws the masks an uninterrupted one would.
	MetaSeed  = "backpropgen.seed"
	MetaSteps = "backpropgen.steps"
)

// WithCounters returns a copy of meta with a model's seed and step count
// (MetaSeed, MetaSteps) added, for SaveTraining.
func WithCounters(meta map[string]string, seed, step uint64) map[string]string {
	m := maps.Clone(meta)
	if m == nil {
		m = map[string]string{}
	}
	m[MetaSeed] = strconv.FormatUint(seed, 10)
	m[MetaSteps] = strconv.FormatUint(step, 10)
	return m
}

// Counters reads what WithCounters wrote, for a checkpoint at path.
func Counters(path string, meta map[string]string) (seed, step uint64, err error) {
	seed, err1 := strconv.ParseUint(meta[MetaSeed], 10, 64)
	step, err2 := strconv.ParseUint(meta[MetaSteps], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("%s: checkpoint has no valid %s and %s metadata (%q, %q) for the model's dropout masks: it was written by another model; load it into the model that wrote it", path, MetaSeed, MetaSteps, meta[MetaSeed], meta[MetaSteps])
	}
	return seed, step, nil
}

// SaveTraining writes a model's parameters and its optimizer's state to one
// safetensors checkpoint, atomically. The parameters keep their description
// names (h1.W, h1.b, ...) so the file loads in PyTorch or NumPy; optimizer
// state follows under its own prefix. opt may be nil.
func SaveTraining[T Float](path, model string, params []Tensor[T], opt Optimizer[T], meta map[string]string) error {
	all := toFileLayout(params)
	m := maps.Clone(meta)
	if m == nil {
		m = map[string]string{}
	}
	m[MetaModel] = model
	if opt != nil {
		state := opt.State()
		all = append(all, state...)
		m[MetaStep] = strconv.FormatInt(opt.StepCount(), 10)
		names := make([]string, len(state))
		for i, t := range state {
			names[i] = t.Name
		}
		m[MetaState] = strings.Join(names, ",")
	}
	return SaveCheckpoint(path, all, m)
}

// LoadTraining restores what SaveTraining wrote into params and opt (which
// may be nil to load the parameters only, e.g. for inference or fine-tuning
// with a fresh optimizer). On any error nothing is modified.
func LoadTraining[T Float](path, model string, params []Tensor[T], opt Optimizer[T]) (map[string]string, error) {
	return LoadTrainingWith(path, model, params, opt, nil)
}

// LoadTrainingWith is LoadTraining with a check of the file's metadata
// (nil for none) that runs before anything is modified: an error from it
// is LoadTrainingWith's, and nothing changes.
func LoadTrainingWith[T Float](path, model string, params []Tensor[T], opt Optimizer[T], check func(meta map[string]string) error) (map[string]string, error) {
	file := toFileLayout(params) // permuted copies where FileAxes is set
	all := file
	if opt != nil {
		all = append(all, opt.State()...)
	}
	// Read the metadata first (tolerating extra tensors), then load
	// strictly (LoadCheckpoint changes nothing on error): without an
	// optimizer, only the state SaveTraining recorded may be left unread.
	meta, err := peekMeta(path, file, func(string) bool { return true })
	if err != nil {
		return nil, err
	}
	if got := meta[MetaModel]; got != model {
		return nil, fmt.Errorf("%s: checkpoint of model %q, not %q: load it into the model it was written by", path, got, model)
	}
	if check != nil {
		if err := check(meta); err != nil {
			return nil, err
		}
	}
	var step int64
	if opt != nil {
		step, err = strconv.ParseInt(meta[MetaStep], 10, 64)
		if err != nil || step < 0 {
			return nil, fmt.Errorf("%s: checkpoint has no valid %s metadata (%q) for the optimizer: it was saved without optimizer state; load it with a nil optimizer", path, MetaStep, meta[MetaStep])
		}
	}
	var skip func(string) bool
	if opt == nil {
		state := strings.Split(meta[MetaState], ",")
		skip = func(name string) bool { return slices.Contains(state, name) }
	}
	if _, err := loadCheckpoint(path, all, skip); err != nil {
		return nil, err
	}
	for i, t := range params {
		if t.FileAxes != nil {
			permute(t.Data, file[i].Data, file[i].Shape, inverse(t.FileAxes))
		}
	}
	if opt != nil {
		opt.SetStepCount(step)
	}
	return meta, nil
}

// toFileLayout returns params with every tensor that has FileAxes replaced
// by a permuted copy in file layout; the others are shared, not copied.
func toFileLayout[T Float](params []Tensor[T]) []Tensor[T] {
	out := make([]Tensor[T], len(params))
	for i, t := range params {
		out[i] = t
		if t.FileAxes == nil {
			continue
		}
		shape := make([]int, len(t.Shape))
		for j, a := range t.FileAxes {
			shape[j] = t.Shape[a]
		}
		data := make([]T, len(t.Data))
		permute(data, t.Data, t.Shape, t.FileAxes)
		out[i] = Tensor[T]{Name: t.Name, Shape: shape, Data: data}
	}
	return out
}

// permute writes into dst the row-major tensor src of the given shape with
// its axes reordered: dst axis i is src axis axes[i].
func permute[T Float](dst, src []T, shape, axes []int) {
	r := len(shape)
	stride := make([]int, r) // src strides
	s := 1
	for i := r - 1; i >= 0; i-- {
		stride[i] = s
		s *= shape[i]
	}
	idx := make([]int, r) // position in dst's axis order
	for k := range dst {
		off := 0
		for i := range r {
			off += idx[i] * stride[axes[i]]
		}
		dst[k] = src[off]
		for i := r - 1; i >= 0; i-- {
			if idx[i]++; idx[i] < shape[axes[i]] {
				break
			}
			idx[i] = 0
		}
	}
}

func inverse(axes []int) []int {
	inv := make([]int, len(axes))
	for i, a := range axes {
		inv[a] = i
	}
	return inv
}

// peekMeta validates the file against into without modifying it and returns
// its metadata, so LoadTraining can check the model name first.
func peekMeta[T Float](path string, into []Tensor[T], skip func(string) bool) (map[string]string, error) {
	scratch := make([]Tensor[T], len(into))
	for i, t := range into {
		scratch[i] = Tensor[T]{Name: t.Name, Shape: t.Shape, Data: make([]T, len(t.Data))}
	}
	return loadCheckpoint(path, scratch, skip)
}

// FirstNonFinite returns the index of the first NaN or ±Inf in x, or -1.
func FirstNonFinite[T Float](x []T) int {
	if MaxAbs(x) <= math.MaxFloat64 {
		return -1 // the fast scan found none
	}
	for i, v := range x {
		if v-v != 0 { // NaN - NaN and Inf - Inf are NaN; any finite v - v is 0
			return i
		}
	}
	return -1
}

// MaxAbs returns the largest magnitude in x (0 for an empty x), or +Inf
// when any element is NaN or infinite: one pass that bounds the elements
// and checks them all finite. Generated models run it every training step
// over their inputs and the operands of their gradients' kernels (see
// GradBound), so its float32 scan runs on AVX2 or AVX-512 (maxAbsAsm).
func MaxAbs[T Float](x []T) float64 {
	bits, k := maxAbsAsm(x)
	if bits >= 0x7f800000 {
		return math.Inf(1)
	}
	m := T(math.Float32frombits(bits))
	for _, v := range x[k:] {
		a := v
		if a < 0 {
			a = -a
		}
		if !(a <= m) {
			if a-a != 0 {
				return math.Inf(1) // NaN or ±Inf
			}
			m = a
		}
	}
	return float64(m)
}

// BoundFinite reports whether values bounded by bound in exact arithmetic
// are finite once computed in T (generated backward passes keep such bounds
// for the kernels that write parameter gradients, from the MaxAbs of their
// operands, so that the check before the optimizer need not read them): the bound is below half the largest T
// (the rounding of the sums the bound rules allow stays within a factor
// 2; derive's maxTerms). NaN and +Inf are not.
func BoundFinite[T Float](bound float64) bool {
	var z T
	limit := math.MaxFloat64 / 2
	if unsafe.Sizeof(z) == 4 {
		limit = math.MaxFloat32 / 2
	}
	return bound < limit
}

// IO describes a generated model's buffers to a training loop
// (runtime/train): what a Go interface cannot reach of it. A generated
// model's IO method returns views of its own buffers, so writing the rows
// of Inputs and Labels fills the model.
type IO[T Float] struct {
	Model     string // the description's model name
	Batch     int    // the most rows a step takes
	Inputs    []Feed[T]
	Labels    []LabelFeed
	Params    []T // every parameter, the optimizer's slice
	Grads     []T // their gradients, in the same layout
	OutputRow int // elements of the output per row (Output(n) holds n of them)
}

// Feed is a float input: Batch rows of Row elements in Data.
type Feed[T Float] struct {
	Name string
	Data []T
	Row  int
}

// LabelFeed is an input of class labels: Batch rows of Row labels in
// [0, Classes). Tokens marks token ids the model reads (an input declared
// tokens(V), Classes its vocabulary) rather than labels its output
// predicts.
type LabelFeed struct {
	Name    string
	Data    []int32
	Row     int
	Classes int
	Tokens  bool
}
