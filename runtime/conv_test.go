package runtime

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// Tests of the NHWC convolution and pooling kernels (prefixed cv). Every
// kernel is compared with a direct loop over the window written here in
// float64, which also returns, per output element, the sum of the absolute
// values of its terms: the error bound of any summation order is
// (terms+2)·eps·that sum. The output and scratch buffers are the middles
// of ktBuf guard-band buffers.

// cvMake builds the geometry of a Keras 'valid' or 'same' convolution.
func cvMake(h, w, c, kh, kw, f, sh, sw, dh, dw int, same bool) Conv2DGeom {
	g := Conv2DGeom{H: h, W: w, C: c, KH: kh, KW: kw, F: f, SH: sh, SW: sw, DH: dh, DW: dw}
	ekh, ekw := (kh-1)*dh+1, (kw-1)*dw+1
	if same {
		g.OH, g.OW = (h+sh-1)/sh, (w+sw-1)/sw
		g.PadT = max((g.OH-1)*sh+ekh-h, 0) / 2
		g.PadL = max((g.OW-1)*sw+ekw-w, 0) / 2
	} else {
		g.OH, g.OW = (h-ekh)/sh+1, (w-ekw)/sw+1
	}
	return g
}

// cvGeoms returns the convolution test geometries for c input and f output
// channels.
func cvGeoms(c, f int) []Conv2DGeom {
	gs := []Conv2DGeom{
		cvMake(7, 5, c, 3, 3, f, 1, 1, 1, 1, false), // valid, odd sizes
		cvMake(7, 5, c, 3, 3, f, 1, 1, 1, 1, true),  // same: PadT = PadL = 1
		cvMake(7, 5, c, 3, 3, f, 2, 2, 1, 1, false), // stride 2 valid
		cvMake(7, 5, c, 3, 3, f, 2, 2, 1, 1, true),  // stride 2 same, PadT = 1
		cvMake(8, 6, c, 3, 3, f, 2, 2, 1, 1, true),  // same, PadT = 0 + 1 bottom
		cvMake(7, 5, c, 2, 3, f, 1, 1, 1, 1, true),  // 2×3 same: PadT = 0 + 1 bottom, PadL = 1
		cvMake(7, 5, c, 2, 3, f, 2, 1, 1, 1, false), // 2×3, mixed strides
		cvMake(7, 5, c, 3, 3, f, 1, 1, 2, 2, false), // dilation 2 valid
		cvMake(7, 5, c, 3, 3, f, 2, 1, 2, 2, true),  // dilation 2 same
		cvMake(7, 6, c, 2, 3, f, 1, 1, 1, 2, true),  // dilation only in columns
		cvMake(7, 5, c, 5, 5, f, 1, 1, 1, 1, false), // 5×5 valid
		cvMake(7, 5, c, 5, 5, f, 1, 1, 1, 1, true),  // 5×5 same
		cvMake(7, 5, c, 7, 5, f, 1, 1, 1, 1, false), // kernel = input
		cvMake(7, 5, c, 1, 1, f, 1, 1, 1, 1, false), // 1×1: col skipped
		cvMake(7, 5, c, 1, 1, f, 2, 2, 1, 1, false), // 1×1 stride 2
		cvMake(7, 5, c, 1, 1, f, 2, 2, 1, 1, true),  // 1×1 stride 2 same
		// Windows entirely in padding (first rows, last column).
		{H: 3, W: 4, C: c, KH: 2, KW: 2, F: f, OH: 5, OW: 5, SH: 1, SW: 1, DH: 1, DW: 1, PadT: 2, PadL: 1},
	}
	return gs
}

func cvSizes(g Conv2DGeom, n int) (nx, nw, nout int) {
	return n * g.H * g.W * g.C, g.KH * g.KW * g.C * g.F, n * g.OH * g.OW * g.F
}

