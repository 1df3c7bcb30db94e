//go:build !noasm

package runtime

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// Direct tests of every assembly kernel against the reference loop of its
// doc comment, with its tile of C inside a larger matrix whose other
// elements are NaN sentinels (so that a write outside the tile, through a
// wrong mask, width or row stride, is caught) and with row strides wider
// than the tile.

func skipNoSgemmAsm(t *testing.T) {
	if !haveSgemmAsm {
		t.Skip("CPU lacks AVX2 or FMA: the assembly kernels are not used")
	}
}

// ktTile is a C matrix of rows×ldc sentinels with a tile of mr×w random
// values at row 1, column 2.
type ktTile struct {
	full      []float32
	ldc, off  int
	mr, w     int
	wantTile  []float64
	name      string
	tolerance float64
}

func newKtTile(r *rand.Rand, mr, w int, name string) *ktTile {
	ldc := w + 5
	full := make([]float32, (mr+2)*ldc)
	for i := range full {
		full[i] = math.Float32frombits(ktSentinel32)
	}
	tl := &ktTile{full: full, ldc: ldc, off: ldc + 2, mr: mr, w: w, name: name}
	for i := range mr {
		for j := range w {
			full[tl.off+i*ldc+j] = float32(2*r.Float64() - 1)
		}
	}
	return tl
}

func (tl *ktTile) at(i, j int) *float32 { return &tl.full[tl.off+i*tl.ldc+j] }

// check compares the tile with want and the rest with the sentinel.
func (tl *ktTile) check(t *testing.T, want func(i, j int) float64, tol float64) {
	t.Helper()
	for idx, v := range tl.full {
		i, j := (idx-tl.off+tl.ldc*4)/tl.ldc-4, (idx-tl.off+tl.ldc*4)%tl.ldc
		if i >= 0 && i < tl.mr && j < tl.w {
			if d := math.Abs(float64(v) - want(i, j)); !(d <= tol) {
				t.Fatalf("%s: C[%d,%d] = %v, want %v", tl.name, i, j, v, want(i, j))
			}
		} else if math.Float32bits(v) != ktSentinel32 {
			t.Fatalf("%s: element %d outside the tile overwritten with %v", tl.name, idx, v)
		}
	}
}

func TestSgemmBcastKernels(t *testing.T) {
	skipNoSgemmAsm(t)
	r := rand.New(rand.NewPCG(9, 10))
	type variant struct{ w, kind, nm int } // kind: 0 x16, 1 x8, 2 x8m, 3 x16m
	var variants []variant
	variants = append(variants, variant{16, 0, 0}, variant{8, 1, 0})
	for nm := 1; nm <= 8; nm++ {
		variants = append(variants, variant{nm, 2, nm}, variant{8 + nm, 3, nm})
	}
	for mr := 1; mr <= 6; mr++ {
		for _, v := range variants {
			for _, k := range []int{1, 2, 3, 17} {
				for _, trans := range []bool{false, true} {
					for _, acc := range []bool{false, true} {
						// A: NN-like rows of lda (rs = lda, ks = 1) or
						// TN-like (rs = 1, ks = lda), lda wider than needed.
						var rs, ks int
						var a []float32
						if trans {
							rs, ks = 1, mr+2
							a = ktRand[float32](r, k*ks, 1)
						} else {
							rs, ks = k+3, 1
							a = ktRand[float32](r, mr*rs, 1)
						}
						ldb := v.w + 3
						b := ktRand[float32](r, k*ldb, 1)
						name := fmt.Sprintf("sgemmBcast mr=%d w=%d kind=%d k=%d trans=%v acc=%v", mr, v.w, v.kind, k, trans, acc)
						tl := newKtTile(r, mr, v.w, name)
						init := make([]float64, mr*v.w)
						for i := range mr {
							for j := range v.w {
								init[i*v.w+j] = float64(*tl.at(i, j))
							}
						}
						kern := [4][7]func(k int, a *float32, rs, ks int, b *float32, ldb int, c *float32, ldc, nm int, acc bool){
							{nil, sgemmBcast1x16, sgemmBcast2x16, sgemmBcast3x16, sgemmBcast4x16, sgemmBcast5x16, sgemmBcast6x16},
							{nil, sgemmBcast1x8, sgemmBcast2x8, sgemmBcast3x8, sgemmBcast4x8, sgemmBcast5x8, sgemmBcast6x8},
							{nil, sgemmBcast1x8m, sgemmBcast2x8m, sgemmBcast3x8m, sgemmBcast4x8m, sgemmBcast5x8m, sgemmBcast6x8m},
							{nil, sgemmBcast1x16m, sgemmBcast2x16m, sgemmBcast3x16m, sgemmBcast4x16m, sgemmBcast5x16m, sgemmBcast6x16m},
						}[v.kind][mr]
						kern(k, &a[0], rs, ks, &b[0], ldb, tl.at(0, 0), tl.ldc, v.nm, acc)
						tl.check(t, func(i, j int) float64 {
							var s float64
							if acc {
								s = init[i*v.w+j]
							}
							for p := range k {
								s += float64(a[i*rs+p*ks]) * float64(b[p*ldb+j])
							}
							return s
						}, ktGemmTol[float32](k+1))
					}
				}
			}
		}
	}
}

