//go:build !amd64 || noasm

package runtime

// Without assembly kernels the recurrent rows run in Go: each xxxAsm
// function reports 0 columns done.

func rnnSimpleFwdAsm[T Float](a, h, b, bh []T) int              { return 0 }
func rnnSimpleBwdAsm[T Float](dh, h, gh, gx []T) int            { return 0 }
func lstmFwdAsm[T Float](a, hu, b, bh, cp, c, tc, h, y []T) int { return 0 }
func lstmBwdAsm[T Float](dh, dc, a, cp, tc, gh, gx []T) int     { return 0 }
func colSum2Asm[T Float](a, b, m []T, rows, cols int) int       { return 0 }