// cvTaps calls f for every tap of the convolution: output element o, input
// element i (flat indices, NHWC), kernel element k ((KH,KW,C,F)), with
// f < F and c < C; taps in padding are skipped.
func cvTaps(g Conv2DGeom, n int, f func(o, i, k int)) {
	for b := 0; b < n; b++ {
		for oy := 0; oy < g.OH; oy++ {
			for ox := 0; ox < g.OW; ox++ {
				for ff := 0; ff < g.F; ff++ {
					for ky := 0; ky < g.KH; ky++ {
						for kx := 0; kx < g.KW; kx++ {
							for c := 0; c < g.C; c++ {
								iy := oy*g.SH - g.PadT + ky*g.DH
								ix := ox*g.SW - g.PadL + kx*g.DW
								if iy < 0 || iy >= g.H || ix < 0 || ix >= g.W {
									continue
								}
								o := ((b*g.OH+oy)*g.OW+ox)*g.F + ff
								i := ((b*g.H+iy)*g.W+ix)*g.C + c
								k := ((ky*g.KW+kx)*g.C+c)*g.F + ff
								f(o, i, k)
							}
						}
					}
				}
			}
		}
	}
}

// cvRef accumulates a·b into want[j] and |a·b| into mag[j], with want and
// mag starting from init (acc) or 0.
type cvRef struct{ want, mag []float64 }

func newCVRef[T Float](size int, init []T) cvRef {
	r := cvRef{make([]float64, size), make([]float64, size)}
	for i := range init {
		r.want[i] = float64(init[i])
		r.mag[i] = math.Abs(float64(init[i]))
	}
	return r
}

func (r cvRef) add(j int, v float64) {
	r.want[j] += v
	r.mag[j] += math.Abs(v)
}

// cvCheck fails unless |got-want| <= (terms+2)·eps·mag element-wise.
func cvCheck[T Float](t *testing.T, name string, got []T, r cvRef, terms int) {
	t.Helper()
	eps := ktEps[T]()
	if len(got) != len(r.want) {
		t.Fatalf("%s: len %d, want %d", name, len(got), len(r.want))
	}
	for i, w := range r.want {
		g := float64(got[i])
		if !(math.Abs(g-w) <= float64(terms+2)*eps*r.mag[i]) {
			t.Fatalf("%s: [%d] = %v, want %v (tolerance %g)", name, i, g, w, float64(terms+2)*eps*r.mag[i])
		}
	}
}

func cvName(g Conv2DGeom, n int) string {
	return fmt.Sprintf("n%d_%dx%dx%d_k%dx%dx%d_o%dx%d_s%d,%d_d%d,%d_p%d,%d",
		n, g.H, g.W, g.C, g.KH, g.KW, g.F, g.OH, g.OW, g.SH, g.SW, g.DH, g.DW, g.PadT, g.PadL)
}

// cvInit returns garbage-filled (acc false) or random (acc true) output
// contents for ktBuf middle mid, copied into mid; it returns the values for
// the reference's initial state (nil when not accumulating).
func cvInit[T Float](r *rand.Rand, mid []T, acc bool) []T {
	if !acc {
		return nil
	}
	init := ktRand[T](r, len(mid), 1)
	copy(mid, init)
	return init
}

func cvTestConv[T Float](t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, c := range []int{1, 3, 11} {
		for _, f := range []int{1, 4} {
			for _, g := range cvGeoms(c, f) {
				for _, n := range []int{1, 3} {
					for _, acc := range []bool{false, true} {
						cvConvCase[T](t, r, g, n, acc)
					}
				}
			}
		}
	}
}

func cvConvCase[T Float](t *testing.T, r *rand.Rand, g Conv2DGeom, n int, acc bool) {
	t.Helper()
	name := cvName(g, n)
	nx, nw, nout := cvSizes(g, n)
	x := ktRand[T](r, nx, 1)
	w := ktRand[T](r, nw, 1)
	dy := ktRand[T](r, nout, 1)
	colFull, col := ktBuf[T](g.ColSize(n))

	if !acc { // Conv2D has no acc form
		outFull, out := ktBuf[T](nout)
		ref := newCVRef[T](nout, nil)
		cvTaps(g, n, func(o, i, k int) { ref.add(o, float64(x[i])*float64(w[k])) })
		Conv2D(out, x, w, col, n, g)
		cvCheck(t, "Conv2D "+name, out, ref, g.KH*g.KW*g.C)
		ktGuardsOK(t, "Conv2D out "+name, outFull)
		ktGuardsOK(t, "Conv2D col "+name, colFull)
	}

	dwFull, dw := ktBuf[T](nw)
	ref := newCVRef(nw, cvInit(r, dw, acc))
	cvTaps(g, n, func(o, i, k int) { ref.add(k, float64(x[i])*float64(dy[o])) })
	Conv2DGradFilter(dw, x, dy, col, n, g, acc)
	cvCheck(t, fmt.Sprintf("Conv2DGradFilter acc=%v %s", acc, name), dw, ref, n*g.OH*g.OW+1)
	ktGuardsOK(t, "Conv2DGradFilter dw "+name, dwFull)
	ktGuardsOK(t, "Conv2DGradFilter col "+name, colFull)

	dxFull, dx := ktBuf[T](nx)
	ref = newCVRef(nx, cvInit(r, dx, acc))
	cvTaps(g, n, func(o, i, k int) { ref.add(i, float64(dy[o])*float64(w[k])) })
	Conv2DGradInput(dx, dy, w, col, n, g, acc)
	cvCheck(t, fmt.Sprintf("Conv2DGradInput acc=%v %s", acc, name), dx, ref, g.OH*g.OW*g.F+1)
	ktGuardsOK(t, "Conv2DGradInput dx "+name, dxFull)
	ktGuardsOK(t, "Conv2DGradInput col "+name, colFull)
}

