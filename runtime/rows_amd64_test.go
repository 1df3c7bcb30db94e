//go:build !noasm

package runtime

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// Tests of the row kernels of the softmax and layer-norm rows
// (f32MaxFrom, f32Sum64, f32SumSqDev64, f32LayerNormGradSums, f32Dot64,
// f32SoftmaxGradRow, f32LayerNormRow, f32LayerNormGradRow) against Go
// references, between guard bands. TestLayerNormFloat32, TestRowMax and
// TestFloat32Softmaxes check the entry points in both builds.

// TestF32MaxFrom: the Go loop's result bit for bit, NaNs skipped unless m
// is NaN, signed zeros kept in the order met; the tail not read past n&^7
// (the guard bands hold NaN sentinels, which would be skipped anyway, so
// a +Inf just past the whole vectors checks it).
func TestF32MaxFrom(t *testing.T) {
	if !haveF32Asm {
		t.Skip("CPU lacks AVX: the element-wise kernels are not used")
	}
	r := rand.New(rand.NewPCG(81, 82))
	nan := float32(math.NaN())
	for _, n := range ewLens {
		k := n &^ 7
		for _, specials := range []bool{false, true} {
			x := ewRand(r, n, 50, specials)
			full, xm := ktBuf[float32](n + 1)
			copy(xm, x)
			xm[n] = float32(math.Inf(1)) // past n: never read
			for _, m := range []float32{float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1)), 3, nan} {
				want := m
				for _, v := range x[:k] {
					if v > want {
						want = v
					}
				}
				got := f32MaxFrom(k, ewP(xm), m)
				if !ewSame(got, want) || math.Signbit(float64(got)) != math.Signbit(float64(want)) {
					t.Fatalf("f32MaxFrom(n=%d, m=%v, specials %v) = %v, Go loop %v", k, m, specials, got, want)
				}
			}
			ktGuardsOK(t, fmt.Sprintf("f32MaxFrom(n=%d)", k), full)
		}
	}
	zeros := []float32{0, float32(math.Copysign(0, -1)), 0, 0, 0, 0, 0, 0}
	if got := f32MaxFrom(8, ewP(zeros), float32(math.Copysign(0, -1))); !math.Signbit(float64(got)) {
		t.Errorf("f32MaxFrom from -0 over zeros = %v, want -0 (+0 is not greater)", got)
	}
}

// TestF32RowSums64: f32Sum64, f32SumSqDev64 and f32LayerNormGradSums
// within float64 rounding (n·2⁻⁵² relative to the sum of magnitudes) of
// the Go loops' sums, reading only the whole vectors.
func TestF32RowSums64(t *testing.T) {
	skipNoF32FMA(t)
	r := rand.New(rand.NewPCG(83, 84))
	close := func(name string, got, want, mag float64, n int) {
		t.Helper()
		if math.Abs(got-want) > float64(n+1)*0x1p-52*mag {
			t.Fatalf("%s: %v, Go loop %v", name, got, want)
		}
	}
	for _, n := range ewLens {
		k := n &^ 7
		x, dy, gamma := ewRand(r, n, 3, false), ewRand(r, n, 1, false), ewRand(r, n, 2, false)
		full, m := ewGuarded(x, dy, gamma)
		for i := range m {
			if k < n {
				m[i][k] = float32(math.NaN()) // past the whole vectors: never read
			}
		}
		var s, mag float64
		for _, v := range x[:k] {
			s += float64(v)
			mag += math.Abs(float64(v))
		}
		name := fmt.Sprintf("(n=%d)", n)
		close("f32Sum64"+name, f32Sum64(n, ewP(m[0])), s, mag, k)
		mu := s / float64(max(k, 1))
		var q float64
		for _, v := range x[:k] {
			d := float64(v) - mu
			q += d * d
		}
		close("f32SumSqDev64"+name, f32SumSqDev64(n, ewP(m[0]), mu), q, q, k)
		mean, rs := float32(mu), float32(0.7)
		var a, b, amag, bmag float64
		for j, v := range x[:k] {
			g := float64(dy[j] * gamma[j])
			a += g
			b += g * float64((v-mean)*rs)
			amag += math.Abs(g)
			bmag += math.Abs(g * float64((v-mean)*rs))
		}
		ga, gb := f32LayerNormGradSums(n, ewP(m[1]), ewP(m[2]), ewP(m[0]), mean, rs)
		close("f32LayerNormGradSums a"+name, ga, a, amag, k)
		close("f32LayerNormGradSums b"+name, gb, b, bmag, k)
		for j, f := range full {
			ktGuardsOK(t, fmt.Sprintf("row sums%s array %d", name, j), f)
		}
	}
}

