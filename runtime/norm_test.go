package runtime

import (
	"math"
	"math/rand/v2"
	"testing"
)

func randSlice(rng *rand.Rand, n int, lo, hi float64) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = lo + (hi-lo)*rng.Float64()
	}
	return x
}

// batchNormRef is BatchNorm in float64 from its definition.
func batchNormRef(x, gamma, beta []float64, rows, C int, eps float64) (out, mean, variance []float64) {
	out, mean, variance = make([]float64, rows*C), make([]float64, C), make([]float64, C)
	for c := range C {
		for r := range rows {
			mean[c] += x[r*C+c]
		}
		mean[c] /= float64(rows)
		for r := range rows {
			d := x[r*C+c] - mean[c]
			variance[c] += d * d
		}
		variance[c] /= float64(rows)
		for r := range rows {
			out[r*C+c] = (x[r*C+c]-mean[c])/math.Sqrt(variance[c]+eps)*gamma[c] + beta[c]
		}
	}
	return out, mean, variance
}

// TestBatchNormForward against the definition, over more channels than a
// chunk, with a large mean (cancellation) in one channel.
func TestBatchNormForward(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, shape := range [][2]int{{2, 1}, {5, 3}, {37, 70}, {128, 129}} {
		rows, C := shape[0], shape[1]
		x := randSlice(rng, rows*C, -2, 3)
		for r := range rows {
			x[r*C] += 1000 // channel 0: mean 1000, spread 5
		}
		gamma, beta := randSlice(rng, C, 0.5, 2), randSlice(rng, C, -1, 1)
		out, saved := make([]float64, rows*C), make([]float64, BatchNormSavedSize(C))
		BatchNorm(out, saved, x, gamma, beta, rows, C, 1e-5)
		want, mean, variance := batchNormRef(x, gamma, beta, rows, C, 1e-5)
		for i := range out {
			if math.Abs(out[i]-want[i]) > 1e-9*(1+math.Abs(want[i])) {
				t.Fatalf("rows=%d C=%d: out[%d] = %v, want %v", rows, C, i, out[i], want[i])
			}
		}
		for c := range C {
			if math.Abs(saved[c]-mean[c]) > 1e-12*(1+math.Abs(mean[c])) || math.Abs(saved[2*C+c]-variance[c]) > 1e-9*variance[c] ||
				math.Abs(saved[C+c]-1/math.Sqrt(variance[c]+1e-5)) > 1e-9*saved[C+c] {
				t.Fatalf("rows=%d C=%d: channel %d saved %v %v %v, want mean %v var %v", rows, C, c, saved[c], saved[C+c], saved[2*C+c], mean[c], variance[c])
			}
		}
		// float32 agrees with float64 to its precision.
		x32, g32, b32 := to32(x), to32(gamma), to32(beta)
		out32, saved32 := make([]float32, rows*C), make([]float32, 3*C)
		BatchNorm(out32, saved32, x32, g32, b32, rows, C, 1e-5)
		for i := range out32 {
			if math.Abs(float64(out32[i])-want[i]) > 1e-4*(1+math.Abs(want[i])) {
				t.Fatalf("float32 rows=%d C=%d: out[%d] = %v, want %v", rows, C, i, out32[i], want[i])
			}
		}
	}
}

// normLoss is Σ out·w, a loss whose gradient with respect to out is w.
func normLoss(out, w []float64) float64 {
	s := 0.0
	for i := range out {
		s += out[i] * w[i]
	}
	return s
}

// checkFD compares an analytic gradient with central differences of f.
func checkFD(t *testing.T, name string, x, grad []float64, f func() float64) {
	t.Helper()
	for i := range x {
		old := x[i]
		h := 1e-6 * max(1, math.Abs(old))
		x[i] = old + h
		fp := f()
		x[i] = old - h
		fm := f()
		x[i] = old
		fd := (fp - fm) / (2 * h)
		if math.Abs(fd-grad[i]) > 1e-6*(1+math.Abs(fd)) {
			t.Fatalf("%s[%d]: analytic %v, finite difference %v", name, i, grad[i], fd)
		}
	}
}