func TestConv2D(t *testing.T) { ktRun(t, cvTestConv[float32], cvTestConv[float64]) }

// TestConv2DPointwiseNilCol checks that the 1×1 geometry needs no col.
func TestConv2DPointwiseNilCol(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	g := cvMake(4, 3, 5, 1, 1, 2, 1, 1, 1, 1, true)
	nx, nw, nout := cvSizes(g, 2)
	x, w, dy := ktRand[float64](r, nx, 1), ktRand[float64](r, nw, 1), ktRand[float64](r, nout, 1)
	out, dw, dx := make([]float64, nout), make([]float64, nw), make([]float64, nx)
	Conv2D(out, x, w, nil, 2, g)
	Conv2DGradFilter(dw, x, dy, nil, 2, g, false)
	Conv2DGradInput(dx, dy, w, nil, 2, g, false)
	ref := newCVRef[float64](nout, nil)
	cvTaps(g, 2, func(o, i, k int) { ref.add(o, x[i]*w[k]) })
	cvCheck(t, "Conv2D", out, ref, g.C)
}

// cvPoolWindows calls f(o, i) for output element o and every in-input cell
// i of its window, in row-major window order, per channel; and empty(o)
// for an output element whose window lies entirely in padding.
func cvPoolWindows(g Conv2DGeom, n int, f func(o, i int), empty func(o int)) {
	for b := 0; b < n; b++ {
		for oy := 0; oy < g.OH; oy++ {
			for ox := 0; ox < g.OW; ox++ {
				for c := 0; c < g.C; c++ {
					o := ((b*g.OH+oy)*g.OW+ox)*g.C + c
					cnt := 0
					for ky := 0; ky < g.KH; ky++ {
						for kx := 0; kx < g.KW; kx++ {
							iy := oy*g.SH - g.PadT + ky*g.DH
							ix := ox*g.SW - g.PadL + kx*g.DW
							if iy < 0 || iy >= g.H || ix < 0 || ix >= g.W {
								continue
							}
							cnt++
							f(o, ((b*g.H+iy)*g.W+ix)*g.C+c)
						}
					}
					if cnt == 0 {
						empty(o)
					}
				}
			}
		}
	}
}

// cvPoolGeoms returns the pooling test geometries (F = C).
func cvPoolGeoms(c int) []Conv2DGeom {
	return []Conv2DGeom{
		cvMake(7, 5, c, 2, 2, c, 2, 2, 1, 1, false), // Keras MaxPooling2D default
		cvMake(7, 5, c, 2, 2, c, 2, 2, 1, 1, true),  // same: PadT = 0 + 1 bottom
		cvMake(8, 6, c, 3, 3, c, 2, 2, 1, 1, true),  // same: PadT = 0 + 1 bottom
		cvMake(7, 5, c, 3, 3, c, 2, 2, 1, 1, true),  // same: PadT = 1
		cvMake(7, 5, c, 3, 3, c, 1, 1, 1, 1, true),  // overlapping, PadT = 1
		cvMake(7, 5, c, 2, 3, c, 1, 2, 1, 1, true),  // 2×3
		cvMake(7, 5, c, 5, 5, c, 1, 1, 1, 1, false), // 5×5
		cvMake(7, 5, c, 7, 5, c, 1, 1, 1, 1, false), // window = input (global)
		cvMake(7, 5, c, 1, 1, c, 2, 2, 1, 1, false), // 1×1 stride 2
		cvMake(7, 5, c, 3, 3, c, 1, 1, 2, 2, true),  // dilation (not Keras, supported)
		{H: 3, W: 4, C: c, KH: 2, KW: 2, F: c, OH: 5, OW: 5, SH: 1, SW: 1, DH: 1, DW: 1, PadT: 2, PadL: 1},
	}
}

