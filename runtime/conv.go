package runtime

import (
	"fmt"
	"math"

	"github.com/backpropgen/backpropgen/runtime/spec"
)

// Convolution and pooling kernels in the Keras layout: activations are
// NHWC (n, H, W, C) and convolution kernels are (KH, KW, C, F), so a kernel
// reshaped to (KH·KW·C, F) is directly a GEMM operand. A convolution is an
// im2col copy followed by a single Gemm over all n images; its gradients
// are the two other Gemm products plus, for the input gradient, the col2im
// scatter-add. The copies move whole runs of C (or KW·C, without
// dilation) contiguous elements with copy/clear, and every per-element
// loop runs over slices resliced to a common length, so no inner loop
// carries a bounds check.
//
// Like every kernel of this package they never allocate and never grow a
// slice: the caller passes the scratch buffer col, sized by ColSize. An
// operand shorter than its geometry requires, or an invalid geometry, is a
// programming error and panics with the kernel's name in the message.

// Conv2DGeom describes one NHWC convolution or pooling window (see
// spec.Conv2DGeom for the fields).
type Conv2DGeom = spec.Conv2DGeom

// pointwise reports whether the im2col matrix of x is x itself (a 1×1
// kernel, stride 1, no padding, output the size of the input), so the
// kernels skip col.
func convPointwise(g Conv2DGeom) bool {
	return g.KH == 1 && g.KW == 1 && g.SH == 1 && g.SW == 1 &&
		g.PadT == 0 && g.PadL == 0 && g.OH == g.H && g.OW == g.W
}

// check panics unless g (and n) describe a valid geometry; pool also
// requires F == C.
func convCheck(g Conv2DGeom, fn string, n int, pool bool) {
	switch {
	case n < 0:
		convPanic(fn, g, n, "n must be ≥ 0")
	case g.H < 1 || g.W < 1 || g.C < 1:
		convPanic(fn, g, n, "H, W and C must be ≥ 1")
	case g.KH < 1 || g.KW < 1:
		convPanic(fn, g, n, "KH and KW must be ≥ 1")
	case g.F < 1:
		convPanic(fn, g, n, "F must be ≥ 1")
	case g.OH < 1 || g.OW < 1:
		convPanic(fn, g, n, "OH and OW must be ≥ 1")
	case g.SH < 1 || g.SW < 1:
		convPanic(fn, g, n, "strides SH and SW must be ≥ 1")
	case g.DH < 1 || g.DW < 1:
		convPanic(fn, g, n, "dilations DH and DW must be ≥ 1")
	case g.PadT < 0 || g.PadL < 0:
		convPanic(fn, g, n, "PadT and PadL must be ≥ 0")
	case pool && g.F != g.C:
		convPanic(fn, g, n, "pooling needs F == C")
	}
}

// convPanic is kept out of line so that formatting g (which converts it
// to an interface) cannot make the kernels' arguments escape.
//
//go:noinline
func convPanic(fn string, g Conv2DGeom, n int, why string) {
	panic(fmt.Sprintf("runtime.%s: invalid geometry %+v, n = %d: %s", fn, g, n, why))
}

// convRange returns the taps [lo, hi) of a window starting at input
// coordinate start (possibly negative) with dilation d and k taps that fall
// inside [0, size): start+t*d is in range exactly for lo <= t < hi. The
// range is empty (lo == hi) when the window lies entirely in padding.
func convRange(start, d, k, size int) (lo, hi int) {
	if start < 0 {
		lo = (-start + d - 1) / d
	}
	if start <= size-1 {
		hi = (size-1-start)/d + 1
	}
	lo = min(lo, k)
	hi = max(min(hi, k), lo)
	return lo, hi
}

// convCopy is copy(dst, src) for len(src) >= len(dst), with short runs
// copied by a loop: calling memmove costs more than copying a few
// channels.
func convCopy[T Float](dst, src []T) {
	if len(dst) > 32 {
		copy(dst, src)
		return
	}
	src = src[:len(dst)]
	for i := range dst {
		dst[i] = src[i]
	}
}

