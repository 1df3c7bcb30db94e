package runtime

import (
	"fmt"
	"math"
)

// Attention is multi-head scaled dot-product attention over a sequence, in
// llm.c's layout: qkv holds, for each of the n·steps positions, the query,
// key and value rows of width C side by side (n, steps, 3C), each split
// into heads of C/heads; out is (n, steps, C), the heads' weighted sums of
// the values side by side; att (n, heads, steps, steps) records the
// attention probabilities softmax(q·kᵀ/√(C/heads)) for the gradient. With
// causal, a position attends to itself and the ones before it only (its
// probabilities for later positions are 0). scratch holds
// AttentionScratchSize(steps, C, heads) elements.
//
// Each head of each row is three GEMMs: scores = q·kᵀ (written into att),
// the softmax in place, then p·v; on contiguous copies of its queries,
// keys and values, or, for float32 on amd64, read in place
// (attention_amd64.go).
func Attention[T Float](out, att, qkv, scratch []T, n, steps, C, heads int, causal bool) {
	hs := checkAttention("Attention", len(out), len(att), len(qkv), len(scratch), AttentionScratchSize(steps, C, heads), n, steps, C, heads)
	scale := 1 / math.Sqrt(float64(hs))
	if !attentionAsm(out, att, qkv, scratch, n, steps, C, heads, hs, scale, causal) {
		attentionCopied(out, att, qkv, scratch, n, steps, C, heads, hs, scale, causal)
	}
}

// attentionCopied is Attention on contiguous copies of the heads.
func attentionCopied[T Float](out, att, qkv, scratch []T, n, steps, C, heads, hs int, scale float64, causal bool) {
	tn := steps * hs
	q, k, v, o := scratch[:tn], scratch[tn:2*tn], scratch[2*tn:3*tn], scratch[3*tn:4*tn]
	for b := range n {
		for h := range heads {
			gatherHead(q, qkv, b, h, 0, steps, 3*C, hs)
			gatherHead(k, qkv, b, h, C, steps, 3*C, hs)
			gatherHead(v, qkv, b, h, 2*C, steps, 3*C, hs)
			p := att[(b*heads+h)*steps*steps:][:steps*steps]
			Gemm(false, true, steps, steps, hs, q, k, p, false)
			attentionSoftmax(p, steps, scale, causal)
			Gemm(false, false, steps, hs, steps, p, v, o, false)
			scatterHead(out, o, b, h, 0, steps, C, hs, false)
		}
	}
}

// attentionSoftmax turns one head's scores p (steps × steps) into
// probabilities in place: p = softmax(p·scale) row by row, over the
// positions up to the row's own with causal (the later ones set to 0, and
// not read: they may hold anything).
func attentionSoftmax[T Float](p []T, steps int, scale float64, causal bool) {
	for t := range steps {
		last := steps
		if causal {
			last = t + 1
		}
		softmaxLiveRow(p[t*steps:(t+1)*steps], last, scale)
	}
}

// softmaxLiveRow sets row[:last] to softmax(row[:last]·scale) and the rest
// of the row to 0: a row of attentionSoftmax, and AttentionStep's scores,
// which thereby get the same bits.
func softmaxLiveRow[T Float](row []T, last int, scale float64) {
	live := row[:last]
	if softmaxRowAsm(live, scale) { // the same operations in one call
		clear(row[last:])
		return
	}
	// scale > 0, so the largest score scales to the peak.
	peak := float64(rowMax(live)) * scale
	// Pad a causal row with -Inf to whole vectors for the kernels that
	// take whole vectors only: e^-Inf = 0 adds nothing to the sum, and
	// the padding is cleared with the rest.
	padded := live
	if !expSumAll[T]() {
		padded = row[:min(len(row), (last+7)&^7)]
	}
	for i := last; i < len(padded); i++ {
		padded[i] = T(math.Inf(-1))
	}
	sum := expShift(padded, padded, scale, peak)
	Scale(padded, padded, T(1/sum))
	clear(row[last:])
}

// AttentionGrad computes the gradient of Attention's qkv from dout and the
// probabilities att that Attention recorded, into dqkv (after clearing it
// unless acc). scratch holds AttentionGradScratchSize(steps, C, heads)
// elements. Per head, with GEMMs: dp = dout·vᵀ, dv = pᵀ·dout, through the
// softmax ds = p ⊙ (dp − Σ p⊙dp)/√hs row by row, dq = ds·k, dk = dsᵀ·q.
func AttentionGrad[T Float](dqkv, dout, qkv, att, scratch []T, n, steps, C, heads int, causal, acc bool) {
	hs := checkAttention("AttentionGrad", len(dout), len(att), len(qkv), len(scratch), AttentionGradScratchSize(steps, C, heads), n, steps, C, heads)
	if len(dqkv) < n*steps*3*C {
		panic(fmt.Sprintf("runtime.AttentionGrad: dqkv of %d for %d positions of 3×%d: a generator bug", len(dqkv), n*steps, C))
	}
	scale := 1 / math.Sqrt(float64(hs))
	if !attentionGradAsm(dqkv, dout, qkv, att, scratch, n, steps, C, heads, hs, scale, causal, acc) {
		attentionGradCopied(dqkv, dout, qkv, att, scratch, n, steps, C, heads, hs, scale, causal, acc)
	}
}

