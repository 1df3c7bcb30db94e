// Command asmgen generates the AVX2/FMA and AVX-512 float32 assembly
// kernels of package runtime with avo: the GEMM micro-kernels (gemm_amd64.s,
// gemm_stubs_amd64.go and the Go dispatch gemm_tiles_amd64.go; gemm.go and
// tiles.go here) and the element-wise, optimizer and
// reduction kernels (elementwise_amd64.s and elementwise_stubs_amd64.go,
// elementwise.go here).
//
// It is run by go generate in the runtime directory, once per file pair:
//
//	go run ./internal/asmgen -out gemm_amd64.s -stubs gemm_stubs_amd64.go -tiles gemm_tiles_amd64.go -pkg runtime
//	go run ./internal/asmgen -kernels elementwise -out elementwise_amd64.s -stubs elementwise_stubs_amd64.go -pkg runtime
//
// The kernels are leaf functions without a frame. The GEMM kernels keep
// their tile of C in ymm or zmm registers, which are assigned by hand
// (accumulators from Y0 or Z0 up), and touch memory only inside the
// matrices they are given: partial vectors are read and written with
// VMASKMOVPS (AVX2) or under the opmask K1 (AVX-512).
// The element-wise kernels process whole vectors of 8 elements only and
// leave the last len%8 elements to the Go loops that call them (but for
// f32CopyRuns, which copies whole rows).
package main

import (
	"flag"
	"fmt"
	"os"

	. "github.com/mmcloughlin/avo/build"
)

var (
	kernels = flag.String("kernels", "gemm", "kernel set to generate: gemm or elementwise")
	tiles   = flag.String("tiles", "", "with -kernels gemm, also write the Go tile dispatch to this file")
)

func main() {
	flag.Parse()
	ConstraintExpr("!noasm")
	switch *kernels {
	case "gemm":
		gemmKernels()
		if *tiles != "" {
			if err := writeTiles(*tiles, avx2Bcast, avx512Bcast); err != nil {
				fmt.Fprintln(os.Stderr, "asmgen:", err)
				os.Exit(1)
			}
		}
	case "elementwise":
		elementwiseKernels()
	default:
		fmt.Fprintf(os.Stderr, "asmgen: unknown kernel set %q\n", *kernels)
		os.Exit(2)
	}
	Generate()
}