// convAdd computes dst[i] += src[i] for i < len(dst), the whole vectors
// of 8 on Binary's kernel (bit-identical).
func convAdd[T Float](dst, src []T) {
	src = src[:len(dst)]
	k := binaryAsm(Add, dst, dst, src)
	dst = dst[k:]
	src = src[k:][:len(dst)]
	for i := range dst {
		dst[i] += src[i]
	}
}

// convInterior returns the output columns [lo, hi) whose windows lie
// entirely inside the input's columns (no padding tap).
func convInterior(g Conv2DGeom) (lo, hi int) {
	lo = min((g.PadL+g.SW-1)/g.SW, g.OW)
	// ox*SW - PadL + (KW-1)*DW ≤ W-1
	if last := g.W - 1 - (g.KW-1)*g.DW + g.PadL; last >= 0 {
		hi = min(last/g.SW+1, g.OW)
	}
	return lo, max(hi, lo)
}

// convCopyRuns copies runs rows of n elements, row r from src[r*ss:] to
// dst[r*ds:] (the rows must not overlap): on amd64 in one assembly call,
// which saves a call and a loop set-up per row for short rows.
func convCopyRuns[T Float](dst []T, ds int, src []T, ss int, runs, n int) {
	if runs <= 0 || n <= 0 {
		return
	}
	// Bounds-check the last row here: the kernel does not.
	_ = dst[(runs-1)*ds+n-1]
	_ = src[(runs-1)*ss+n-1]
	if copyRunsAsm(runs, n, dst, ds, src, ss) {
		return
	}
	for r := 0; r < runs; r++ {
		convCopy(dst[r*ds:r*ds+n], src[r*ss:r*ss+n])
	}
}

// im2col writes row r = (b*OH+oy)*OW+ox of col (n*OH*OW rows of
// KH*KW*C) as col[r, (ky*KW+kx)*C+c] = x[b, iy, ix, c], or 0 when (iy, ix)
// is outside the input. The output columns whose windows need no column
// padding (all of them for 'valid') are done together, one strided copy
// per kernel row ky (per tap with dilation); the others one by one.
func im2col[T Float](col, x []T, n int, g Conv2DGeom) {
	C, KH, KW := g.C, g.KH, g.KW
	rowLen := KW * C     // one ky of a col row
	patch := KH * rowLen // one col row
	xRow := g.W * C      // one input row
	plane := g.H * xRow  // one image
	col = col[:n*g.OH*g.OW*patch]
	oxLo, oxHi := convInterior(g)
	nin := oxHi - oxLo
	r := 0
	for b := 0; b < n; b++ {
		xb := x[b*plane : (b+1)*plane]
		for oy := 0; oy < g.OH; oy++ {
			y0 := oy*g.SH - g.PadT
			ky0, ky1 := convRange(y0, g.DH, KH, g.H)
			for ox := 0; ox < oxLo; ox++ {
				im2colPixel(col[r+ox*patch:r+(ox+1)*patch], xb, ox, y0, ky0, ky1, g)
			}
			if nin > 0 {
				dst := col[r+oxLo*patch : r+oxHi*patch]
				x0 := oxLo*g.SW - g.PadL
				for ky := 0; ky < KH; ky++ {
					if ky < ky0 || ky >= ky1 {
						for p := 0; p < nin; p++ {
							clear(dst[p*patch+ky*rowLen : p*patch+(ky+1)*rowLen])
						}
						continue
					}
					src := xb[(y0+ky*g.DH)*xRow : (y0+ky*g.DH+1)*xRow]
					if g.DW == 1 {
						convCopyRuns(dst[ky*rowLen:], patch, src[x0*C:], g.SW*C, nin, rowLen)
						continue
					}
					for kx := 0; kx < KW; kx++ {
						convCopyRuns(dst[ky*rowLen+kx*C:], patch, src[(x0+kx*g.DW)*C:], g.SW*C, nin, C)
					}
				}
			}
			for ox := oxHi; ox < g.OW; ox++ {
				im2colPixel(col[r+ox*patch:r+(ox+1)*patch], xb, ox, y0, ky0, ky1, g)
			}
			r += g.OW * patch
		}
	}
}