// TestF32LayerNormRows: f32LayerNormRow and f32LayerNormGradRow give the
// Go loops' float32 results bit for bit, write only the whole vectors of
// their outputs, and run with dx aliasing dy.
func TestF32LayerNormRows(t *testing.T) {
	if !haveF32Asm {
		t.Skip("CPU lacks AVX: the element-wise kernels are not used")
	}
	r := rand.New(rand.NewPCG(85, 86))
	for _, n := range ewLens {
		k := n &^ 7
		x, gamma, beta := ewRand(r, n, 3, true), ewRand(r, n, 2, false), ewRand(r, n, 1, false)
		dy, dg, db := ewRand(r, n, 1, false), ewRand(r, n, 1, false), ewRand(r, n, 1, false)
		const m, rt, ma, mb = float32(0.3), float32(1.7), float32(-0.05), float32(0.2)
		name := fmt.Sprintf("(n=%d)", n)

		full, in := ewGuarded(make([]float32, n), x, gamma, beta)
		f32LayerNormRow(n, ewP(in[0]), ewP(in[1]), ewP(in[2]), ewP(in[3]), m, rt)
		for j := range n {
			want := float32(0)
			if j < k {
				want = (x[j]-m)*rt*gamma[j] + beta[j]
			}
			if !ewSame(in[0][j], want) {
				t.Fatalf("f32LayerNormRow%s: [%d] = %v, Go loop %v", name, j, in[0][j], want)
			}
		}
		for j, f := range full {
			ktGuardsOK(t, fmt.Sprintf("f32LayerNormRow%s array %d", name, j), f)
		}

		for _, alias := range []bool{false, true} {
			full, in := ewGuarded(make([]float32, n), dg, db, dy, x, gamma)
			dx := in[0]
			if alias {
				dx = in[3]
			}
			f32LayerNormGradRow(n, ewP(dx), ewP(in[1]), ewP(in[2]), ewP(in[3]), ewP(in[4]), ewP(in[5]), m, rt, ma, mb)
			for j := range n {
				wdx, wdg, wdb := float32(0), dg[j], db[j]
				if alias {
					wdx = dy[j]
				}
				if j < k {
					xh, g := (x[j]-m)*rt, dy[j]
					wdg += g * xh
					wdb += g
					wdx = rt * (g*gamma[j] - ma - xh*mb)
				}
				if !ewSame(dx[j], wdx) || !ewSame(in[1][j], wdg) || !ewSame(in[2][j], wdb) {
					t.Fatalf("f32LayerNormGradRow%s alias %v: [%d] = %v, %v, %v, Go loop %v, %v, %v",
						name, alias, j, dx[j], in[1][j], in[2][j], wdx, wdg, wdb)
				}
			}
			for j, f := range full {
				ktGuardsOK(t, fmt.Sprintf("f32LayerNormGradRow%s array %d", name, j), f)
			}
		}
	}
}

// TestF32SoftmaxGradKernels: f32Dot64 within float64 rounding of the Go
// loop's sum, f32SoftmaxGradRow bit-identical to the Go loop, both reading
// and writing only the whole vectors.
func TestF32SoftmaxGradKernels(t *testing.T) {
	skipNoF32FMA(t)
	r := rand.New(rand.NewPCG(91, 92))
	for _, n := range ewLens {
		k := n &^ 7
		p, ds := ewRand(r, n, 1, false), ewRand(r, n, 3, true)
		full, m := ewGuarded(p, ds)
		if k < n {
			m[0][k], m[1][k] = float32(math.NaN()), float32(math.NaN()) // never read
		}
		var want, mag float64
		for i := range k {
			want += float64(p[i]) * float64(ds[i])
			mag += math.Abs(float64(p[i]) * float64(ds[i]))
		}
		name := fmt.Sprintf("(n=%d)", n)
		if got := f32Dot64(n, ewP(m[0]), ewP(m[1])); got != want && !(math.Abs(got-want) <= float64(k+1)*0x1p-52*mag) && !(got != got && want != want) {
			t.Fatalf("f32Dot64%s = %v, Go loop %v", name, got, want)
		}
		const mean, scale = 0.37, 0.17677669529663687
		f32SoftmaxGradRow(n, ewP(m[1]), ewP(m[0]), mean, scale)
		for i := range n {
			w := float32(-12345)
			switch {
			case i < k:
				w = float32(float64(p[i]) * (float64(ds[i]) - mean) * scale)
			case i == k:
				w = m[1][i] // the NaN put there
			default:
				w = ds[i]
			}
			if !ewSame(m[1][i], w) {
				t.Fatalf("f32SoftmaxGradRow%s: [%d] = %v, Go loop %v", name, i, m[1][i], w)
			}
		}
		for j, f := range full {
			ktGuardsOK(t, fmt.Sprintf("softmax grad kernels%s array %d", name, j), f)
		}
	}
}
