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
// probabilities for later positions are 0).
func Attention[T Float](out, att, qkv []T, n, steps, C, heads int, causal bool) {
	hs := checkAttention("Attention", len(out), len(att), len(qkv), n, steps, C, heads)
	scale := 1 / math.Sqrt(float64(hs))
	for b := range n {
		for h := range heads {
			for t := range steps {
				q := qkv[(b*steps+t)*3*C+h*hs:][:hs]
				row := att[((b*heads+h)*steps+t)*steps:][:steps]
				last := steps
				if causal {
					last = t + 1
				}
				peak := math.Inf(-1)
				for t2 := range last {
					k := qkv[(b*steps+t2)*3*C+C+h*hs:][:hs]
					var dot float64
					for i, qi := range q {
						dot += float64(qi) * float64(k[i])
					}
					dot *= scale
					row[t2] = T(dot)
					peak = max(peak, dot)
				}
				var sum float64
				live := row[:last]
				for t2, s := range live {
					e := math.Exp(float64(s) - peak)
					live[t2] = T(e)
					sum += e
				}
				inv := 1 / sum
				for t2, s := range live {
					live[t2] = T(float64(s) * inv)
				}
				clear(row[last:])
				o := out[(b*steps+t)*C+h*hs:][:hs]
				clear(o)
				for t2 := range last {
					v := qkv[(b*steps+t2)*3*C+2*C+h*hs:][:hs]
					Axpy(o, v, row[t2])
				}
			}
		}
	}
}

// AttentionGrad computes the gradient of Attention's qkv from dout and the
// probabilities att that Attention recorded, into dqkv (after clearing it
// unless acc). scratch holds steps elements. Through the softmax, row by
// row: dp = dout·vᵀ, dscore = p ⊙ (dp − Σ p·dp), then dq = dscore·k/√hs,
// dk += dscoreᵀ·q/√hs, dv += pᵀ·dout.
func AttentionGrad[T Float](dqkv, dout, qkv, att, scratch []T, n, steps, C, heads int, causal, acc bool) {
	hs := checkAttention("AttentionGrad", len(dout), len(att), len(qkv), n, steps, C, heads)
	if len(dqkv) < n*steps*3*C || len(scratch) < steps {
		panic(fmt.Sprintf("runtime.AttentionGrad: dqkv of %d and scratch of %d for %d positions of 3×%d and %d steps: a generator bug", len(dqkv), len(scratch), n*steps, C, steps))
	}
	if !acc {
		clear(dqkv[:n*steps*3*C])
	}
	scale := T(1 / math.Sqrt(float64(hs)))
	dp := scratch[:steps]
	for b := range n {
		for h := range heads {
			for t := range steps {
				row := att[((b*heads+h)*steps+t)*steps:][:steps]
				do := dout[(b*steps+t)*C+h*hs:][:hs]
				last := steps
				if causal {
					last = t + 1
				}
				var mean float64
				for t2 := range last {
					v := qkv[(b*steps+t2)*3*C+2*C+h*hs:][:hs]
					var dot float64
					for i, d := range do {
						dot += float64(d) * float64(v[i])
					}
					dp[t2] = T(dot)
					mean += float64(row[t2]) * dot
					Axpy(dqkv[(b*steps+t2)*3*C+2*C+h*hs:][:hs], do, row[t2]) // dv
				}
				q := qkv[(b*steps+t)*3*C+h*hs:][:hs]
				dq := dqkv[(b*steps+t)*3*C+h*hs:][:hs]
				for t2 := range last {
					ds := T(float64(row[t2])*(float64(dp[t2])-mean)) * scale
					Axpy(dq, qkv[(b*steps+t2)*3*C+C+h*hs:][:hs], ds) // dq += ds·k
					Axpy(dqkv[(b*steps+t2)*3*C+C+h*hs:][:hs], q, ds) // dk += ds·q
				}
			}
		}
	}
}

// AttentionSavedSize is the size of Attention's att: n·heads·steps².
func AttentionSavedSize(n, steps, heads int) int { return n * heads * steps * steps }

func checkAttention(kernel string, outLen, attLen, qkvLen, n, steps, C, heads int) int {
	if heads < 1 || C%heads != 0 || n < 0 || steps < 1 || outLen < n*steps*C || attLen < AttentionSavedSize(n, steps, heads) || qkvLen < n*steps*3*C {
		panic(fmt.Sprintf("runtime.%s: %d rows of %d steps, %d channels in %d heads, buffers of %d, %d and %d: a generator bug", kernel, n, steps, C, heads, outLen, attLen, qkvLen))
	}
	return C / heads
}