// im2colPixel writes the col row dst of output column ox of the output
// row whose window starts at input row y0 and has the taps [ky0, ky1)
// inside the input; xb is the image.
func im2colPixel[T Float](dst, xb []T, ox, y0, ky0, ky1 int, g Conv2DGeom) {
	C, KH, KW := g.C, g.KH, g.KW
	rowLen := KW * C
	xRow := g.W * C
	x0 := ox*g.SW - g.PadL
	kx0, kx1 := convRange(x0, g.DW, KW, g.W)
	if ky0 == ky1 || kx0 == kx1 {
		clear(dst)
		return
	}
	if ky0 > 0 {
		clear(dst[:ky0*rowLen])
	}
	if ky1 < KH {
		clear(dst[ky1*rowLen:])
	}
	for ky := ky0; ky < ky1; ky++ {
		d := dst[ky*rowLen : (ky+1)*rowLen]
		src := xb[(y0+ky*g.DH)*xRow : (y0+ky*g.DH+1)*xRow]
		if kx0 > 0 {
			clear(d[:kx0*C])
		}
		if kx1 < KW {
			clear(d[kx1*C:])
		}
		if g.DW == 1 {
			convCopy(d[kx0*C:kx1*C], src[(x0+kx0)*C:(x0+kx1)*C])
			continue
		}
		for kx := kx0; kx < kx1; kx++ {
			ix := x0 + kx*g.DW
			convCopy(d[kx*C:(kx+1)*C], src[ix*C:(ix+1)*C])
		}
	}
}

// col2im is the adjoint of im2col: dx[b, iy, ix, c] += col[r, (ky*KW+kx)*C+c]
// for every in-range tap; padding taps are dropped.
func col2im[T Float](dx, col []T, n int, g Conv2DGeom) {
	C, KH, KW := g.C, g.KH, g.KW
	rowLen := KW * C
	patch := KH * rowLen
	xRow := g.W * C
	plane := g.H * xRow
	col = col[:n*g.OH*g.OW*patch]
	r := 0
	for b := 0; b < n; b++ {
		db := dx[b*plane : (b+1)*plane]
		for oy := 0; oy < g.OH; oy++ {
			y0 := oy*g.SH - g.PadT
			ky0, ky1 := convRange(y0, g.DH, KH, g.H)
			for ox := 0; ox < g.OW; ox++ {
				x0 := ox*g.SW - g.PadL
				kx0, kx1 := convRange(x0, g.DW, KW, g.W)
				src := col[r : r+patch]
				r += patch
				for ky := ky0; ky < ky1; ky++ {
					s := src[ky*rowLen : (ky+1)*rowLen]
					drow := db[(y0+ky*g.DH)*xRow : (y0+ky*g.DH+1)*xRow]
					if g.DW == 1 {
						convAdd(drow[(x0+kx0)*C:(x0+kx1)*C], s[kx0*C:kx1*C])
						continue
					}
					for kx := kx0; kx < kx1; kx++ {
						ix := x0 + kx*g.DW
						convAdd(drow[ix*C:(ix+1)*C], s[kx*C:(kx+1)*C])
					}
				}
			}
		}
	}
}

