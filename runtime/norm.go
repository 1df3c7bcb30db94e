package runtime

import (
	"fmt"
	"math"
)

// Normalization layers, PyTorch's semantics: batch norm per channel (the
// last axis, over every other: all N·H·W values of a channel of an NHWC
// image), layer norm per row (over the last axis). Both keep what their
// backward passes need the way llm.c's layernorm does: the mean and the
// reciprocal standard deviation per channel (or row), nothing of the
// activations' size; the backward pass recomputes x̂ = (x-μ)·rstd from x.
// Statistics accumulate in float64, whatever T is.

// normChunk is how many channels the batch-norm kernels take at a time:
// their float64 accumulators live on the stack.
const normChunk = 64

// BatchNormSavedSize is the number of floats BatchNorm keeps for its
// backward pass and for the running statistics: the batch mean, rstd
// (1/√(var+eps)) and biased variance of each of the C channels.
func BatchNormSavedSize(C int) int { return 3 * C }

// BatchNorm normalizes x (rows, C), rows = every value of a channel (n·H·W
// for images), with the statistics of this batch, as PyTorch does in
// training mode:
//
//	μ_c = mean_r x[r,c], σ²_c = mean_r (x[r,c]-μ_c)²   (biased)
//	out[r,c] = (x[r,c]-μ_c) · (gamma[c] / √(σ²_c+eps)) + beta[c]
//
// and writes μ, 1/√(σ²+eps) and σ² to saved (len ≥ 3C) for BatchNormGrad
// and BatchNormUpdate. rows must be at least 2: the variance of one value
// is 0 and its normalization meaningless (PyTorch refuses it too; the
// generated code checks before any kernel runs). out may alias x.
//
// Three passes down the columns, a chunk of channels at a time: the sums
// for the mean, those for the variance (of x - μ, exact where the mean is
// large), and the normalization, on AVX kernels for float32; the sums
// are taken over blocks of normRows rows and added in float64.
func BatchNorm[T Float](out, saved, x, gamma, beta []T, rows, C int, eps T) {
	if rows < 2 || C < 1 || len(out) < rows*C || len(x) < rows*C || len(gamma) < C || len(beta) < C || len(saved) < 3*C {
		panic(fmt.Sprintf("runtime.BatchNorm: rows=%d C=%d with len(out)=%d len(x)=%d len(gamma)=%d len(beta)=%d len(saved)=%d",
			rows, C, len(out), len(x), len(gamma), len(beta), len(saved)))
	}
	mean, rstd, variance := saved[:C], saved[C:2*C], saved[2*C:3*C]
	for c0 := 0; c0 < C; c0 += normChunk {
		w := min(normChunk, C-c0)
		var sum, sq [normChunk]float64
		for r0 := 0; r0 < rows; r0 += normRows {
			rb := min(normRows, rows-r0)
			var blk [normChunk]T
			colSums(blk[:w], x[r0*C+c0:], rb, w, C)
			for j, v := range blk[:w] {
				sum[j] += float64(v)
			}
		}
		m := mean[c0 : c0+w]
		for j := range m {
			m[j] = T(sum[j] / float64(rows))
		}
		for r0 := 0; r0 < rows; r0 += normRows {
			rb := min(normRows, rows-r0)
			var blk [normChunk]T
			colSumSqDev(blk[:w], m, x[r0*C+c0:], rb, w, C)
			for j, v := range blk[:w] {
				sq[j] += float64(v)
			}
		}
		vr, rs, g := variance[c0:c0+w], rstd[c0:c0+w], gamma[c0:c0+w]
		vr, rs, g = vr[:len(m)], rs[:len(m)], g[:len(m)]
		var k [normChunk]T
		kk := k[:len(m)]
		for j := range m {
			v := sq[j] / float64(rows)
			vr[j] = T(v)
			r := 1 / math.Sqrt(v+float64(eps))
			rs[j] = T(r)
			kk[j] = T(r * float64(g[j]))
		}
		colScaleShiftDev(out[c0:], x[c0:], m, kk, beta[c0:c0+w], rows, w, C)
	}
}