// cvIntBuf is ktBuf for int32: guards hold cvIntSentinel, the middle
// 12345.
const cvIntSentinel = -777777

func cvIntBuf(n int) (full, mid []int32) {
	full = make([]int32, n+2*ktGuard)
	for i := range full {
		full[i] = cvIntSentinel
	}
	mid = full[ktGuard : ktGuard+n : ktGuard+n]
	for i := range mid {
		mid[i] = 12345
	}
	return full, mid
}

func cvIntGuardsOK(t *testing.T, name string, full []int32) {
	t.Helper()
	n := len(full) - 2*ktGuard
	for i, v := range full {
		if (i < ktGuard || i >= ktGuard+n) && v != cvIntSentinel {
			t.Fatalf("%s: guard element %d overwritten with %d", name, i, v)
		}
	}
}

func cvTestPool[T Float](t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, c := range []int{1, 3, 8, 19} {
		for _, g := range cvPoolGeoms(c) {
			for _, n := range []int{1, 3} {
				for _, acc := range []bool{false, true} {
					for _, ties := range []bool{false, true} {
						cvPoolCase[T](t, r, g, n, acc, ties)
					}
				}
			}
		}
	}
}

func cvPoolCase[T Float](t *testing.T, r *rand.Rand, g Conv2DGeom, n int, acc, ties bool) {
	t.Helper()
	name := fmt.Sprintf("%s ties=%v acc=%v", cvName(g, n), ties, acc)
	nx, _, nout := cvSizes(g, n)
	x := ktRand[T](r, nx, 1)
	if ties { // few distinct values, all negative: padding must not win
		for i := range x {
			x[i] = -T(1 + r.IntN(3))
		}
	}
	dy := ktRand[T](r, nout, 1)

	// MaxPool2D: exact.
	outFull, out := ktBuf[T](nout)
	amFull, am := cvIntBuf(nout)
	wantOut := make([]float64, nout)
	wantAm := make([]int32, nout)
	for i := range wantAm {
		wantAm[i] = -1
	}
	cvPoolWindows(g, n, func(o, i int) {
		if wantAm[o] < 0 || float64(x[i]) > wantOut[o] {
			wantOut[o], wantAm[o] = float64(x[i]), int32(i)
		}
	}, func(int) {})
	MaxPool2D(out, am, x, n, g)
	for i := range wantOut {
		if float64(out[i]) != wantOut[i] || am[i] != wantAm[i] {
			t.Fatalf("MaxPool2D %s: [%d] = %v at %d, want %v at %d", name, i, out[i], am[i], wantOut[i], wantAm[i])
		}
	}
	ktGuardsOK(t, "MaxPool2D out "+name, outFull)
	cvIntGuardsOK(t, "MaxPool2D argmax "+name, amFull)

	// MaxPool2DGrad: sums of at most KH·KW terms (overlapping windows).
	dxFull, dx := ktBuf[T](nx)
	ref := newCVRef(nx, cvInit(r, dx, acc))
	for i, j := range wantAm {
		if j >= 0 {
			ref.add(int(j), float64(dy[i]))
		}
	}
	MaxPool2DGrad(dx, dy, am, n, g, acc)
	cvCheck(t, "MaxPool2DGrad "+name, dx, ref, g.KH*g.KW+1)
	ktGuardsOK(t, "MaxPool2DGrad dx "+name, dxFull)
	cvIntGuardsOK(t, "MaxPool2DGrad argmax "+name, amFull)

	// AvgPool2D.
	cnt := make([]int, nout)
	cvPoolWindows(g, n, func(o, i int) { cnt[o]++ }, func(int) {})
	ref = newCVRef[T](nout, nil)
	cvPoolWindows(g, n, func(o, i int) { ref.add(o, float64(x[i])/float64(cnt[o])) }, func(int) {})
	AvgPool2D(out, x, n, g)
	cvCheck(t, "AvgPool2D "+name, out, ref, g.KH*g.KW+1)
	ktGuardsOK(t, "AvgPool2D out "+name, outFull)

	// AvgPool2DGrad.
	ref = newCVRef(nx, cvInit(r, dx, acc))
	cvPoolWindows(g, n, func(o, i int) { ref.add(i, float64(dy[o])/float64(cnt[o])) }, func(int) {})
	AvgPool2DGrad(dx, dy, n, g, acc)
	cvCheck(t, "AvgPool2DGrad "+name, dx, ref, g.KH*g.KW+1)
	ktGuardsOK(t, "AvgPool2DGrad dx "+name, dxFull)
}