// Conv2D computes the NHWC convolution (Keras Conv2D, cross-correlation)
// of x (n,H,W,C) with w (KH,KW,C,F) into out (n,OH,OW,F):
//
//	for b < n, oy < OH, ox < OW, f < F:
//		s := 0
//		for ky < KH, kx < KW, c < C:
//			iy, ix := oy*SH-PadT+ky*DH, ox*SW-PadL+kx*DW
//			if 0 <= iy < H && 0 <= ix < W:
//				s += x[b,iy,ix,c] * w[ky,kx,c,f]
//		out[b,oy,ox,f] = s
//
// It copies the patches of x into col (n*OH*OW rows × KH*KW*C columns,
// len ≥ g.ColSize(n)) and computes out = col·w with one Gemm. For a 1×1
// kernel with stride 1, no padding and OH, OW = H, W, x already is that
// matrix: col is not used and may be nil. Summation order differs from the
// reference loop, so results agree to rounding only.
func Conv2D[T Float](out, x, w, col []T, n int, g Conv2DGeom) {
	conv2DForward("Conv2D", false, Relu, out, x, w, nil, col, n, g)
}

// Conv2DBiasAct computes out = act(conv2d(x, w) + b), b (F) added to every
// output pixel: Conv2D with the bias and activation as the epilogue of its
// product (GemmBiasAct), bit-identical to Conv2D followed by BiasAct.
func Conv2DBiasAct[T Float](act UnaryOp, out, x, w, b, col []T, n int, g Conv2DGeom) {
	conv2DForward("Conv2DBiasAct", true, act, out, x, w, b, col, n, g)
}

// conv2DForward is Conv2D, with act(· + b) as the epilogue of its product
// when bias is set.
func conv2DForward[T Float](fn string, bias bool, act UnaryOp, out, x, w, b, col []T, n int, g Conv2DGeom) {
	convCheck(g, fn, n, false)
	rows, K := n*g.OH*g.OW, g.KH*g.KW*g.C
	out = fit(out, rows*g.F, fn, "out")
	x = fit(x, n*g.H*g.W*g.C, fn, "x")
	w = fit(w, K*g.F, fn, "w")
	if bias {
		b = fit(b, g.F, fn, "b")
	}
	a := x // the im2col matrix: x itself for the 1×1 geometry
	if !convPointwise(g) {
		a = fit(col, rows*K, fn, "col")
		im2col(a, x, n, g)
	}
	if !bias {
		Gemm(false, false, rows, g.F, K, a, w, out, false)
		return
	}
	GemmBiasAct(act, out, a, w, b, rows, g.F, K)
}

// Conv2DGradFilter computes the gradient of Conv2D with respect to its
// kernel, dw (KH,KW,C,F), from x (n,H,W,C) and the output gradient dy
// (n,OH,OW,F):
//
//	for ky < KH, kx < KW, c < C, f < F:
//		s := 0
//		for b < n, oy < OH, ox < OW:
//			iy, ix := oy*SH-PadT+ky*DH, ox*SW-PadL+kx*DW
//			if 0 <= iy < H && 0 <= ix < W:
//				s += x[b,iy,ix,c] * dy[b,oy,ox,f]
//		dw[ky,kx,c,f] = s  // or += s when acc
//
// It fills col (len ≥ g.ColSize(n)) with the patches of x, as Conv2D does,
// and computes dw (+)= colᵀ·dy with one Gemm; col is not used, and may be
// nil, for the 1×1 geometry Conv2D documents.
func Conv2DGradFilter[T Float](dw, x, dy, col []T, n int, g Conv2DGeom, acc bool) {
	convCheck(g, "Conv2DGradFilter", n, false)
	rows, K := n*g.OH*g.OW, g.KH*g.KW*g.C
	dw = fit(dw, K*g.F, "Conv2DGradFilter", "dw")
	x = fit(x, n*g.H*g.W*g.C, "Conv2DGradFilter", "x")
	dy = fit(dy, rows*g.F, "Conv2DGradFilter", "dy")
	if convPointwise(g) {
		Gemm(true, false, K, g.F, rows, x, dy, dw, acc)
		return
	}
	col = fit(col, rows*K, "Conv2DGradFilter", "col")
	im2col(col, x, n, g)
	Gemm(true, false, K, g.F, rows, col, dy, dw, acc)
}