// normRows is the block of rows whose column sums the batch-norm kernels
// take in T before adding them in float64.
const normRows = 128

// The column helpers of batch norm, over columns [0, w) of the rows×ld
// matrices starting at the slices given: the AVX kernels take the whole
// vectors of 8 columns (float32), these loops the rest.

// colSums: acc[c] += Σ_r x[r*ld+c].
func colSums[T Float](acc, x []T, rows, w, ld int) {
	k := colSumsAsm(acc, x, rows, w, ld)
	acc = acc[k:w]
	for r := range rows {
		xr := x[r*ld+k : r*ld+w]
		xr = xr[:len(acc)]
		for j, v := range xr {
			acc[j] += v
		}
	}
}

// colSumSqDev: acc[c] += Σ_r (x[r*ld+c] - mean[c])².
func colSumSqDev[T Float](acc, mean, x []T, rows, w, ld int) {
	k := colSumSqDevAsm(acc, mean, x, rows, w, ld)
	acc, mean = acc[k:w], mean[k:w]
	mean = mean[:len(acc)]
	for r := range rows {
		xr := x[r*ld+k : r*ld+w]
		xr = xr[:len(acc)]
		for j, v := range xr {
			d := v - mean[j]
			acc[j] += d * d
		}
	}
}

// colDotDev: sdy[c] += Σ_r dy[r*ld+c]; sdyx[c] += Σ_r dy[r*ld+c]·(x[r*ld+c] - mean[c]).
func colDotDev[T Float](sdy, sdyx, mean, dy, x []T, rows, w, ld int) {
	k := colDotDevAsm(sdy, sdyx, mean, dy, x, rows, w, ld)
	sdy, sdyx, mean = sdy[k:w], sdyx[k:w], mean[k:w]
	sdyx, mean = sdyx[:len(sdy)], mean[:len(sdy)]
	for r := range rows {
		gr, xr := dy[r*ld+k:r*ld+w], x[r*ld+k:r*ld+w]
		gr, xr = gr[:len(sdy)], xr[:len(sdy)]
		for j, g := range gr {
			sdy[j] += g
			sdyx[j] += g * (xr[j] - mean[j])
		}
	}
}

// colScaleShiftDev: out[r*ld+c] = (x[r*ld+c] - mean[c])·k[c] + beta[c].
func colScaleShiftDev[T Float](out, x, mean, k, beta []T, rows, w, ld int) {
	n := colScaleShiftDevAsm(out, x, mean, k, beta, rows, w, ld)
	mean, k, beta = mean[n:w], k[n:w], beta[n:w]
	k, beta = k[:len(mean)], beta[:len(mean)]
	for r := range rows {
		xr, or := x[r*ld+n:r*ld+w], out[r*ld+n:r*ld+w]
		xr, or = xr[:len(mean)], or[:len(mean)]
		for j, v := range xr {
			or[j] = (v-mean[j])*k[j] + beta[j]
		}
	}
}

// colNormGrad: dx[r*ld+c] = a[c]·dy[r*ld+c] - b[c]·(x[r*ld+c] - mean[c]) - c[c].
func colNormGrad[T Float](dx, dy, x, mean, a, b, c []T, rows, w, ld int) {
	k := colNormGradAsm(dx, dy, x, mean, a, b, c, rows, w, ld)
	mean, a, b, c = mean[k:w], a[k:w], b[k:w], c[k:w]
	a, b, c = a[:len(mean)], b[:len(mean)], c[:len(mean)]
	for r := range rows {
		or, gr, xr := dx[r*ld+k:r*ld+w], dy[r*ld+k:r*ld+w], x[r*ld+k:r*ld+w]
		or = or[:len(mean)]
		gr, xr = gr[:len(or)], xr[:len(or)]
		for j := range or {
			or[j] = a[j]*gr[j] - b[j]*(xr[j]-mean[j]) - c[j]
		}
	}
}

