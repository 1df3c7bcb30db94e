//go:build !amd64 || noasm

package runtime

// Without assembly the convolution and pooling loops run in Go.

func copyRunsAsm[T Float](runs, n int, dst []T, ds int, src []T, ss int) bool { return false }
func maxPoolAsm[T Float](o []T, am []int32, x []T, base, rows, cols, rs, cs int) int {
	return 0
}