func TestPool2D(t *testing.T) { ktRun(t, cvTestPool[float32], cvTestPool[float64]) }

// TestMaxPool2DNaN checks that a NaN in a window wins, at its first
// occurrence.
func TestMaxPool2DNaN(t *testing.T) {
	g := cvMake(2, 2, 1, 2, 2, 1, 1, 1, 1, 1, false)
	x := []float32{1, float32(math.NaN()), 3, float32(math.NaN())}
	out, am := make([]float32, 1), make([]int32, 1)
	MaxPool2D(out, am, x, 1, g)
	if !math.IsNaN(float64(out[0])) || am[0] != 1 {
		t.Fatalf("got %v at %d, want NaN at 1", out[0], am[0])
	}
}

// TestMaxPool2DNaNChannels checks the NaN and tie rules on windows of
// many channels (the amd64 kernel does the vectors of 8 of them), with
// NaNs and repeated values scattered over the input.
func TestMaxPool2DNaNChannels(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, c := range []int{8, 16, 21} {
		for _, g := range cvPoolGeoms(c) {
			n := 2
			nx, _, nout := cvSizes(g, n)
			x := make([]float32, nx)
			for i := range x {
				x[i] = float32(r.IntN(3))
				if r.IntN(6) == 0 {
					x[i] = float32(math.NaN())
				}
			}
			wantOut := make([]float32, nout)
			wantAm := make([]int32, nout)
			for i := range wantAm {
				wantAm[i] = -1
			}
			cvPoolWindows(g, n, func(o, i int) {
				v, m := x[i], wantOut[o]
				if wantAm[o] < 0 || v > m || (v != v && m == m) {
					wantOut[o], wantAm[o] = v, int32(i)
				}
			}, func(int) {})
			out, am := make([]float32, nout), make([]int32, nout)
			MaxPool2D(out, am, x, n, g)
			for i := range out {
				if !ewSame(out[i], wantOut[i]) || am[i] != wantAm[i] {
					t.Fatalf("MaxPool2D %s: [%d] = %v at %d, want %v at %d", cvName(g, n), i, out[i], am[i], wantOut[i], wantAm[i])
				}
			}
		}
	}
}