// attentionGradCopied is AttentionGrad on contiguous copies of the heads.
func attentionGradCopied[T Float](dqkv, dout, qkv, att, scratch []T, n, steps, C, heads, hs int, scale float64, causal, acc bool) {
	tn := steps * hs
	q, k, v, do := scratch[:tn], scratch[tn:2*tn], scratch[2*tn:3*tn], scratch[3*tn:4*tn]
	d := scratch[4*tn : 5*tn] // dq, dk, dv in turn
	ds := scratch[5*tn:][:steps*steps]
	for b := range n {
		for h := range heads {
			gatherHead(q, qkv, b, h, 0, steps, 3*C, hs)
			gatherHead(k, qkv, b, h, C, steps, 3*C, hs)
			gatherHead(v, qkv, b, h, 2*C, steps, 3*C, hs)
			gatherHead(do, dout, b, h, 0, steps, C, hs)
			p := att[(b*heads+h)*steps*steps:][:steps*steps]
			Gemm(true, false, steps, hs, steps, p, do, d, false) // dv = pᵀ·dout
			scatterHead(dqkv, d, b, h, 2*C, steps, 3*C, hs, acc)
			Gemm(false, true, steps, steps, hs, do, v, ds, false) // dp = dout·vᵀ
			attentionSoftmaxGrad(ds, p, steps, scale, causal)
			Gemm(false, false, steps, hs, steps, ds, k, d, false) // dq = ds·k
			scatterHead(dqkv, d, b, h, 0, steps, 3*C, hs, acc)
			Gemm(true, false, steps, hs, steps, ds, q, d, false) // dk = dsᵀ·q
			scatterHead(dqkv, d, b, h, C, steps, 3*C, hs, acc)
		}
	}
}

// attentionSoftmaxGrad turns one head's probability gradients ds (steps ×
// steps) into score gradients in place, ds = p ⊙ (ds − Σ p⊙ds)·scale row
// by row, over the positions up to the row's own with causal (the later
// ones set to 0, and not read).
func attentionSoftmaxGrad[T Float](ds, p []T, steps int, scale float64, causal bool) {
	for t := range steps {
		row := p[t*steps : (t+1)*steps]
		dr := ds[t*steps : (t+1)*steps]
		last := steps
		if causal {
			last = t + 1
		}
		pl, dl := row[:last], dr[:last]
		dl = dl[:len(pl)]
		if softmaxGradRowAllAsm(dl, pl, scale) { // one call
			clear(dr[last:])
			continue
		}
		// float32 on the kernels: the sum in another order, the
		// update bit-identical.
		k, mean := dot64Asm(pl, dl)
		pt, dt := pl[k:], dl[k:][:len(pl)-k]
		for t2, pv := range pt {
			mean += float64(pv) * float64(dt[t2])
		}
		k = softmaxGradRowAsm(dl, pl, mean, scale)
		pt, dt = pl[k:], dl[k:][:len(pl)-k]
		for t2, pv := range pt {
			dt[t2] = T(float64(pv) * (float64(dt[t2]) - mean) * scale)
		}
		clear(dr[last:])
	}
}

// gatherHead copies head h (hs columns at off + h·hs) of the steps rows of
// sequence b of src, rows of width elements, into dst (steps, hs). The
// rows are short (a head's 32 columns in the GPT), so they go in one
// strided copy (on amd64 one assembly call) rather than a copy call each.
func gatherHead[T Float](dst, src []T, b, h, off, steps, width, hs int) {
	convCopyRuns(dst, hs, src[b*steps*width+off+h*hs:], width, steps, hs)
}

// scatterHead writes (or, with add, adds) src (steps, hs) into head h's
// columns at off + h·hs of the steps rows of sequence b of dst.
func scatterHead[T Float](dst, src []T, b, h, off, steps, width, hs int, add bool) {
	if !add {
		convCopyRuns(dst[b*steps*width+off+h*hs:], width, src, hs, steps, hs)
		return
	}
	for t := range steps {
		Axpy(dst[(b*steps+t)*width+off+h*hs:][:hs], src[t*hs:(t+1)*hs], 1)
	}
}