// TestBatchNormGrad: dx, dgamma and dbeta against central differences of
// Σ BatchNorm(x)·w, and acc adding into the parameter gradients.
func TestBatchNormGrad(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, shape := range [][2]int{{2, 1}, {6, 3}, {9, 70}, {300, 21}} {
		rows, C := shape[0], shape[1]
		x, w := randSlice(rng, rows*C, -1, 2), randSlice(rng, rows*C, -1, 1)
		gamma, beta := randSlice(rng, C, 0.5, 2), randSlice(rng, C, -1, 1)
		out, saved := make([]float64, rows*C), make([]float64, 3*C)
		loss := func() float64 {
			BatchNorm(out, saved, x, gamma, beta, rows, C, 1e-5)
			return normLoss(out, w)
		}
		loss()
		dx, dg, db := make([]float64, rows*C), make([]float64, C), make([]float64, C)
		BatchNormGrad(dx, dg, db, w, x, gamma, saved, rows, C, false)
		checkFD(t, "dx", x, dx, loss)
		checkFD(t, "dgamma", gamma, dg, loss)
		checkFD(t, "dbeta", beta, db, loss)
		// float32 (the AVX kernels on amd64) agrees to its precision.
		out32, saved32 := make([]float32, rows*C), make([]float32, 3*C)
		BatchNorm(out32, saved32, to32(x), to32(gamma), to32(beta), rows, C, 1e-5)
		dx32, dg32, db32 := make([]float32, rows*C), make([]float32, C), make([]float32, C)
		BatchNormGrad(dx32, dg32, db32, to32(w), to32(x), to32(gamma), saved32, rows, C, false)
		for i := range dx {
			if math.Abs(float64(dx32[i])-dx[i]) > 1e-4*(1+math.Abs(dx[i])) {
				t.Fatalf("float32 rows=%d C=%d: dx[%d] = %v, want %v", rows, C, i, dx32[i], dx[i])
			}
		}
		for c := range C {
			if math.Abs(float64(dg32[c])-dg[c]) > 1e-4*(1+math.Abs(dg[c])) || math.Abs(float64(db32[c])-db[c]) > 1e-4*(1+math.Abs(db[c])) {
				t.Fatalf("float32 rows=%d C=%d: channel %d: %v %v, want %v %v", rows, C, c, dg32[c], db32[c], dg[c], db[c])
			}
		}
		loss()
		dg2, db2 := append([]float64(nil), dg...), append([]float64(nil), db...)
		BatchNormGrad(dx, dg2, db2, w, x, gamma, saved, rows, C, true)
		for c := range C {
			if math.Abs(dg2[c]-2*dg[c]) > 1e-12*(1+math.Abs(dg[c])) || math.Abs(db2[c]-2*db[c]) > 1e-12*(1+math.Abs(db[c])) {
				t.Fatalf("acc: channel %d: %v %v, want twice %v %v", c, dg2[c], db2[c], dg[c], db[c])
			}
		}
	}
}

// TestBatchNormUpdateAndInfer: the running statistics follow PyTorch's
// rule (unbiased variance), and inference mode and its fold into a product
// match the definition.
func TestBatchNormUpdateAndInfer(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	rows, C := 10, 4
	rm, rv := make([]float64, C), make([]float64, C)
	for c := range rv {
		rv[c] = 1
	}
	wantM, wantV := append([]float64(nil), rm...), append([]float64(nil), rv...)
	for range 3 {
		x := randSlice(rng, rows*C, -1, 3)
		out, saved := make([]float64, rows*C), make([]float64, 3*C)
		g, b := randSlice(rng, C, 1, 1), randSlice(rng, C, 0, 0)
		BatchNorm(out, saved, x, g, b, rows, C, 1e-5)
		BatchNormUpdate(rm, rv, saved, C, rows, 0.1)
		_, mean, variance := batchNormRef(x, g, b, rows, C, 1e-5)
		for c := range C {
			wantM[c] = 0.9*wantM[c] + 0.1*mean[c]
			wantV[c] = 0.9*wantV[c] + 0.1*variance[c]*float64(rows)/float64(rows-1)
		}
	}
	for c := range C {
		if math.Abs(rm[c]-wantM[c]) > 1e-12 || math.Abs(rv[c]-wantV[c]) > 1e-12 {
			t.Fatalf("channel %d: running %v %v, want %v %v", c, rm[c], rv[c], wantM[c], wantV[c])
		}
	}
	x := randSlice(rng, rows*C, -1, 3)
	gamma, beta := randSlice(rng, C, 0.5, 2), randSlice(rng, C, -1, 1)
	out := make([]float64, rows*C)
	BatchNormInfer(out, x, gamma, beta, rm, rv, rows, C, 1e-5)
	for r := range rows {
		for c := range C {
			want := (x[r*C+c]-rm[c])/math.Sqrt(rv[c]+1e-5)*gamma[c] + beta[c]
			if math.Abs(out[r*C+c]-want) > 1e-12*(1+math.Abs(want)) {
				t.Fatalf("infer [%d,%d] = %v, want %v", r, c, out[r*C+c], want)
			}
		}
	}
	// Fold into a product: (a·w + b) normalized == a·w' + b'.
	K := 3
	a, w, bias := randSlice(rng, rows*K, -1, 1), randSlice(rng, K*C, -1, 1), randSlice(rng, C, -1, 1)
	prod := make([]float64, rows*C)
	Gemm(false, false, rows, C, K, a, w, prod, false)
	BinaryRows(Add, prod, prod, bias, rows, C, false)
	BatchNormInfer(prod, prod, gamma, beta, rm, rv, rows, C, 1e-5)
	for _, b := range [][]float64{bias, nil} {
		wf, bf := make([]float64, K*C), make([]float64, C)
		BatchNormFold(wf, bf, w, b, gamma, beta, rm, rv, K, C, 1e-5)
		folded := make([]float64, rows*C)
		Gemm(false, false, rows, C, K, a, wf, folded, false)
		BinaryRows(Add, folded, folded, bf, rows, C, false)
		want := prod
		if b == nil {
			want = make([]float64, rows*C)
			Gemm(false, false, rows, C, K, a, w, want, false)
			BatchNormInfer(want, want, gamma, beta, rm, rv, rows, C, 1e-5)
		}
		for i := range folded {
			if math.Abs(folded[i]-want[i]) > 1e-12*(1+math.Abs(want[i])) {
				t.Fatalf("fold (bias %v): [%d] = %v, want %v", b != nil, i, folded[i], want[i])
			}
		}
	}
}

