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

func skipNoSgemmAsm(t testing.TB) {
	if !haveSgemmAsm {
		t.Skip("CPU lacks AVX2 or FMA: the assembly kernels are not used")
	}
}

// ktTile is a C matrix of rows×ldc sentinels with a tile of mr×w random
// values at row 1, column 2.
type ktTile struct {
	full     []float32
	ldc, off int
	mr, w    int
	name     string
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

// sgemmFamilies lists the broadcast kernel families this CPU runs: AVX2,
// and AVX-512 where it exists.
func sgemmFamilies() []bool {
	if haveSgemmAVX512 {
		return []bool{false, true}
	}
	return []bool{false}
}

// forEachSgemmFamily runs f as a subtest once per broadcast kernel family
// this CPU runs.
func forEachSgemmFamily(t *testing.T, f func(t *testing.T)) {
	old := sgemmAVX512
	defer func() { sgemmAVX512 = old }()
	for _, z := range sgemmFamilies() {
		sgemmAVX512 = z
		t.Run(map[bool]string{false: "avx2", true: "avx512"}[z], f)
	}
}

// forEachRowFamily runs f as a subtest with the AVX2 row kernels (softmax
// exponentials and layer norm rows on whole vectors of 8, the tail in Go)
// and, where the CPU has AVX-512, with the AVX-512 ones (all the
// elements, a layer norm's rows in one call).
func forEachRowFamily(t *testing.T, f func(t *testing.T)) {
	defer func(v bool) { haveF32Z = v }(haveF32Z)
	for _, z := range []bool{false, true} {
		if z && !cpuF32Z {
			continue
		}
		haveF32Z = z
		t.Run(map[bool]string{false: "avx2", true: "avx512"}[z], f)
	}
}

// TestSgemmBcastKernels tests every broadcast kernel of both families,
// through the generated tile dispatch, on every tile shape.
func TestSgemmBcastKernels(t *testing.T) {
	skipNoSgemmAsm(t)
	r := rand.New(rand.NewPCG(9, 10))
	for _, z := range sgemmFamilies() {
		tile := sgemmBcastTile
		maxMR, maxW := 6, 16
		if z {
			tile = sgemmZBcastTile
			maxMR, maxW = 12, 32
		}
		for mr := 1; mr <= maxMR; mr++ {
			for w := 1; w <= maxW; w++ {
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
							ldb := w + 3
							b := ktRand[float32](r, k*ldb, 1)
							name := fmt.Sprintf("avx512=%v mr=%d w=%d k=%d trans=%v acc=%v", z, mr, w, k, trans, acc)
							tl := newKtTile(r, mr, w, name)
							init := make([]float64, mr*w)
							for i := range mr {
								for j := range w {
									init[i*w+j] = float64(*tl.at(i, j))
								}
							}
							tile(mr, w, k, &a[0], rs, ks, b, ldb, tl.full[tl.off:], tl.ldc, acc)
							tl.check(t, func(i, j int) float64 {
								var s float64
								if acc {
									s = init[i*w+j]
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
}

// TestSgemmWideKernels tests the wide AVX2 tiles of one and two rows
// (sgemmBcast1x64, sgemmBcast2x32) through sgemmWideTile, full and
// partial panels, against the reference loop, with the tile inside NaN
// sentinels.
func TestSgemmWideKernels(t *testing.T) {
	skipNoSgemmAsm(t)
	r := rand.New(rand.NewPCG(21, 22))
	for _, mr := range []int{1, 2} {
		wide := 64 / mr
		for _, w := range []int{1, 8, 16, 17, wide - 1, wide} {
			for _, k := range []int{1, 2, 3, 17} {
				for _, trans := range []bool{false, true} {
					for _, acc := range []bool{false, true} {
						var rs, ks int
						var a []float32
						if trans {
							rs, ks = 1, mr+2
							a = ktRand[float32](r, k*ks, 1)
						} else {
							rs, ks = k+3, 1
							a = ktRand[float32](r, mr*rs, 1)
						}
						ldb := w + 3
						b := ktRand[float32](r, k*ldb, 1)
						name := fmt.Sprintf("wide mr=%d w=%d k=%d trans=%v acc=%v", mr, w, k, trans, acc)
						tl := newKtTile(r, mr, w, name)
						init := make([]float64, mr*w)
						for i := range mr {
							for j := range w {
								init[i*w+j] = float64(*tl.at(i, j))
							}
						}
						sgemmWideTile(mr, w, wide, k, &a[0], rs, ks, b, ldb, tl.full[tl.off:], tl.ldc, acc)
						tl.check(t, func(i, j int) float64 {
							var s float64
							if acc {
								s = init[i*w+j]
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

// TestSgemmFewRowsAgree checks that a product of one or two rows (the
// wide tiles with the AVX2 kernels) gives, bit for bit, the rows that a
// product of more rows (the 6×16 tiles) gives for the same rows of op(A):
// a decoder's one-position step and Infer over the whole sequence then
// compute the same logits.
func TestSgemmFewRowsAgree(t *testing.T) { forEachSgemmFamily(t, testSgemmFewRowsAgree) }

func testSgemmFewRowsAgree(t *testing.T) {
	skipNoSgemmAsm(t)
	r := rand.New(rand.NewPCG(23, 24))
	const bigM = 9
	for _, n := range []int{1, 16, 17, 32, 63, 64, 65, 128, 200, 384} {
		for _, k := range []int{1, 3, 129, 600} {
			for _, tA := range []bool{false, true} {
				for _, tB := range []bool{false, true} {
					a := ktRand[float32](r, bigM*k, 1)
					b := ktRand[float32](r, k*n, 1)
					c := ktRand[float32](r, bigM*n, 1)
					full := append([]float32(nil), c...)
					Gemm(tA, tB, bigM, n, k, a, b, full, true)
					for _, m := range []int{1, 2} {
						i0 := bigM - m - 1
						// The rows i0..i0+m-1 of op(A) as an m×k problem.
						sa := make([]float32, m*k)
						for i := range m {
							for p := range k {
								if tA {
									sa[p*m+i] = a[p*bigM+i0+i]
								} else {
									sa[i*k+p] = a[(i0+i)*k+p]
								}
							}
						}
						sc := append([]float32(nil), c[i0*n:(i0+m)*n]...)
						Gemm(tA, tB, m, n, k, sa, b, sc, true)
						for i, v := range sc {
							if want := full[i0*n+i]; math.Float32bits(v) != math.Float32bits(want) {
								t.Fatalf("tA=%v tB=%v m=%d n=%d k=%d: C[%d,%d] = %v, rows of a %d-row product give %v", tA, tB, m, n, k, i/n, i%n, v, bigM, want)
							}
						}
						ktGemmCase[float32](t, r, tA, tB, true, m, n, k)
					}
				}
			}
		}
	}
}

// TestSgemmFamiliesAgree checks that the AVX2 and AVX-512 kernels give
// bit-identical products (every element of C is the same chain of FMAs),
// packed and in place, on shapes that cut both tile sizes.
func TestSgemmFamiliesAgree(t *testing.T) {
	skipNoSgemmAsm(t)
	if !haveSgemmAVX512 {
		t.Skip("CPU lacks AVX-512: one kernel family only")
	}
	defer func(old bool) { sgemmAVX512 = old }(sgemmAVX512)
	r := rand.New(rand.NewPCG(13, 14))
	shapes := [][3]int{{1, 1, 1}, {13, 33, 17}, {25, 65, 300}, {32, 10, 64}, {64, 10, 32}, {32, 64, 10}, {97, 47, 513}, {256, 130, 256}}
	for _, s := range shapes {
		m, n, k := s[0], s[1], s[2]
		for _, tA := range []bool{false, true} {
			for _, tB := range []bool{false, true} {
				a := ktRand[float32](r, m*k, 1)
				b := ktRand[float32](r, k*n, 1)
				c0 := ktRand[float32](r, m*n, 1)
				c1 := append([]float32(nil), c0...)
				sgemmAVX512 = false
				Gemm(tA, tB, m, n, k, a, b, c0, true)
				sgemmAVX512 = true
				Gemm(tA, tB, m, n, k, a, b, c1, true)
				for i := range c0 {
					if math.Float32bits(c0[i]) != math.Float32bits(c1[i]) {
						t.Fatalf("tA=%v tB=%v %v: C[%d] = %v with AVX-512, %v with AVX2", tA, tB, s, i, c1[i], c0[i])
					}
				}
			}
		}
	}
}

func TestSgemmPeakFMA(t *testing.T) {
	skipNoSgemmAsm(t)
	if f := fmaPeakLoop(1000, false); f != 192000 {
		t.Fatalf("fmaPeakLoop(1000, false) = %v flops, want 192000", f)
	}
	want := 0.0
	if haveSgemmAVX512 {
		want = 384000
	}
	if f := fmaPeakLoop(1000, true); f != want {
		t.Fatalf("fmaPeakLoop(1000, true) = %v flops, want %v", f, want)
	}
}

// TestSgemmPackLarge forces the large packed path of the broadcast kernels
// on every shape and checks it against the reference loop and, bit for
// bit, against the unpacked path.
func TestSgemmPackLarge(t *testing.T) {
	skipNoSgemmAsm(t)
	forEachSgemmFamily(t, testSgemmPackLarge)
}

func testSgemmPackLarge(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	shapes := [][3]int{ // m, n, k
		{1, 1, 1}, {7, 17, 33}, {13, 65, 300}, {32, 128, 784}, {32, 784, 128},
		{197, 37, 600}, {100, 3, 257}, {200, 130, 513}, {64, 10, 32}, {32, 64, 10},
		// k (NN, NT) a multiple of 512: A is packed too (TN and TT always).
		{13, 70, 512}, {512, 19, 33}, {37, 45, 1024},
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

// TestSgemmPackT8 checks the 8×8-block Bᵀ packing against its definition
// for every remainder, both panel widths, and source rows longer than the
// packed part: every packed element in place, the columns of the panel
// past the eight and everything around it untouched (NaN sentinels).
func TestSgemmPackT8(t *testing.T) {
	if !haveSgemmAsm {
		t.Skip("no AVX2/FMA")
	}
	r := rand.New(rand.NewPCG(21, 22))
	for _, nr := range []int{16, 32} {
		for kl := 1; kl <= 27; kl++ {
			k := kl + 3 // rows of B longer than the k block
			src := ktRand[float32](r, 8*k, 1)
			full, dst := ktBuf[float32](kl * nr)
			for i := range dst {
				dst[i] = math.Float32frombits(ktSentinel32)
			}
			sgemmPackT8(kl/8, kl%8, &src[0], k, &dst[0], nr)
			name := fmt.Sprintf("nr=%d kl=%d", nr, kl)
			ktGuardsOK(t, name, full)
			for p := range kl {
				for c := range nr {
					got := dst[p*nr+c]
					if c < 8 {
						if got != src[c*k+p] {
							t.Fatalf("%s: dst[%d*nr+%d] = %v, want src[%d*k+%d] = %v", name, p, c, got, c, p, src[c*k+p])
						}
					} else if math.Float32bits(got) != ktSentinel32 {
						t.Fatalf("%s: dst[%d*nr+%d] past the eight columns written: %v", name, p, c, got)
					}
				}
			}
		}
	}
}

// TestSgemmPackN checks the panel copies of B against their definition,
// with source rows longer than the panels and guard bands around dst.
func TestSgemmPackN(t *testing.T) {
	if !haveSgemmAsm {
		t.Skip("no AVX2/FMA")
	}
	r := rand.New(rand.NewPCG(23, 24))
	for _, nr := range []int{16, 32} {
		for kl := 1; kl <= 5; kl++ {
			for panels := 1; panels <= 3; panels++ {
				ld := panels*nr + 7
				src := ktRand[float32](r, kl*ld, 1)
				full, dst := ktBuf[float32](panels * kl * nr)
				if nr == 32 {
					sgemmPackN32(kl, panels, &src[0], ld, &dst[0])
				} else {
					sgemmPackN16(kl, panels, &src[0], ld, &dst[0])
				}
				name := fmt.Sprintf("nr=%d kl=%d panels=%d", nr, kl, panels)
				ktGuardsOK(t, name, full)
				for q := range panels {
					for p := range kl {
						for c := range nr {
							if got, want := dst[q*kl*nr+p*nr+c], src[p*ld+q*nr+c]; got != want {
								t.Fatalf("%s: panel %d row %d column %d = %v, want %v", name, q, p, c, got, want)
							}
						}
					}
				}
			}
		}
	}
}

// BenchmarkSgemmTileL1 runs the largest broadcast tile of each family
// (12×32 on AVX-512, 6×16 on AVX2) over a k of 256 with A, B and C in
// L1, A packed and read in place: the kernels' own ceiling, as a share
// of the FMA peak measured in the same run.
func BenchmarkSgemmTileL1(b *testing.B) {
	skipNoSgemmAsm(b)
	peak := benchFMAPeak()
	r := rand.New(rand.NewPCG(3, 4))
	const k = 256
	for _, z := range sgemmFamilies() {
		for _, packed := range []bool{false, true} {
			name := map[bool]string{false: "avx2", true: "avx512"}[z] + map[bool]string{false: "/inplaceA", true: "/packedA"}[packed]
			b.Run(name, func(b *testing.B) {
				defer func(v bool) { sgemmAVX512 = v }(sgemmAVX512)
				sgemmAVX512 = z
				mr, nr := sgemmTile()
				a := ktRand[float32](r, mr*k, 1)
				bm := ktRand[float32](r, k*nr, 1)
				c := make([]float32, mr*nr)
				rs, ks := k, 1
				if packed {
					rs, ks = 1, mr
				}
				for b.Loop() {
					sgemmTileKernel(mr, nr, k, &a[0], rs, ks, bm, nr, c, nr, true)
				}
				if peak > 0 {
					flops := 2 * float64(mr*nr*k) * float64(b.N)
					b.ReportMetric(100*flops/b.Elapsed().Seconds()/1e9/peak, "%peak")
				}
			})
		}
	}
}
