//go:build !noasm

package runtime

import "unsafe"

// Float32 attention on amd64 runs its products on the broadcast kernels
// directly, with the heads read in place: a head's queries, keys and
// values are hs columns of the rows of qkv, 3C apart, and the kernels take
// any row stride, so nothing is gathered into contiguous copies or
// scattered back (the copies were a tenth of Attention's time in
// generated/gpt). Only the keys (and, for the gradient, the values) are
// packed, transposed into panels, as Gemm packs any Bᵀ. With causal, the
// products skip what the mask makes zero: a tile of rows t0…t1 of the
// scores needs the columns up to t1 only, the weighted sums of those rows
// the values up to t1, and the products with pᵀ the rows from t0 on. The
// kernels run the same chain of FMAs for every element as Gemm does; the
// terms skipped are products with exact zeros.

// attentionAsm runs Attention with the kernels and returns true, or
// returns false when they do not apply (float64, a CPU without AVX2 and
// FMA, or a scratch too small for the packed keys).
func attentionAsm[T Float](out, att, qkv, scratch []T, n, steps, C, heads, hs int, scale float64, causal bool) bool {
	var z T
	mr, nr := sgemmTile()
	np := (steps + nr - 1) / nr
	if unsafe.Sizeof(z) != 4 || !haveSgemmAsm || np*nr*hs > len(scratch) {
		return false
	}
	o, qkv32, pack := f32s(out), f32s(qkv), f32s(scratch)[:np*nr*hs]
	att32 := f32s(att)
	w3 := 3 * C
	for b := range n {
		for h := range heads {
			base := b*steps*w3 + h*hs // head h's query of the first position of sequence b
			p := att32[(b*heads+h)*steps*steps:][:steps*steps]
			// scores = q·kᵀ
			sgemmPackBT(qkv32[base+C:], w3, hs, 0, steps, nr, pack)
			for i, rows := range sgemmTiles(0, steps, mr) {
				cols := attentionCols(i, rows, steps, causal)
				for j := 0; j < cols; j += nr {
					sgemmTileKernel(rows, min(nr, cols-j), hs, &qkv32[base+i*w3], w3, 1, pack[j*hs:], nr, p[i*steps+j:], steps, false)
				}
			}
			attentionSoftmax(p, steps, scale, causal)
			// out = p·v
			for i, rows := range sgemmTiles(0, steps, mr) {
				kk := attentionCols(i, rows, steps, causal)
				for j := 0; j < hs; j += nr {
					sgemmTileKernel(rows, min(nr, hs-j), kk, &p[i*steps], steps, 1, qkv32[base+2*C+j:], w3, o[(b*steps+i)*C+h*hs+j:], C, false)
				}
			}
		}
	}
	return true
}

// attentionGradAsm runs AttentionGrad with the kernels and returns true,
// or returns false when they do not apply.
func attentionGradAsm[T Float](dqkv, dout, qkv, att, scratch []T, n, steps, C, heads, hs int, scale float64, causal, acc bool) bool {
	var z T
	mr, nr := sgemmTile()
	np := (steps + nr - 1) / nr
	tn := steps * hs
	if unsafe.Sizeof(z) != 4 || !haveSgemmAsm || np*nr*hs > 5*tn {
		return false
	}
	dq, do, qkv32, att32 := f32s(dqkv), f32s(dout), f32s(qkv), f32s(att)
	sc := f32s(scratch)
	pack, ds := sc[:np*nr*hs], sc[5*tn:][:steps*steps]
	w3 := 3 * C
	for b := range n {
		for h := range heads {
			base := b*steps*w3 + h*hs // head h's query of the first position of sequence b
			dob := b*steps*C + h*hs   // and its output gradient
			p := att32[(b*heads+h)*steps*steps:][:steps*steps]
			// dv = pᵀ·dout
			attentionTN(p, do[dob:], C, dq[base+2*C:], w3, steps, hs, mr, nr, causal, acc)
			// dp = dout·vᵀ
			sgemmPackBT(qkv32[base+2*C:], w3, hs, 0, steps, nr, pack)
			for i, rows := range sgemmTiles(0, steps, mr) {
				cols := attentionCols(i, rows, steps, causal)
				for j := 0; j < cols; j += nr {
					sgemmTileKernel(rows, min(nr, cols-j), hs, &do[dob+i*C], C, 1, pack[j*hs:], nr, ds[i*steps+j:], steps, false)
				}
			}
			attentionSoftmaxGrad(ds, p, steps, scale, causal)
			// dq = ds·k
			for i, rows := range sgemmTiles(0, steps, mr) {
				kk := attentionCols(i, rows, steps, causal)
				for j := 0; j < hs; j += nr {
					sgemmTileKernel(rows, min(nr, hs-j), kk, &ds[i*steps], steps, 1, qkv32[base+C+j:], w3, dq[base+i*w3+j:], w3, acc)
				}
			}
			// dk = dsᵀ·q
			attentionTN(ds, qkv32[base:], w3, dq[base+C:], w3, steps, hs, mr, nr, causal, acc)
		}
	}
	return true
}

// attentionCols is the number of columns of a causal head's scores (or of
// the rows of its values) that rows [i, i+rows) need: up to their last row
// with causal, all steps without.
func attentionCols(i, rows, steps int, causal bool) int {
	if causal {
		return min(steps, i+rows)
	}
	return steps
}

// attentionTN computes d = sᵀ·x for one head (s steps × steps, x and d
// steps × hs, rows ldx and ldd apart), adding to d with acc; with causal,
// s is zero above its diagonal, so row j of d needs the rows of s and x
// from j on.
func attentionTN(s, x []float32, ldx int, d []float32, ldd, steps, hs, mr, nr int, causal, acc bool) {
	for j, rows := range sgemmTiles(0, steps, mr) {
		i0 := 0
		if causal {
			i0 = j
		}
		for c := 0; c < hs; c += nr {
			sgemmTileKernel(rows, min(nr, hs-c), steps-i0, &s[i0*steps+j], 1, steps, x[i0*ldx+c:], ldx, d[j*ldd+c:], ldd, acc)
		}
	}
}

// rowProductAsm computes AttentionStep's one-row products, c[j] =
// Σ_p a[p]·b[p*ldb+j] for j < len(c) and p < len(a), with the broadcast
// kernels (as Attention's products run, so with their bits) and returns
// true, or returns false when they do not apply.
func rowProductAsm[T Float](c, a, b []T, ldb int) bool {
	var z T
	if unsafe.Sizeof(z) != 4 || !haveSgemmAsm || len(a) == 0 || len(c) == 0 {
		return false
	}
	_ = b[(len(a)-1)*ldb+len(c)-1] // the last element read
	sgemmRow(len(a), &f32s(a)[0], 1, f32s(b), ldb, f32s(c))
	return true
}