func cvDot[T Float](a, b []T) float64 {
	s := 0.0
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

func cvRelClose(t *testing.T, name string, a, b, rtol float64) {
	t.Helper()
	if !(math.Abs(a-b) <= rtol*math.Abs(a)) {
		t.Errorf("%s: %v vs %v (relative %.3g)", name, a, b, math.Abs(a-b)/math.Abs(a))
	}
}

// TestConv2DAdjoint is the dot-product test:
// ⟨Conv2D(x,w), dy⟩ = ⟨x, Conv2DGradInput(dy,w)⟩ = ⟨w, Conv2DGradFilter(x,dy)⟩.
func TestConv2DAdjoint(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, cf := range [][2]int{{1, 1}, {3, 4}} {
		for _, g := range cvGeoms(cf[0], cf[1]) {
			for _, n := range []int{1, 3} {
				name := cvName(g, n)
				nx, nw, nout := cvSizes(g, n)
				x, w, dy := ktRand[float64](r, nx, 1), ktRand[float64](r, nw, 1), ktRand[float64](r, nout, 1)
				col := make([]float64, g.ColSize(n))
				y, dx, dw := make([]float64, nout), make([]float64, nx), make([]float64, nw)
				Conv2D(y, x, w, col, n, g)
				Conv2DGradInput(dx, dy, w, col, n, g, false)
				Conv2DGradFilter(dw, x, dy, col, n, g, false)
				a := cvDot(y, dy)
				cvRelClose(t, "⟨x,dx⟩ "+name, a, cvDot(x, dx), 1e-10)
				cvRelClose(t, "⟨w,dw⟩ "+name, a, cvDot(w, dw), 1e-10)
			}
		}
	}
}

// TestAvgPool2DAdjoint: ⟨AvgPool2D(x), dy⟩ = ⟨x, AvgPool2DGrad(dy)⟩.
func TestAvgPool2DAdjoint(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, g := range cvPoolGeoms(3) {
		for _, n := range []int{1, 3} {
			nx, _, nout := cvSizes(g, n)
			x, dy := ktRand[float64](r, nx, 1), ktRand[float64](r, nout, 1)
			y, dx := make([]float64, nout), make([]float64, nx)
			AvgPool2D(y, x, n, g)
			AvgPool2DGrad(dx, dy, n, g, false)
			cvRelClose(t, cvName(g, n), cvDot(y, dy), cvDot(x, dx), 1e-10)
		}
	}
}

// TestMaxPool2DGradFiniteDiff compares MaxPool2DGrad with central
// differences of ⟨MaxPool2D(x), dy⟩, for x with distinct values spaced
// far more than the step apart, so no step changes a winner.
func TestMaxPool2DGradFiniteDiff(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	const h = 1e-4
	for _, g := range cvPoolGeoms(3) {
		for _, n := range []int{1, 3} {
			name := cvName(g, n)
			nx, _, nout := cvSizes(g, n)
			x := make([]float64, nx)
			for i, p := range r.Perm(nx) {
				x[i] = float64(p-nx/2) * 0.01
			}
			dy := ktRand[float64](r, nout, 1)
			y, am, dx := make([]float64, nout), make([]int32, nout), make([]float64, nx)
			f := func() float64 { MaxPool2D(y, am, x, n, g); return cvDot(y, dy) }
			MaxPool2D(y, am, x, n, g)
			MaxPool2DGrad(dx, dy, am, n, g, false)
			for i := range x {
				x0 := x[i]
				x[i] = x0 + h
				fp := f()
				x[i] = x0 - h
				fm := f()
				x[i] = x0
				fd := (fp - fm) / (2 * h)
				if math.Abs(fd-dx[i]) > 1e-6*max(1, math.Abs(fd)) {
					t.Fatalf("%s: dx[%d] = %v, finite difference %v", name, i, dx[i], fd)
				}
			}
		}
	}
}

func TestConvPoolZeroAllocs(t *testing.T) {
	for _, g := range []Conv2DGeom{
		cvMake(9, 7, 3, 3, 3, 4, 2, 1, 1, 2, true),
		cvMake(9, 7, 3, 1, 1, 4, 1, 1, 1, 1, false), // pointwise
	} {
		const n = 2
		nx, nw, nout := cvSizes(g, n)
		x, w, out := make([]float32, nx), make([]float32, nw), make([]float32, nout)
		col := make([]float32, g.ColSize(n))
		pg := g
		pg.F = pg.C
		_, _, npool := cvSizes(pg, n)
		pout, am := make([]float32, npool), make([]int32, npool)
		kernels := map[string]func(){
			"Conv2D":           func() { Conv2D(out, x, w, col, n, g) },
			"Conv2DGradFilter": func() { Conv2DGradFilter(w, x, out, col, n, g, true) },
			"Conv2DGradInput":  func() { Conv2DGradInput(x, out, w, col, n, g, false) },
			"MaxPool2D":        func() { MaxPool2D(pout, am, x, n, pg) },
			"MaxPool2DGrad":    func() { MaxPool2DGrad(x, pout, am, n, pg, false) },
			"AvgPool2D":        func() { AvgPool2D(pout, x, n, pg) },
			"AvgPool2DGrad":    func() { AvgPool2DGrad(x, pout, n, pg, true) },
		}
		for name, f := range kernels {
			if a := testing.AllocsPerRun(10, f); a != 0 {
				t.Errorf("%s %s allocates %v times per call", name, cvName(g, n), a)
			}
		}
	}
}

// TestConvPoolPanics passes operands one element short (with spare
// capacity) and invalid geometries: every case must panic with a message
// naming the kernel.
func TestConvPoolPanics(t *testing.T) {
	g := cvMake(5, 4, 2, 3, 3, 3, 1, 1, 1, 1, true)
	pg := cvMake(5, 4, 2, 2, 2, 2, 2, 2, 1, 1, true)
	const n = 2
	nx, nw, nout := cvSizes(g, n)
	_, _, np := cvSizes(pg, n)
	short := func(k int) []float32 { return make([]float32, k+8)[:k-1] }
	ok := func(k int) []float32 { return make([]float32, k) }
	am := func(k int) []int32 { return make([]int32, k) }
	cs := g.ColSize(n)
	bad := g
	bad.DH = 0
	badPool := pg
	badPool.F = 3
	cases := map[string]func(){
		"Conv2D out":              func() { Conv2D(short(nout), ok(nx), ok(nw), ok(cs), n, g) },
		"Conv2D x":                func() { Conv2D(ok(nout), short(nx), ok(nw), ok(cs), n, g) },
		"Conv2D w":                func() { Conv2D(ok(nout), ok(nx), short(nw), ok(cs), n, g) },
		"Conv2D col":              func() { Conv2D(ok(nout), ok(nx), ok(nw), short(cs), n, g) },
		"Conv2D invalid geometry": func() { Conv2D(ok(nout), ok(nx), ok(nw), ok(cs), n, bad) },
		"Conv2D n":                func() { Conv2D(ok(nout), ok(nx), ok(nw), ok(cs), -1, g) },
		"Conv2DGradFilter dw":     func() { Conv2DGradFilter(short(nw), ok(nx), ok(nout), ok(cs), n, g, false) },
		"Conv2DGradFilter x":      func() { Conv2DGradFilter(ok(nw), short(nx), ok(nout), ok(cs), n, g, false) },
		"Conv2DGradFilter dy":     func() { Conv2DGradFilter(ok(nw), ok(nx), short(nout), ok(cs), n, g, false) },
		"Conv2DGradFilter col":    func() { Conv2DGradFilter(ok(nw), ok(nx), ok(nout), short(cs), n, g, false) },
		"Conv2DGradInput dx":      func() { Conv2DGradInput(short(nx), ok(nout), ok(nw), ok(cs), n, g, false) },
		"Conv2DGradInput dy":      func() { Conv2DGradInput(ok(nx), short(nout), ok(nw), ok(cs), n, g, false) },
		"Conv2DGradInput w":       func() { Conv2DGradInput(ok(nx), ok(nout), short(nw), ok(cs), n, g, false) },
		"Conv2DGradInput col":     func() { Conv2DGradInput(ok(nx), ok(nout), ok(nw), short(cs), n, g, false) },
		"MaxPool2D out":           func() { MaxPool2D(short(np), am(np), ok(nx), n, pg) },
		"MaxPool2D argmax":        func() { MaxPool2D(ok(np), am(np + 8)[:np-1], ok(nx), n, pg) },
		"MaxPool2D x":             func() { MaxPool2D(ok(np), am(np), short(nx), n, pg) },
		"MaxPool2D F != C":        func() { MaxPool2D(ok(np), am(np), ok(nx), n, badPool) },
		"MaxPool2DGrad dx":        func() { MaxPool2DGrad(short(nx), ok(np), am(np), n, pg, false) },
		"MaxPool2DGrad dy":        func() { MaxPool2DGrad(ok(nx), short(np), am(np), n, pg, false) },
		"MaxPool2DGrad argmax":    func() { MaxPool2DGrad(ok(nx), ok(np), am(np + 8)[:np-1], n, pg, false) },
		"MaxPool2DGrad bad index": func() { a := am(np); a[3] = int32(nx); MaxPool2DGrad(ok(nx), ok(np), a, n, pg, false) },
		"AvgPool2D out":           func() { AvgPool2D(short(np), ok(nx), n, pg) },
		"AvgPool2D x":             func() { AvgPool2D(ok(np), short(nx), n, pg) },
		"AvgPool2DGrad dx":        func() { AvgPool2DGrad(short(nx), ok(np), n, pg, false) },
		"AvgPool2DGrad dy":        func() { AvgPool2DGrad(ok(nx), short(np), n, pg, false) },
		"AvgPool2D F != C":        func() { AvgPool2D(ok(np), ok(nx), n, badPool) },
	}
	for name, f := range cases {
		func() {
			defer func() {
				v := recover()
				if v == nil {
					t.Errorf("%s: no panic", name)
					return
				}
				kernel := strings.Fields(name)[0]
				if msg := fmt.Sprint(v); !strings.Contains(msg, "runtime."+kernel) {
					t.Errorf("%s: panic message %q does not name runtime.%s", name, msg, kernel)
				}
			}()
			f()
		}()
	}
}

// BenchmarkConv2D runs the seed CNN's two convolutions at batch 32
// (float32): conv1 32×32×3 → 3×3×32 valid, conv2 15×15×32 → 3×3×64 valid,
// forward and both gradients. Every case does 2·n·OH·OW·KH·KW·C·F flops.
func BenchmarkConv2D(b *testing.B) {
	const n = 32
	layers := []struct {
		name string
		g    Conv2DGeom
	}{
		{"conv1", cvMake(32, 32, 3, 3, 3, 32, 1, 1, 1, 1, false)},
		{"conv2", cvMake(15, 15, 32, 3, 3, 64, 1, 1, 1, 1, false)},
	}
	for _, l := range layers {
		g := l.g
		nx, nw, nout := cvSizes(g, n)
		r := rand.New(rand.NewPCG(13, 14))
		x, w, y := ktRand[float32](r, nx, 1), ktRand[float32](r, nw, 1), ktRand[float32](r, nout, 1)
		dx, dw, dy := make([]float32, nx), make([]float32, nw), ktRand[float32](r, nout, 1)
		col := make([]float32, g.ColSize(n))
		flops := 2 * float64(n*g.OH*g.OW) * float64(g.KH*g.KW*g.C*g.F)
		for _, k := range []struct {
			name string
			f    func()
		}{
			{"fwd", func() { Conv2D(y, x, w, col, n, g) }},
			{"gradFilter", func() { Conv2DGradFilter(dw, x, dy, col, n, g, false) }},
			{"gradInput", func() { Conv2DGradInput(dx, dy, w, col, n, g, false) }},
		} {
			b.Run(l.name+"/"+k.name, func(b *testing.B) {
				for b.Loop() {
					k.f()
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// TestMaxPoolCommutesWithBiasRelu holds the identity derive's commutePools
// relies on, for every unpadded pooling geometry: maxpool(relu(x + b)) is
// relu(maxpool(x) + b) bit for bit, and routing dy ⊙ [p > 0] to the
// argmax of x gives the gradient of the original order. The data are
// multiples of 1/4 with many equal values and negatives (so windows hold
// ties and all-zero relus); b's are too, so x + b is exact and ties stay
// ties in both orders.
func TestMaxPoolCommutesWithBiasRelu(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	const c = 3
	for _, g := range cvPoolGeoms(c) {
		if g.PadT != 0 || g.PadL != 0 || (g.OH-1)*g.SH+g.KH > g.H || (g.OW-1)*g.SW+g.KW > g.W {
			continue // padded: derive leaves these in order
		}
		const n = 2
		name := cvName(g, n)
		nx, _, nout := cvSizes(g, n)
		q := func(k int) float32 { return float32(r.IntN(k)-k/2) / 4 }
		x, b, dy := make([]float32, nx), make([]float32, c), make([]float32, nout)
		for i := range x {
			x[i] = q(9)
		}
		for i := range b {
			b[i] = q(5)
		}
		for i := range dy {
			dy[i] = q(17)
		}
		// Original order: relu(x + b), then the pool; the gradient
		// routed back, then through the relu.
		a := make([]float32, nx)
		BiasAct(Relu, a, x, b, nx/c, c)
		p1, am1 := make([]float32, nout), make([]int32, nout)
		MaxPool2D(p1, am1, a, n, g)
		da, dx1 := make([]float32, nx), make([]float32, nx)
		MaxPool2DGrad(da, dy, am1, n, g, false)
		UnaryGrad(Relu, dx1, a, da)
		// Commuted: the pool of x, then bias and relu on the pooled
		// tensor; the relu's gradient there, then routed back.
		m, am2 := make([]float32, nout), make([]int32, nout)
		MaxPool2D(m, am2, x, n, g)
		p2 := make([]float32, nout)
		BiasAct(Relu, p2, m, b, nout/c, c)
		dz, dx2 := make([]float32, nout), make([]float32, nx)
		UnaryGrad(Relu, dz, p2, dy)
		MaxPool2DGrad(dx2, dz, am2, n, g, false)
		for i := range p1 {
			if math.Float32bits(p1[i]) != math.Float32bits(p2[i]) {
				t.Fatalf("%s: pooled[%d] = %v in the original order, %v commuted", name, i, p1[i], p2[i])
			}
		}
		for i := range dx1 {
			if dx1[i] != dx2[i] {
				t.Fatalf("%s: dx[%d] = %v in the original order, %v commuted", name, i, dx1[i], dx2[i])
			}
		}
	}
}
