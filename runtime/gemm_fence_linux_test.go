//go:build linux

package runtime

import (
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"syscall"
	"testing"
	"unsafe"
)

// ktFenced is an mmap'ed region with an inaccessible page on either side,
// for matrices that start right after the first or end right before the
// second: any read or write outside them faults.
type ktFenced struct {
	mem  []byte
	page int
}

func newKtFenced(t *testing.T, maxElems int) *ktFenced {
	page := syscall.Getpagesize()
	data := (4*maxElems + page - 1) / page * page
	mem, err := syscall.Mmap(-1, 0, data+2*page, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatalf("mmap: %v", err)
	}
	for _, g := range [][]byte{mem[:page], mem[page+data:]} {
		if err := syscall.Mprotect(g, syscall.PROT_NONE); err != nil {
			t.Fatalf("mprotect: %v", err)
		}
	}
	t.Cleanup(func() { syscall.Munmap(mem) })
	return &ktFenced{mem: mem, page: page}
}

// slice returns n float32 against the front fence (atEnd false) or the back
// fence, filled from src.
func (f *ktFenced) slice(n int, atEnd bool, src []float32) []float32 {
	start := f.page
	if atEnd {
		start = len(f.mem) - f.page - 4*n
	}
	s := unsafe.Slice((*float32)(unsafe.Pointer(&f.mem[start])), n)
	copy(s, src)
	return s
}

// TestGemmFenced runs Gemm with A, B and C placed against inaccessible
// pages, so that the masked loads and stores at the matrices' edges are
// checked to stay inside them, with every kernel family.
func TestGemmFenced(t *testing.T) { forEachSgemmFamily(t, testGemmFenced) }

func testGemmFenced(t *testing.T) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	r := rand.New(rand.NewPCG(13, 14))
	shapes := [][3]int{{32, 10, 64}, {32, 64, 10}, {64, 10, 32}, {7, 13, 9}, {1, 1, 1}, {5, 3, 3}, {3, 5, 7}, {13, 17, 35}, {97, 19, 260},
		// One and two rows: the wide AVX2 tiles, full and partial panels.
		{1, 130, 190}, {1, 64, 390}, {2, 100, 65}, {2, 32, 7}}
	const maxElems = 97 * 260
	fa, fb, fc := newKtFenced(t, maxElems), newKtFenced(t, maxElems), newKtFenced(t, maxElems)
	for _, s := range shapes {
		m, n, k := s[0], s[1], s[2]
		for _, atEnd := range []bool{false, true} {
			for _, tA := range []bool{false, true} {
				for _, tB := range []bool{false, true} {
					a := fa.slice(m*k, atEnd, ktRand[float32](r, m*k, 1))
					b := fb.slice(k*n, atEnd, ktRand[float32](r, k*n, 1))
					init := ktRand[float32](r, m*n, 1)
					c := fc.slice(m*n, atEnd, init)
					want := append([]float32(nil), init...)
					name := fmt.Sprintf("fenced Gemm(tA=%v,tB=%v,m=%d,n=%d,k=%d,atEnd=%v)", tA, tB, m, n, k, atEnd)
					func() {
						defer func() {
							if e := recover(); e != nil {
								t.Fatalf("%s: %v", name, e)
							}
						}()
						Gemm(tA, tB, m, n, k, a, b, c, true)
					}()
					GemmNaive(tA, tB, m, n, k, a, b, want, true)
					ktAbsClose(t, name, c, want, ktGemmTol[float32](k))
				}
			}
		}
	}
}