// Conv2DGradInput computes the gradient of Conv2D with respect to its
// input, dx (n,H,W,C), from the output gradient dy (n,OH,OW,F) and the
// kernel w (KH,KW,C,F) — the adjoint of Conv2D in x:
//
//	if !acc: dx[...] = 0
//	for b < n, oy < OH, ox < OW, ky < KH, kx < KW, c < C:
//		iy, ix := oy*SH-PadT+ky*DH, ox*SW-PadL+kx*DW
//		if 0 <= iy < H && 0 <= ix < W:
//			for f < F: dx[b,iy,ix,c] += dy[b,oy,ox,f] * w[ky,kx,c,f]
//
// It computes col = dy·wᵀ with one Gemm into the scratch col (len ≥
// g.ColSize(n)), then scatter-adds col into dx (col2im), dropping the taps
// that fall in padding. For the 1×1 geometry Conv2D documents, dx (+)=
// dy·wᵀ directly and col is not used (may be nil).
func Conv2DGradInput[T Float](dx, dy, w, col []T, n int, g Conv2DGeom, acc bool) {
	convCheck(g, "Conv2DGradInput", n, false)
	rows, K := n*g.OH*g.OW, g.KH*g.KW*g.C
	dx = fit(dx, n*g.H*g.W*g.C, "Conv2DGradInput", "dx")
	dy = fit(dy, rows*g.F, "Conv2DGradInput", "dy")
	w = fit(w, K*g.F, "Conv2DGradInput", "w")
	if convPointwise(g) {
		Gemm(false, true, rows, K, g.F, dy, w, dx, acc)
		return
	}
	col = fit(col, rows*K, "Conv2DGradInput", "col")
	Gemm(false, true, rows, K, g.F, dy, w, col, false)
	if !acc {
		clear(dx)
	}
	col2im(dx, col, n, g)
}

// maxInto folds one window cell src (C channels starting at flat index
// base of x) into the running maxima o and their indices am. A NaN wins
// over any number and the first NaN stays; otherwise only a strictly
// larger value wins, so ties keep the earlier cell.
func maxInto[T Float](o []T, am []int32, src []T, base int) {
	src = src[:len(o)]
	am = am[:len(o)]
	for c := range o {
		v, m := src[c], o[c]
		if v > m || (v != v && m == m) {
			o[c] = v
			am[c] = int32(base + c)
		}
	}
}

