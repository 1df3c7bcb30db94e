package runtime

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestAttentionGrad: AttentionGrad against central finite differences of
// Σ w·Attention(qkv) in float64, causal and not; probabilities sum to 1
// and are 0 after the position under the causal mask; acc adds.
func TestAttentionGrad(t *testing.T) {
	const n, steps, C, heads = 2, 5, 6, 2
	r := rand.New(rand.NewPCG(5, 6))
	qkv := make([]float64, n*steps*3*C)
	for i := range qkv {
		qkv[i] = r.NormFloat64()
	}
	w := make([]float64, n*steps*C)
	for i := range w {
		w[i] = r.NormFloat64()
	}
	att := make([]float64, AttentionSavedSize(n, steps, heads))
	out := make([]float64, n*steps*C)
	loss := func(x []float64, causal bool) float64 {
		a := make([]float64, len(att))
		o := make([]float64, len(out))
		Attention(o, a, x, make([]float64, AttentionScratchSize(steps, C, heads)), n, steps, C, heads, causal)
		var s float64
		for i, v := range o {
			s += v * w[i]
		}
		return s
	}
	for _, causal := range []bool{true, false} {
		Attention(out, att, qkv, make([]float64, AttentionScratchSize(steps, C, heads)), n, steps, C, heads, causal)
		for row := range n * heads * steps {
			p := att[row*steps : (row+1)*steps]
			var sum float64
			for t2, v := range p {
				sum += v
				if causal && t2 > row%steps && v != 0 {
					t.Fatalf("causal: row %d attends to later step %d (%v)", row, t2, v)
				}
			}
			if math.Abs(sum-1) > 1e-12 {
				t.Fatalf("row %d: probabilities sum to %v", row, sum)
			}
		}
		dq := make([]float64, len(qkv))
		AttentionGrad(dq, w, qkv, att, make([]float64, AttentionGradScratchSize(steps, C, heads)), n, steps, C, heads, causal, false)
		x := append([]float64(nil), qkv...)
		for i := range x {
			const h = 1e-5
			x[i] = qkv[i] + h
			up := loss(x, causal)
			x[i] = qkv[i] - h
			down := loss(x, causal)
			x[i] = qkv[i]
			if fd := (up - down) / (2 * h); math.Abs(fd-dq[i]) > 1e-7*(1+math.Abs(fd)) {
				t.Fatalf("causal=%v: dqkv[%d] = %v, finite differences %v", causal, i, dq[i], fd)
			}
		}
		again := append([]float64(nil), dq...)
		AttentionGrad(again, w, qkv, att, make([]float64, AttentionGradScratchSize(steps, C, heads)), n, steps, C, heads, causal, true)
		for i := range again {
			if math.Abs(again[i]-2*dq[i]) > 1e-12*(1+math.Abs(dq[i])) {
				t.Fatalf("acc: %v, want %v", again[i], 2*dq[i])
			}
		}
	}
}

// TestAttentionFloat32: float32 Attention and AttentionGrad, at head
// sizes below, at and above a kernel tile's width and sequence lengths
// around the tiles' heights, causal and not, with and without acc: the
// heads read in place (float32 on amd64) give bit for bit the results of
// the heads copied (the products skip only exact zeros), with both kernel
// families; the results are close to float64's; acc adds; nothing outside
// the buffers is written.
func TestAttentionFloat32(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, g := range []struct{ n, steps, C, heads int }{
		{1, 1, 4, 1}, {2, 5, 6, 2}, {1, 13, 64, 2}, {2, 33, 96, 3}, {1, 64, 128, 4}, {1, 70, 80, 2}, {2, 40, 48, 1}, {1, 25, 200, 5},
	} {
		n, steps, C, heads := g.n, g.steps, g.C, g.heads
		q64 := make([]float64, n*steps*3*C)
		for i := range q64 {
			q64[i] = float64(float32(r.NormFloat64() * 1.5))
		}
		w64 := make([]float64, n*steps*C)
		for i := range w64 {
			w64[i] = float64(float32(r.NormFloat64()))
		}
		q32, w32 := to32(q64), to32(w64)
		for _, causal := range []bool{true, false} {
			name := fmt.Sprintf("n=%d steps=%d C=%d heads=%d causal=%v", n, steps, C, heads, causal)
			hs := C / heads
			scale := 1 / math.Sqrt(float64(hs))
			o64, a64 := make([]float64, len(w64)), make([]float64, AttentionSavedSize(n, steps, heads))
			Attention(o64, a64, q64, make([]float64, AttentionScratchSize(steps, C, heads)), n, steps, C, heads, causal)
			d64 := make([]float64, len(q64))
			AttentionGrad(d64, w64, q64, a64, make([]float64, AttentionGradScratchSize(steps, C, heads)), n, steps, C, heads, causal, false)

			// The copied heads, the reference for bit-identity.
			oc, ac := make([]float32, len(w64)), make([]float32, len(a64))
			attentionCopied(oc, ac, q32, make([]float32, AttentionScratchSize(steps, C, heads)), n, steps, C, heads, hs, scale, causal)
			dc := make([]float32, len(q64))
			attentionGradCopied(dc, w32, q32, ac, make([]float32, AttentionGradScratchSize(steps, C, heads)), n, steps, C, heads, hs, scale, causal, false)
			forEachSgemmFamily(t, func(t *testing.T) {
				fo, o := ktBuf[float32](len(w64))
				fa, a := ktBuf[float32](len(a64))
				fs, s := ktBuf[float32](AttentionScratchSize(steps, C, heads))
				Attention(o, a, q32, s, n, steps, C, heads, causal)
				fd, d := ktBuf[float32](len(q64))
				fg, sg := ktBuf[float32](AttentionGradScratchSize(steps, C, heads))
				AttentionGrad(d, w32, q32, a, sg, n, steps, C, heads, causal, false)
				acc := append([]float32(nil), d...)
				AttentionGrad(acc, w32, q32, a, sg, n, steps, C, heads, causal, true)
				for _, f := range []struct {
					what string
					full []float32
				}{{"out", fo}, {"att", fa}, {"scratch", fs}, {"dqkv", fd}, {"grad scratch", fg}} {
					ktGuardsOK(t, name+" "+f.what, f.full)
				}
				for _, c := range []struct {
					what      string
					got, want []float32
				}{{"out", o, oc}, {"att", a, ac}, {"dqkv", d, dc}} {
					for i := range c.want {
						if c.got[i] != c.want[i] {
							t.Fatalf("%s: %s[%d] = %v, heads copied %v", name, c.what, i, c.got[i], c.want[i])
						}
					}
				}
				// acc adds to dqkv: in place, inside the products' sums.
				for i := range d {
					if math.Abs(float64(acc[i])-2*float64(d[i])) > 1e-5*(1+math.Abs(float64(d[i]))) {
						t.Fatalf("%s: acc: dqkv[%d] = %v, want %v", name, i, acc[i], d[i]+d[i])
					}
				}
			})
			for _, c := range []struct {
				what string
				got  []float32
				want []float64
				tol  float64
			}{{"att", ac, a64, 2e-6}, {"out", oc, o64, 1e-5}, {"dqkv", dc, d64, 1e-5}} {
				for i, v := range c.want {
					if math.Abs(float64(c.got[i])-v) > c.tol*(1+math.Abs(v)) {
						t.Fatalf("%s: float32 %s[%d] = %v, float64 %v", name, c.what, i, c.got[i], v)
					}
				}
			}
		}
	}
}