// TestLayerNorm: the forward pass against the definition, the gradients
// against central differences.
func TestLayerNorm(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, shape := range [][2]int{{1, 2}, {4, 5}, {7, 130}} {
		rows, C := shape[0], shape[1]
		x, w := randSlice(rng, rows*C, -1, 2), randSlice(rng, rows*C, -1, 1)
		gamma, beta := randSlice(rng, C, 0.5, 2), randSlice(rng, C, -1, 1)
		out, saved := make([]float64, rows*C), make([]float64, LayerNormSavedSize(rows))
		LayerNorm(out, saved, x, gamma, beta, rows, C, 1e-5)
		for r := range rows {
			mu, q := 0.0, 0.0
			for c := range C {
				mu += x[r*C+c]
			}
			mu /= float64(C)
			for c := range C {
				q += (x[r*C+c] - mu) * (x[r*C+c] - mu)
			}
			rs := 1 / math.Sqrt(q/float64(C)+1e-5)
			for c := range C {
				want := (x[r*C+c]-mu)*rs*gamma[c] + beta[c]
				if math.Abs(out[r*C+c]-want) > 1e-12*(1+math.Abs(want)) {
					t.Fatalf("rows=%d C=%d: [%d,%d] = %v, want %v", rows, C, r, c, out[r*C+c], want)
				}
			}
		}
		loss := func() float64 {
			LayerNorm(out, saved, x, gamma, beta, rows, C, 1e-5)
			return normLoss(out, w)
		}
		loss()
		dx, dg, db := make([]float64, rows*C), make([]float64, C), make([]float64, C)
		LayerNormGrad(dx, dg, db, w, x, gamma, saved, rows, C, false)
		checkFD(t, "dx", x, dx, loss)
		checkFD(t, "dgamma", gamma, dg, loss)
		checkFD(t, "dbeta", beta, db, loss)
	}
}

// TestDropout: the fraction dropped is the rate, kept values are scaled
// by 1/(1-rate), the gradient uses the same mask, different keys give
// different masks and the same key the same one.
func TestDropout(t *testing.T) {
	const n = 1 << 16
	x := make([]float32, n)
	for i := range x {
		x[i] = 1
	}
	for _, rate := range []float64{0, 0.1, 0.5, 0.9} {
		out := make([]float32, n)
		key := DropoutKey(1, 7, 2)
		Dropout(out, x, rate, key)
		dropped := 0
		for _, v := range out {
			switch {
			case v == 0:
				dropped++
			case v != float32(1/(1-rate)):
				t.Fatalf("rate %v: kept value %v, want %v", rate, v, 1/(1-rate))
			}
		}
		if got := float64(dropped) / n; math.Abs(got-rate) > 0.01 {
			t.Errorf("rate %v: dropped %.4f of the elements", rate, got)
		}
		dx := make([]float32, n)
		DropoutGrad(dx, x, rate, key)
		for i := range dx {
			if dx[i] != out[i] {
				t.Fatalf("rate %v: gradient mask differs at %d", rate, i)
			}
		}
		other := make([]float32, n)
		Dropout(other, x, rate, DropoutKey(1, 8, 2))
		same := 0
		for i := range other {
			if (other[i] == 0) == (out[i] == 0) {
				same++
			}
		}
		if rate == 0.5 && math.Abs(float64(same)/n-0.5) > 0.01 {
			t.Errorf("masks of two steps agree on %.3f of the elements, want about half", float64(same)/n)
		}
	}
	if DropoutKey(1, 7, 2) == DropoutKey(1, 7, 3) || DropoutKey(1, 7, 2) == DropoutKey(2, 7, 2) {
		t.Error("keys of other layers or seeds collide")
	}
}