func TestSgemmDotKernels(t *testing.T) {
	skipNoSgemmAsm(t)
	r := rand.New(rand.NewPCG(11, 12))
	kern := [4][5]func(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, acc bool){
		1: {nil, sgemmDot1x1, sgemmDot1x2, sgemmDot1x3, sgemmDot1x4},
		2: {nil, sgemmDot2x1, sgemmDot2x2, sgemmDot2x3, sgemmDot2x4},
		3: {nil, sgemmDot3x1, sgemmDot3x2, sgemmDot3x3, sgemmDot3x4},
	}
	for mr := 1; mr <= 3; mr++ {
		for nr := 1; nr <= 4; nr++ {
			for _, k := range gemmEdgeSizes {
				for _, acc := range []bool{false, true} {
					lda, ldb := k+1, k+2
					a := ktRand[float32](r, mr*lda, 1)
					b := ktRand[float32](r, nr*ldb, 1)
					name := fmt.Sprintf("sgemmDot%dx%d k=%d acc=%v", mr, nr, k, acc)
					tl := newKtTile(r, mr, nr, name)
					init := make([]float64, mr*nr)
					for i := range mr {
						for j := range nr {
							init[i*nr+j] = float64(*tl.at(i, j))
						}
					}
					kern[mr][nr](k, &a[0], lda, &b[0], ldb, tl.at(0, 0), tl.ldc, acc)
					tl.check(t, func(i, j int) float64 {
						var s float64
						if acc {
							s = init[i*nr+j]
						}
						for p := range k {
							s += float64(a[i*lda+p]) * float64(b[j*ldb+p])
						}
						return s
					}, ktGemmTol[float32](k+1))
				}
			}
		}
	}
}

func TestSgemmPeakFMA(t *testing.T) {
	skipNoSgemmAsm(t)
	if f := fmaPeakLoop(1000); f != 192000 {
		t.Fatalf("fmaPeakLoop(1000) = %v flops, want 192000", f)
	}
}

// TestSgemmPackLarge forces the large packed path of the broadcast kernels
// on every shape and checks it against the reference loop and, bit for
// bit, against the unpacked path.
func TestSgemmPackLarge(t *testing.T) {
	skipNoSgemmAsm(t)
	r := rand.New(rand.NewPCG(9, 10))
	shapes := [][3]int{ // m, n, k
		{1, 1, 1}, {7, 17, 33}, {13, 65, 300}, {32, 128, 784}, {32, 784, 128},
		{197, 37, 600}, {100, 3, 257}, {200, 130, 513}, {64, 10, 32}, {32, 64, 10},
	}
	for _, tA := range []bool{false, true} {
		for _, tB := range []bool{false, true} {
			for _, acc := range []bool{false, true} {
				for _, s := range shapes {
					m, n, k := s[0], s[1], s[2]
					a := ktRand[float32](r, m*k, 1)
					b := ktRand[float32](r, k*n, 1)
					c0 := ktRand[float32](r, m*n, 1)
					c1 := append([]float32(nil), c0...)
					Gemm(tA, tB, m, n, k, a, b, c0, acc)
					oldKN, oldM := sgemmPackMinKN, sgemmPackMinM
					sgemmPackMinKN, sgemmPackMinM = 0, 0
					Gemm(tA, tB, m, n, k, a, b, c1, acc)
					sgemmPackMinKN, sgemmPackMinM = oldKN, oldM
					for i := range c0 {
						if math.Float32bits(c0[i]) != math.Float32bits(c1[i]) {
							t.Fatalf("tA=%v tB=%v acc=%v %v: packed C[%d] = %v, unpacked %v", tA, tB, acc, s, i, c1[i], c0[i])
						}
					}
					ktGemmCase[float32](t, r, tA, tB, acc, m, n, k)
				}
			}
		}
	}
	// A large product takes the packed path by default.
	if !sgemmPackLarge(1024, 1024, 1024) || sgemmPackLarge(64, 32, 128) {
		t.Error("sgemmPackLarge thresholds")
	}
}