// BatchNormUpdate moves the running statistics toward those of the batch
// BatchNorm saved, PyTorch's way: r ← (1-momentum)·r + momentum·batch,
// with the batch's variance unbiased (σ²·count/(count-1)), count being the
// values per channel (rows of BatchNorm).
func BatchNormUpdate[T Float](runMean, runVar, saved []T, C, count int, momentum T) {
	if C < 1 || count < 2 || len(runMean) < C || len(runVar) < C || len(saved) < 3*C {
		panic(fmt.Sprintf("runtime.BatchNormUpdate: C=%d count=%d with len(runMean)=%d len(runVar)=%d len(saved)=%d", C, count, len(runMean), len(runVar), len(saved)))
	}
	mean, variance := saved[:C], saved[2*C:3*C]
	unbias := T(float64(count) / float64(count-1))
	rm, rv := runMean[:len(mean)], runVar[:len(mean)]
	for j, mu := range mean {
		rm[j] = (1-momentum)*rm[j] + momentum*mu
		rv[j] = (1-momentum)*rv[j] + momentum*variance[j]*unbias
	}
}

// BatchNormGrad computes the gradients of BatchNorm (training mode) from
// the output gradient dy (rows, C), x and what BatchNorm saved:
//
//	x̂ = (x-μ)·rstd
//	dgamma[c] (+)= Σ_r dy·x̂,  dbeta[c] (+)= Σ_r dy
//	dx = gamma·rstd · (dy - Σ_r dy/rows - x̂·Σ_r dy·x̂/rows)
//
// two column reductions in one pass, and one pass for dx, a chunk of
// channels at a time, on AVX kernels for float32; dx is written, dgamma
// and dbeta are added into when acc. dx may alias dy.
func BatchNormGrad[T Float](dx, dgamma, dbeta, dy, x, gamma, saved []T, rows, C int, acc bool) {
	if rows < 2 || C < 1 || len(dx) < rows*C || len(dy) < rows*C || len(x) < rows*C || len(gamma) < C || len(dgamma) < C || len(dbeta) < C || len(saved) < 3*C {
		panic(fmt.Sprintf("runtime.BatchNormGrad: rows=%d C=%d with len(dx)=%d len(dy)=%d len(x)=%d len(gamma)=%d len(dgamma)=%d len(dbeta)=%d len(saved)=%d",
			rows, C, len(dx), len(dy), len(x), len(gamma), len(dgamma), len(dbeta), len(saved)))
	}
	mean, rstd := saved[:C], saved[C:2*C]
	inv := 1 / float64(rows)
	for c0 := 0; c0 < C; c0 += normChunk {
		w := min(normChunk, C-c0)
		mu, rs := mean[c0:c0+w], rstd[c0:c0+w]
		var sdy, sdyx [normChunk]float64
		for r0 := 0; r0 < rows; r0 += normRows {
			rb := min(normRows, rows-r0)
			var a, b [normChunk]T
			colDotDev(a[:w], b[:w], mu, dy[r0*C+c0:], x[r0*C+c0:], rb, w, C)
			for j := range w {
				sdy[j] += float64(a[j])
				sdyx[j] += float64(b[j])
			}
		}
		var ka, kb, kc [normChunk]T
		dg, db, g := dgamma[c0:c0+w], dbeta[c0:c0+w], gamma[c0:c0+w]
		dg, db, g, rs = dg[:len(mu)], db[:len(mu)], g[:len(mu)], rs[:len(mu)]
		a, b, xa, xb, xc := sdy[:len(mu)], sdyx[:len(mu)], ka[:len(mu)], kb[:len(mu)], kc[:len(mu)]
		for j := range mu {
			r := float64(rs[j])
			sx := b[j] * r // Σ dy·x̂
			if acc {
				dg[j] += T(sx)
				db[j] += T(a[j])
			} else {
				dg[j] = T(sx)
				db[j] = T(a[j])
			}
			k := float64(g[j]) * r
			xa[j] = T(k)
			xb[j] = T(k * r * sx * inv)
			xc[j] = T(k * a[j] * inv)
		}
		colNormGrad(dx[c0:], dy[c0:], x[c0:], mu, xa, xb, xc, rows, w, C)
	}
}

