package runtime

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func ktTestBatchGemm[T Float](t *testing.T) {
	r := rand.New(rand.NewPCG(1, 0))
	for _, tc := range []struct{ stacks, m, n, k int }{{1, 3, 4, 5}, {6, 5, 7, 3}, {4, 16, 16, 8}, {3, 1, 9, 2}} {
		for _, tA := range []bool{false, true} {
			for _, tB := range []bool{false, true} {
				for _, acc := range []bool{false, true} {
					name := fmt.Sprintf("%v/tA=%v/tB=%v/acc=%v", tc, tA, tB, acc)
					s, m, n, k := tc.stacks, tc.m, tc.n, tc.k
					a, b := ktRand[T](r, s*m*k, 1), ktRand[T](r, s*k*n, 1)
					full, c := ktBuf[T](s * m * n)
					prior := ktRand[T](r, s*m*n, 1)
					if acc {
						copy(c, prior)
					}
					BatchGemm(tA, tB, s, m, n, k, a, b, c, acc)
					ktGuardsOK(t, name, full)
					want := make([]float64, s*m*n)
					for st := range s {
						for i := range m {
							for j := range n {
								var sum float64
								for p := range k {
									ai := st*m*k + i*k + p
									if tA {
										ai = st*m*k + p*m + i
									}
									bi := st*k*n + p*n + j
									if tB {
										bi = st*k*n + j*k + p
									}
									sum += float64(a[ai]) * float64(b[bi])
								}
								if acc {
									sum += float64(prior[st*m*n+i*n+j])
								}
								want[st*m*n+i*n+j] = sum
							}
						}
					}
					ktClose(t, name, c, want, 64*ktEps[T]()*float64(k))
				}
			}
		}
	}
}

func TestBatchGemm(t *testing.T) { ktRun(t, ktTestBatchGemm[float32], ktTestBatchGemm[float64]) }

func ktTestPermute[T Float](t *testing.T) {
	r := rand.New(rand.NewPCG(2, 0))
	dims := [4]int{2, 3, 4, 5}
	total := 2 * 3 * 4 * 5
	x := ktRand[T](r, total, 1)
	perms := [][4]int{{0, 1, 2, 3}, {0, 2, 1, 3}, {0, 1, 3, 2}, {3, 2, 1, 0}, {1, 3, 0, 2}}
	for _, p := range perms {
		for _, acc := range []bool{false, true} {
			name := fmt.Sprintf("%v/acc=%v", p, acc)
			full, out := ktBuf[T](total)
			prior := ktRand[T](r, total, 1)
			if acc {
				copy(out, prior)
			}
			Permute(out, x, dims, p, acc)
			ktGuardsOK(t, name, full)
			var od [4]int
			for i := range od {
				od[i] = dims[p[i]]
			}
			want := make([]float64, total)
			var idx [4]int // an index into out
			for o := range total {
				rest := o
				for i := 3; i >= 0; i-- {
					idx[i] = rest % od[i]
					rest /= od[i]
				}
				var src [4]int // the same element's index into x
				for i := range 4 {
					src[p[i]] = idx[i]
				}
				xi := ((src[0]*dims[1]+src[1])*dims[2]+src[2])*dims[3] + src[3]
				want[o] = float64(x[xi])
				if acc {
					want[o] += float64(prior[o])
				}
			}
			ktClose(t, name, out, want, 4*ktEps[T]())
		}
	}
}

func TestPermute(t *testing.T) { ktRun(t, ktTestPermute[float32], ktTestPermute[float64]) }

func ktTestCausalMaskSplit[T Float](t *testing.T) {
	r := rand.New(rand.NewPCG(3, 0))
	const mats, tt = 3, 5
	x := ktRand[T](r, mats*tt*tt, 1)
	full, out := ktBuf[T](mats * tt * tt)
	CausalMask(out, x, mats, tt, -7)
	ktGuardsOK(t, "CausalMask", full)
	for m := range mats {
		for i := range tt {
			for j := range tt {
				at := (m*tt+i)*tt + j
				want := x[at]
				if j > i {
					want = -7
				}
				if out[at] != want {
					t.Fatalf("CausalMask [%d][%d][%d] = %v, want %v", m, i, j, out[at], want)
				}
			}
		}
	}
	// In place.
	y := append([]T(nil), x...)
	CausalMask(y, y, mats, tt, 0)
	for at := range y {
		if i, j := at/tt%tt, at%tt; (j > i && y[at] != 0) || (j <= i && y[at] != x[at]) {
			t.Fatalf("CausalMask in place [%d] = %v", at, y[at])
		}
	}

	const rows, cols, parts = 4, 6, 3
	src := ktRand[T](r, rows*cols, 1)
	for index := range parts {
		name := fmt.Sprintf("Split/%d", index)
		full, part := ktBuf[T](rows * cols / parts)
		Split(part, src, rows, cols, parts, index)
		ktGuardsOK(t, name, full)
		for i := range rows {
			for j := range cols / parts {
				if part[i*2+j] != src[i*cols+index*2+j] {
					t.Fatalf("%s [%d][%d] = %v", name, i, j, part[i*2+j])
				}
			}
		}
		for _, acc := range []bool{false, true} {
			name := fmt.Sprintf("SplitGrad/%d/acc=%v", index, acc)
			fullDx, dx := ktBuf[T](rows * cols)
			prior := ktRand[T](r, rows*cols, 1)
			copy(dx, prior)
			SplitGrad(dx, part, rows, cols, parts, index, acc)
			ktGuardsOK(t, name, fullDx)
			for i := range rows {
				for j := range cols {
					var want T
					in := j/2 == index
					switch {
					case in && acc:
						want = prior[i*cols+j] + src[i*cols+j]
					case in:
						want = src[i*cols+j]
					case acc:
						want = prior[i*cols+j]
					}
					if dx[i*cols+j] != want {
						t.Fatalf("%s [%d][%d] = %v, want %v", name, i, j, dx[i*cols+j], want)
					}
				}
			}
		}
	}
}

func TestCausalMaskSplit(t *testing.T) {
	ktRun(t, ktTestCausalMaskSplit[float32], ktTestCausalMaskSplit[float64])
}