// AttentionCacheSize is what AttentionStep keeps per sequence: the keys
// of every position transposed, (C, steps), then the values, (steps, C).
func AttentionCacheSize(steps, C int) int { return steps * 2 * C }

// AttentionStep is causal Attention at one position pos of n sequences,
// for decoding a position at a time: qkv (n, 3·C) holds each sequence's
// query, key and value at pos, and cache (n, AttentionCacheSize) the keys
// and values of its positions before pos, to which the step adds pos's.
// out (n, C) gets what Attention writes at row pos of the same sequences:
// the query's scaled scores against positions 0..pos, their softmax, and
// the values weighted by it. scratch holds at least steps elements (one
// head's scores). The cost is one position's: 4·(pos+1)·C multiply-adds a
// row.
//
// The keys are kept transposed so that a head's scores are a product of
// one row, q·kᵀ with kᵀ's rows contiguous, like its weighted sum p·v:
// for float32 on amd64 both run on Gemm's broadcast kernels (the same
// chain of FMAs for every element as in Attention's products) and the
// softmax on the kernel of Attention's rows, so a step gives the bits of
// Attention's row pos.
func AttentionStep[T Float](out, cache, qkv, scratch []T, n, pos, steps, C, heads int) {
	if heads < 1 || C%heads != 0 || n < 0 || pos < 0 || pos >= steps || len(out) < n*C || len(qkv) < n*3*C ||
		len(cache) < n*AttentionCacheSize(steps, C) || len(scratch) < steps {
		panic(fmt.Sprintf("runtime.AttentionStep: %d rows at position %d of %d, %d channels in %d heads, buffers of %d, %d, %d and scratch %d: a generator bug",
			n, pos, steps, C, heads, len(out), len(cache), len(qkv), len(scratch)))
	}
	hs := C / heads
	scale := 1 / math.Sqrt(float64(hs))
	for b := range n {
		row := qkv[b*3*C:][:3*C]
		seq := cache[b*AttentionCacheSize(steps, C):][:AttentionCacheSize(steps, C)]
		// keys: (C, steps) transposed; vals: (steps, C). This step's key is
		// column pos of kᵀ.
		keys, vals := seq[:C*steps], seq[C*steps:]
		convCopyRuns(keys[pos:], steps, row[C:2*C], 1, C, 1)
		copy(vals[pos*C:][:C], row[2*C:])
		for h := range heads {
			q, p := row[h*hs:][:hs], scratch[:steps]
			o := out[b*C+h*hs:][:hs]
			kh, vh := keys[h*hs*steps:], vals[h*hs:]
			// scores p = q·kᵀ over positions 0..pos
			if !rowProductAsm(p[:pos+1], q, kh, steps) {
				clear(p[:pos+1])
				for i, x := range q {
					Axpy(p[:pos+1], kh[i*steps:][:pos+1], x)
				}
			}
			softmaxLiveRow(p, pos+1, scale)
			// o = p·v
			if !rowProductAsm(o, p[:pos+1], vh, C) {
				clear(o)
				for t, w := range p[:pos+1] {
					Axpy(o, vh[t*C:][:hs], w)
				}
			}
		}
	}
}

// AttentionSavedSize is the size of Attention's att: n·heads·steps².
func AttentionSavedSize(n, steps, heads int) int { return n * heads * steps * steps }

// AttentionScratchSize is the work space of Attention: one head's
// queries, keys, values and outputs.
func AttentionScratchSize(steps, C, heads int) int { return 4 * steps * (C / heads) }

// AttentionGradScratchSize is the work space of AttentionGrad: one head's
// queries, keys, values, output gradient and a gradient being made, and
// its score gradients (steps, steps).
func AttentionGradScratchSize(steps, C, heads int) int {
	return 5*steps*(C/heads) + steps*steps
}

// checkAttention panics on buffers that do not fit the geometry (a
// generator bug) and returns the head size.
func checkAttention(kernel string, outLen, attLen, qkvLen, scratchLen, scratchNeed, n, steps, C, heads int) int {
	if heads < 1 || C%heads != 0 || n < 0 || steps < 1 || outLen < n*steps*C || attLen < AttentionSavedSize(n, steps, heads) ||
		qkvLen < n*steps*3*C || scratchLen < scratchNeed {
		panic(fmt.Sprintf("runtime.%s: %d rows of %d steps, %d channels in %d heads, buffers of %d, %d, %d and scratch %d: a generator bug",
			kernel, n, steps, C, heads, outLen, attLen, qkvLen, scratchLen))
	}
	return C / heads
}