// BatchNormInfer is BatchNorm in inference mode, with the running
// statistics: out = (x - runMean) · gamma/√(runVar + eps) + beta. out may
// alias x.
func BatchNormInfer[T Float](out, x, gamma, beta, runMean, runVar []T, rows, C int, eps T) {
	if rows < 0 || C < 1 || len(out) < rows*C || len(x) < rows*C || len(gamma) < C || len(beta) < C || len(runMean) < C || len(runVar) < C {
		panic(fmt.Sprintf("runtime.BatchNormInfer: rows=%d C=%d with len(out)=%d len(x)=%d len(gamma)=%d len(beta)=%d len(runMean)=%d len(runVar)=%d",
			rows, C, len(out), len(x), len(gamma), len(beta), len(runMean), len(runVar)))
	}
	for c0 := 0; c0 < C; c0 += normChunk {
		w := min(normChunk, C-c0)
		var s [normChunk]T
		g, v, sc := gamma[c0:c0+w], runVar[c0:c0+w], s[:w]
		g, v = g[:len(sc)], v[:len(sc)]
		for j := range sc {
			sc[j] = T(float64(g[j]) / math.Sqrt(float64(v[j])+float64(eps)))
		}
		colScaleShiftDev(out[c0:], x[c0:], runMean[c0:c0+w], sc, beta[c0:c0+w], rows, w, C)
	}
}

// bnScaleShift computes the per-channel scale γ/√(var+eps) and shift
// β - mean·scale that make inference-mode batch norm x·scale + shift.
func bnScaleShift[T Float](scale, shift, gamma, beta, mean, variance []T, eps T) {
	shift, gamma, beta, mean, variance = shift[:len(scale)], gamma[:len(scale)], beta[:len(scale)], mean[:len(scale)], variance[:len(scale)]
	for j := range scale {
		s := T(float64(gamma[j]) / math.Sqrt(float64(variance[j])+float64(eps)))
		scale[j] = s
		shift[j] = beta[j] - mean[j]*s
	}
}

// BatchNormFold folds an inference-mode batch norm into the product (a
// dense layer's or a convolution's) whose output it normalizes: for a
// weight w (K, C), its output channels last, and its bias b (C; nil for
// none), it writes w'[k,c] = w[k,c]·s[c] and b'[c] = b[c]·s[c] + t[c] with
// s and t those of BatchNormInfer, so that the product with w' and b' is
// the product followed by the batch norm: one product and no
// normalization pass at inference time.
func BatchNormFold[T Float](wOut, bOut, w, b, gamma, beta, runMean, runVar []T, K, C int, eps T) {
	if K < 1 || C < 1 || len(wOut) < K*C || len(w) < K*C || len(bOut) < C || b != nil && len(b) < C ||
		len(gamma) < C || len(beta) < C || len(runMean) < C || len(runVar) < C {
		panic(fmt.Sprintf("runtime.BatchNormFold: K=%d C=%d with len(wOut)=%d len(w)=%d len(bOut)=%d len(b)=%d", K, C, len(wOut), len(w), len(bOut), len(b)))
	}
	for c0 := 0; c0 < C; c0 += normChunk {
		wd := min(normChunk, C-c0)
		var s, t [normChunk]T
		bnScaleShift(s[:wd], t[:wd], gamma[c0:c0+wd], beta[c0:c0+wd], runMean[c0:c0+wd], runVar[c0:c0+wd], eps)
		bo := bOut[c0 : c0+wd]
		sc, sh := s[:len(bo)], t[:len(bo)]
		if b == nil {
			copy(bo, sh)
		} else {
			bi := b[c0 : c0+wd]
			bi = bi[:len(bo)]
			for j := range bo {
				bo[j] = bi[j]*sc[j] + sh[j]
			}
		}
		for k := range K {
			wr, or := w[k*C+c0:k*C+c0+wd], wOut[k*C+c0:k*C+c0+wd]
			sc := s[:len(wr)]
			or = or[:len(wr)]
			for j, v := range wr {
				or[j] = v * sc[j]
			}
		}
	}
}