// MaxPool2D computes max pooling of x (n,H,W,C) into out (n,OH,OW,C) (F
// must equal C) and records the winners in argmax (len ≥ len of out):
//
//	for b < n, oy < OH, ox < OW, c < C:
//		i := ((b*OH+oy)*OW+ox)*C + c
//		m, am := -Inf, -1
//		for ky < KH, kx < KW:  // row-major window order
//			iy, ix := oy*SH-PadT+ky*DH, ox*SW-PadL+kx*DW
//			if 0 <= iy < H && 0 <= ix < W:  // padding never wins
//				j := ((b*H+iy)*W+ix)*C + c
//				if am < 0 || x[j] > m: m, am = x[j], j
//		out[i], argmax[i] = m, am
//
// so padding is excluded, as in Keras/TF 'same' max pooling, and on ties
// the first cell in row-major window order wins. A window lying entirely
// in padding (impossible for Keras geometries) gives out 0 and argmax -1.
// NaN propagates: a NaN in the window is the result, and argmax points at
// the first one. n*H*W*C must fit in an int32.
func MaxPool2D[T Float](out []T, argmax []int32, x []T, n int, g Conv2DGeom) {
	convCheck(g, "MaxPool2D", n, true)
	C := g.C
	nx, nout := n*g.H*g.W*C, n*g.OH*g.OW*C
	if nx > math.MaxInt32 {
		convPanic("MaxPool2D", g, n, "n*H*W*C does not fit the int32 argmax")
	}
	out = fit(out, nout, "MaxPool2D", "out")
	argmax = fit(argmax, nout, "MaxPool2D", "argmax")
	x = fit(x, nx, "MaxPool2D", "x")
	xRow, plane := g.W*C, g.H*g.W*C
	i := 0
	for b := 0; b < n; b++ {
		for oy := 0; oy < g.OH; oy++ {
			y0 := oy*g.SH - g.PadT
			ky0, ky1 := convRange(y0, g.DH, g.KH, g.H)
			for ox := 0; ox < g.OW; ox++ {
				x0 := ox*g.SW - g.PadL
				kx0, kx1 := convRange(x0, g.DW, g.KW, g.W)
				o := out[i : i+C]
				am := argmax[i : i+C]
				i += C
				if ky0 == ky1 || kx0 == kx1 {
					clear(o)
					for c := range am {
						am[c] = -1
					}
					continue
				}
				// The whole vectors of 8 channels in one assembly call
				// for the window (amd64), the rest cell by cell.
				k := maxPoolAsm(o, am, x, b*plane+(y0+ky0*g.DH)*xRow+(x0+kx0*g.DW)*C,
					ky1-ky0, kx1-kx0, g.DH*xRow, g.DW*C)
				if k == C {
					continue
				}
				o, am = o[k:], am[k:]
				first := true
				for ky := ky0; ky < ky1; ky++ {
					rowBase := b*plane + (y0+ky*g.DH)*xRow
					for kx := kx0; kx < kx1; kx++ {
						base := rowBase + (x0+kx*g.DW)*C + k
						src := x[base : base+len(o)]
						if first {
							first = false
							copy(o, src)
							for c := range am {
								am[c] = int32(base + c)
							}
							continue
						}
						maxInto(o, am, src, base)
					}
				}
			}
		}
	}
}

// MaxPool2DGrad computes the gradient of MaxPool2D with respect to x,
// dx (n,H,W,C), from the output gradient dy (n,OH,OW,C) and the argmax
// that MaxPool2D recorded:
//
//	if !acc: dx[...] = 0
//	for i < n*OH*OW*C:
//		if argmax[i] >= 0: dx[argmax[i]] += dy[i]
//
// so each gradient goes to the element that won in the forward pass (on
// ties the first in row-major window order, as recorded), and windows
// lying entirely in padding (argmax -1) contribute nothing. It panics if
// an argmax entry is ≥ n*H*W*C.
func MaxPool2DGrad[T Float](dx, dy []T, argmax []int32, n int, g Conv2DGeom, acc bool) {
	convCheck(g, "MaxPool2DGrad", n, true)
	nout := n * g.OH * g.OW * g.C
	dx = fit(dx, n*g.H*g.W*g.C, "MaxPool2DGrad", "dx")
	argmax = fit(argmax, nout, "MaxPool2DGrad", "argmax")
	dy = fit(dy, nout, "MaxPool2DGrad", "dy")
	if !acc {
		clear(dx)
	}
	for i, j := range argmax {
		k := int(j)
		if k < 0 {
			continue
		}
		if k >= len(dx) {
			convPanic("MaxPool2DGrad", g, n, "argmax entry beyond n*H*W*C")
			return // not reached; lets the compiler drop dx's bounds check
		}
		dx[k] += dy[i]
	}
}