// TestAttentionStep feeds sequences to AttentionStep one position at a
// time and compares each step's rows with causal Attention over the whole
// sequences, in float64 (the same sums in another order) and float32 (on
// the broadcast kernels, bit for bit), with guard bands past every buffer.
func TestAttentionStep(t *testing.T) {
	testAttentionStep[float64](t, 1e-12)
	testAttentionStep[float32](t, 2e-5)
}

func testAttentionStep[T Float](t *testing.T, rtol float64) {
	r := rand.New(rand.NewPCG(5, 6))
	// Where the products run on the broadcast kernels (float32 on amd64),
	// a step gives Attention's bits.
	exact := rowProductAsm(make([]T, 1), make([]T, 1), make([]T, 1), 1)
	// gpt's heads (64 positions of 32 channels), and more than 64
	// positions (two panels of the wide one-row tile).
	for _, g := range []struct{ n, steps, C, heads int }{{1, 1, 4, 1}, {2, 5, 8, 2}, {3, 9, 12, 3}, {2, 16, 32, 4}, {1, 64, 128, 4}, {2, 70, 40, 2}} {
		qkv := ktRand[T](r, g.n*g.steps*3*g.C, 2)
		want := make([]T, g.n*g.steps*g.C)
		Attention(want, make([]T, AttentionSavedSize(g.n, g.steps, g.heads)), qkv, make([]T, AttentionScratchSize(g.steps, g.C, g.heads)), g.n, g.steps, g.C, g.heads, true)
		// A guard band past each buffer catches writes beyond its size.
		const guard = 8
		cache := make([]T, g.n*AttentionCacheSize(g.steps, g.C)+guard)
		scratch := make([]T, g.steps+guard)
		out := make([]T, g.n*g.C+guard)
		row := make([]T, g.n*3*g.C)
		for pos := range g.steps {
			for b := range g.n {
				copy(row[b*3*g.C:][:3*g.C], qkv[(b*g.steps+pos)*3*g.C:])
			}
			for i := range out {
				out[i] = T(math.NaN()) // every row of out is written
			}
			out[g.n*g.C] = 7
			cache[len(cache)-guard], scratch[len(scratch)-guard] = 7, 7
			AttentionStep(out[:g.n*g.C], cache[:len(cache)-guard], row, scratch[:g.steps], g.n, pos, g.steps, g.C, g.heads)
			if out[g.n*g.C] != 7 || cache[len(cache)-guard] != 7 || scratch[len(scratch)-guard] != 7 {
				t.Fatalf("%+v position %d: a guard band was written", g, pos)
			}
			w := make([]float64, g.n*g.C)
			for b := range g.n {
				for i := range g.C {
					w[b*g.C+i] = float64(want[(b*g.steps+pos)*g.C+i])
				}
			}
			ktClose(t, fmt.Sprintf("%T %+v position %d", T(0), g, pos), out[:g.n*g.C], w, rtol)
			for i := range w {
				if exact && out[i] != T(w[i]) {
					t.Fatalf("%T %+v position %d: out[%d] = %v, Attention gives %v (want the same bits)", T(0), g, pos, i, out[i], w[i])
				}
			}
		}
	}
}