// LayerNormSavedSize is the number of floats LayerNorm keeps for its
// backward pass: the mean and rstd of each of the rows.
func LayerNormSavedSize(rows int) int { return 2 * rows }

// LayerNorm normalizes each row of x (rows, C) over its C values, as
// PyTorch's nn.LayerNorm over the last axis:
//
//	out[r,c] = (x[r,c]-μ_r) / √(σ²_r+eps) · gamma[c] + beta[c]
//
// and writes μ_r and rstd_r to saved (len ≥ 2·rows: the means, then the
// rstds) for LayerNormGrad. out may alias x. On amd64 float32 rows run
// on vector kernels (internal/asmgen/rows.go): the statistics summed in
// float64 as here but in another order, the updates bit-identical, as in
// LayerNormGrad.
func LayerNorm[T Float](out, saved, x, gamma, beta []T, rows, C int, eps T) {
	if rows < 0 || C < 1 || len(out) < rows*C || len(x) < rows*C || len(gamma) < C || len(beta) < C || len(saved) < 2*rows {
		panic(fmt.Sprintf("runtime.LayerNorm: rows=%d C=%d with len(out)=%d len(x)=%d len(gamma)=%d len(beta)=%d len(saved)=%d",
			rows, C, len(out), len(x), len(gamma), len(beta), len(saved)))
	}
	gamma, beta = gamma[:C], beta[:C]
	if layerNormAsm(out, saved, x, gamma, beta, rows, C, eps) { // the same, all rows in one call
		return
	}
	for r := range rows {
		xr, or := x[r*C:r*C+C], out[r*C:r*C+C]
		xr, or = xr[:len(gamma)], or[:len(gamma)]
		// The float32 kernels sum in float64 too, in another order.
		k, s := sum64Asm(xr)
		for _, v := range xr[k:] {
			s += float64(v)
		}
		mu := s / float64(C)
		k, q := sumSqDev64Asm(xr, mu)
		for _, v := range xr[k:] {
			d := float64(v) - mu
			q += d * d
		}
		rs := 1 / math.Sqrt(q/float64(C)+float64(eps))
		m, rt := T(mu), T(rs)
		saved[r], saved[rows+r] = m, rt
		k = layerNormRowAsm(or, xr, gamma, beta, m, rt)
		xt := xr[k:]
		ot, gt, bt := or[k:][:len(xt)], gamma[k:][:len(xt)], beta[k:][:len(xt)]
		for j, v := range xt {
			ot[j] = (v-m)*rt*gt[j] + bt[j]
		}
	}
}

// LayerNormGrad computes the gradients of LayerNorm from dy (rows, C), x
// and what LayerNorm saved, llm.c's way, row by row:
//
//	x̂ = (x-μ)·rstd,  g = dy·gamma
//	dx = rstd · (g - mean_c g - x̂·mean_c(g·x̂))
//	dgamma (+)= Σ_r dy·x̂,  dbeta (+)= Σ_r dy
//
// dx is written; dgamma and dbeta are added into when acc (else the first
// row overwrites them). dx may alias dy.
func LayerNormGrad[T Float](dx, dgamma, dbeta, dy, x, gamma, saved []T, rows, C int, acc bool) {
	if rows < 0 || C < 1 || len(dx) < rows*C || len(dy) < rows*C || len(x) < rows*C || len(gamma) < C || len(dgamma) < C || len(dbeta) < C || len(saved) < 2*rows {
		panic(fmt.Sprintf("runtime.LayerNormGrad: rows=%d C=%d with len(dx)=%d len(dy)=%d len(x)=%d len(gamma)=%d len(dgamma)=%d len(dbeta)=%d len(saved)=%d",
			rows, C, len(dx), len(dy), len(x), len(gamma), len(dgamma), len(dbeta), len(saved)))
	}
	gamma, dgamma, dbeta = gamma[:C], dgamma[:C], dbeta[:C]
	if !acc {
		clear(dgamma)
		clear(dbeta)
	}
	if layerNormGradAsm(dx, dgamma, dbeta, dy, x, gamma, saved, rows, C) { // the same, all rows in one call
		return
	}
	for r := range rows {
		xr, gr, or := x[r*C:r*C+C], dy[r*C:r*C+C], dx[r*C:r*C+C]
		xr, gr, or = xr[:len(gamma)], gr[:len(gamma)], or[:len(gamma)]
		m, rs := saved[r], saved[rows+r]
		k, a, b := layerNormGradSumsAsm(gr, gamma, xr, m, rs)
		xt := xr[k:]
		grt, gat := gr[k:][:len(xt)], gamma[k:][:len(xt)]
		for j, v := range xt {
			g := float64(grt[j] * gat[j])
			a += g
			b += g * float64((v-m)*rs)
		}
		a /= float64(C)
		b /= float64(C)
		ma, mb := T(a), T(b)
		k = layerNormGradRowAsm(or, dgamma, dbeta, gr, xr, gamma, m, rs, ma, mb)
		xt = xr[k:]
		grt, gat = gr[k:][:len(xt)], gamma[k:][:len(xt)]
		ot, dgt, dbt := or[k:][:len(xt)], dgamma[k:][:len(xt)], dbeta[k:][:len(xt)]
		for j, v := range xt {
			xh := (v - m) * rs
			g := grt[j]
			dgt[j] += g * xh
			dbt[j] += g
			ot[j] = rs * (g*gat[j] - ma - xh*mb)
		}
	}
}