// AvgPool2D computes average pooling of x (n,H,W,C) into out (n,OH,OW,C)
// (F must equal C), averaging only the window cells inside the input —
// padding is excluded from the count, like Keras/TF 'same' average pooling
// and PyTorch's count_include_pad=False:
//
//	for b < n, oy < OH, ox < OW, c < C:
//		s, cnt := 0, 0
//		for ky < KH, kx < KW:
//			iy, ix := oy*SH-PadT+ky*DH, ox*SW-PadL+kx*DW
//			if 0 <= iy < H && 0 <= ix < W:
//				s, cnt = s+x[b,iy,ix,c], cnt+1
//		out[b,oy,ox,c] = s / cnt  // 0 when cnt == 0 (window entirely in padding)
//
// The division is done as a multiplication by 1/cnt, so results agree
// with the reference to rounding only.
func AvgPool2D[T Float](out, x []T, n int, g Conv2DGeom) {
	convCheck(g, "AvgPool2D", n, true)
	C := g.C
	out = fit(out, n*g.OH*g.OW*C, "AvgPool2D", "out")
	x = fit(x, n*g.H*g.W*C, "AvgPool2D", "x")
	xRow, plane := g.W*C, g.H*g.W*C
	i := 0
	for b := 0; b < n; b++ {
		for oy := 0; oy < g.OH; oy++ {
			y0 := oy*g.SH - g.PadT
			ky0, ky1 := convRange(y0, g.DH, g.KH, g.H)
			for ox := 0; ox < g.OW; ox++ {
				x0 := ox*g.SW - g.PadL
				kx0, kx1 := convRange(x0, g.DW, g.KW, g.W)
				o := out[i : i+C]
				i += C
				clear(o)
				cnt := (ky1 - ky0) * (kx1 - kx0)
				if cnt == 0 {
					continue
				}
				for ky := ky0; ky < ky1; ky++ {
					rowBase := b*plane + (y0+ky*g.DH)*xRow
					for kx := kx0; kx < kx1; kx++ {
						base := rowBase + (x0+kx*g.DW)*C
						convAdd(o, x[base:base+C])
					}
				}
				if cnt > 1 {
					inv := 1 / T(cnt)
					for c := range o {
						o[c] *= inv
					}
				}
			}
		}
	}
}

// AvgPool2DGrad computes the gradient of AvgPool2D with respect to x, its
// adjoint: dx (n,H,W,C) from dy (n,OH,OW,C):
//
//	if !acc: dx[...] = 0
//	for b < n, oy < OH, ox < OW, c < C:
//		cnt := number of in-input cells of window (oy, ox)
//		for ky < KH, kx < KW:
//			iy, ix := oy*SH-PadT+ky*DH, ox*SW-PadL+kx*DW
//			if 0 <= iy < H && 0 <= ix < W:
//				dx[b,iy,ix,c] += dy[b,oy,ox,c] / cnt
//
// (dy[...]/cnt is computed as dy[...]·(1/cnt)).
func AvgPool2DGrad[T Float](dx, dy []T, n int, g Conv2DGeom, acc bool) {
	convCheck(g, "AvgPool2DGrad", n, true)
	C := g.C
	dx = fit(dx, n*g.H*g.W*C, "AvgPool2DGrad", "dx")
	dy = fit(dy, n*g.OH*g.OW*C, "AvgPool2DGrad", "dy")
	if !acc {
		clear(dx)
	}
	xRow, plane := g.W*C, g.H*g.W*C
	i := 0
	for b := 0; b < n; b++ {
		for oy := 0; oy < g.OH; oy++ {
			y0 := oy*g.SH - g.PadT
			ky0, ky1 := convRange(y0, g.DH, g.KH, g.H)
			for ox := 0; ox < g.OW; ox++ {
				x0 := ox*g.SW - g.PadL
				kx0, kx1 := convRange(x0, g.DW, g.KW, g.W)
				d := dy[i : i+C]
				i += C
				cnt := (ky1 - ky0) * (kx1 - kx0)
				if cnt == 0 {
					continue
				}
				inv := 1 / T(cnt)
				for ky := ky0; ky < ky1; ky++ {
					rowBase := b*plane + (y0+ky*g.DH)*xRow
					for kx := kx0; kx < kx1; kx++ {
						base := rowBase + (x0+kx*g.DW)*C
						convAxpy(dx[base:base+C], d, inv)
					}
				}
			}
		}
	}
}

// convAxpy computes dst[i] += src[i]*a for i < len(dst).
func convAxpy[T Float](dst, src []T, a T) {
	src = src[:len(dst)]
	for i := range dst {
		dst[i] += src[i] * a
	}
}
