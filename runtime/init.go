package runtime

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/backpropgen/backpropgen/runtime/spec"
)

// NewRNG returns a PCG generator seeded with (seed, seed^0x9E3779B97F4A7C15).
// PCG's output is fully specified by its seed, so a model initialized from
// the same seed gets the same weights on every run and platform. The second
// word (the golden-ratio constant) keeps seed 0 from producing the
// all-zero PCG state.
func NewRNG(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, seed^0x9E3779B97F4A7C15))
}

// Init names a weight initializer. The definitions follow Keras
// (keras.initializers), so models ported from Keras start from the same
// distributions.
type Init = spec.Init

// The initializers. The zero value is Zeros.
const (
	Zeros         = spec.Zeros         // all 0
	Ones          = spec.Ones          // all 1
	GlorotUniform = spec.GlorotUniform // U(-l, l), l = √(6/(fanIn+fanOut))
	GlorotNormal  = spec.GlorotNormal  // truncated N(0, σ²), σ = √(2/(fanIn+fanOut)) / 0.8796…
	HeUniform     = spec.HeUniform     // U(-l, l), l = √(6/fanIn)
	HeNormal      = spec.HeNormal      // truncated N(0, σ²), σ = √(2/fanIn) / 0.8796…
	LeCunUniform  = spec.LeCunUniform  // U(-l, l), l = √(3/fanIn)
	LeCunNormal   = spec.LeCunNormal   // truncated N(0, σ²), σ = √(1/fanIn) / 0.8796…
)

// InitNames returns the names ParseInit accepts, in constant order.
func InitNames() []string { return spec.InitNames() }

// ParseInit returns the initializer with the given Keras name (case and
// surrounding space are ignored). The error lists the valid names.
func ParseInit(name string) (Init, error) { return spec.ParseInit(name) }

// FanInOut returns the fans of a weight tensor with the given shape, using
// Keras' convention: [] → (1, 1); [n] → (n, n); [in, out] → (in, out); and
// for convolution kernels [k1, ..., kd, in, out] the receptive field size
// k1·…·kd multiplies both in and out.
func FanInOut(shape []int) (fanIn, fanOut int) { return spec.FanInOut(shape) }

// truncatedNormalStddevFactor is the standard deviation of a unit normal
// truncated to [-2, 2]. Keras divides the target stddev by it so that the
// truncated samples end up with the intended variance.
const truncatedNormalStddevFactor = 0.87962566103423978

// Initialize fills dst with initializer init, using Keras' variance-scaling
// definitions with the given fans (see FanInOut): uniform variants draw from
// U(-l, l) with l = √(3·scale/n), normal variants from a normal with
// σ = √(scale/n)/0.87962566103423978 truncated at ±2σ (out-of-range draws are
// resampled), where scale is 1 (Glorot, LeCun) or 2 (He) and n is fanIn, or
// (fanIn+fanOut)/2 for Glorot; n is clamped to at least 1 as in Keras. Either
// way the resulting variance is scale/n.
//
// rng is only used by the random initializers and may be nil for Zeros and
// Ones. An Init value other than the declared constants is a programming
// error (names from files go through ParseInit) and panics.
func Initialize[T Float](dst []T, init Init, fanIn, fanOut int, rng *rand.Rand) {
	switch init {
	case Zeros:
		clear(dst)
		return
	case Ones:
		for i := range dst {
			dst[i] = 1
		}
		return
	}
	var scale, n float64
	switch init {
	case GlorotUniform, GlorotNormal:
		scale, n = 1, float64(fanIn+fanOut)/2
	case HeUniform, HeNormal:
		scale, n = 2, float64(fanIn)
	case LeCunUniform, LeCunNormal:
		scale, n = 1, float64(fanIn)
	default:
		panic(fmt.Sprintf("runtime.Initialize: invalid Init(%d); use one of the Init constants or ParseInit(%s)",
			uint8(init), strings.Join(spec.InitNames(), "|")))
	}
	n = max(n, 1)
	switch init {
	case GlorotUniform, HeUniform, LeCunUniform:
		limit := math.Sqrt(3 * scale / n)
		for i := range dst {
			dst[i] = T(limit * (2*rng.Float64() - 1))
		}
	default:
		stddev := math.Sqrt(scale/n) / truncatedNormalStddevFactor
		for i := range dst {
			z := rng.NormFloat64()
			for z < -2 || z > 2 {
				z = rng.NormFloat64()
			}
			dst[i] = T(stddev * z)
		}
	}
}