// DropoutKey is the key of one dropout layer's masks in one training step:
// a hash of the model's seed, the step count and the layer, so that each
// step draws new masks, every run from the same seed draws the same ones,
// and a mask is a pure function of (seed, step, layer, element), the same
// whatever the number of threads, and computed again, not stored, by the
// backward pass.
func DropoutKey(seed, step uint64, layer int) uint64 {
	return splitmix64(splitmix64(seed^0x6a09e667f3bcc909) ^ splitmix64(step) ^ uint64(layer)<<48)
}

// splitmix64 is the output function of SplitMix64 (Steele, Lea, Flood).
func splitmix64(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// dropoutHash is the 32-bit hash of element i under key: murmur3's
// finalizer of i mixed with the key's two halves.
func dropoutHash(key uint64, i uint32) uint32 {
	h := i*0x9e3779b9 ^ uint32(key)
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h ^ uint32(key>>32)
}

// dropoutThreshold is the hash value below which an element is dropped:
// rate·2³², so each element is dropped with probability rate (to 2⁻³²).
func dropoutThreshold(rate float64) uint32 {
	if !(rate > 0) {
		return 0
	}
	return uint32(min(rate, 1) * (1 << 32))
}

// Dropout computes inverted dropout of x with the mask of key (DropoutKey):
// out[i] = x[i]/(1-rate) where element i is kept, 0 where it is dropped
// (with probability rate); 0 ≤ rate < 1. out may alias x.
func Dropout[T Float](out, x []T, rate float64, key uint64) {
	x = fit(x, len(out), "Dropout", "x")
	dropoutLoop(out, x, rate, key)
}

// DropoutGrad is the gradient of Dropout with the same rate and key: the
// mask computed again, dx[i] = dy[i]/(1-rate) where kept, else 0.
func DropoutGrad[T Float](dx, dy []T, rate float64, key uint64) {
	dy = fit(dy, len(dx), "DropoutGrad", "dy")
	dropoutLoop(dx, dy, rate, key)
}

func dropoutLoop[T Float](out, x []T, rate float64, key uint64) {
	if !(rate >= 0 && rate < 1) {
		panic(fmt.Sprintf("runtime.Dropout: rate %v, want 0 ≤ rate < 1", rate))
	}
	if len(out) > math.MaxUint32 {
		panic("runtime.Dropout: more than 2³² elements")
	}
	th := dropoutThreshold(rate)
	scale := T(1 / (1 - rate))
	x = x[:len(out)]
	for i, v := range x {
		if dropoutHash(key, uint32(i)) < th {
			v = 0
		} else {
			v *= scale
		}
		out[i] = v
	}
}
