//go:build !amd64 || noasm

package runtime

// Without assembly kernels every element-wise loop, SumRows and the
// optimizer steps run in Go: each xxxAsm function reports 0 elements done.

func unaryAsm[T Float](op UnaryOp, out, x []T) int                          { return 0 }
func unaryGradAsm[T Float](op UnaryOp, dx, y, dy []T) int                   { return 0 }
func binaryAsm[T Float](op BinaryOp, out, a, b []T) int                     { return 0 }
func binaryScalarAsm[T Float](op BinaryOp, out, a []T, s T, l bool) int     { return 0 }
func binaryRowsAsm[T Float](op BinaryOp, o, a, b []T, r, c int, l bool) int { return 0 }
func axpyAsm[T Float](y, x []T, alpha T) int                                { return 0 }
func fillAsm[T Float](out []T, v T) int                                     { return 0 }
func maxAbsAsm[T Float](x []T) (bits uint32, k int)                         { return 0, 0 }
func sumRowsAsm[T Float](out, in []T, rows, cols int, scale T) int          { return 0 }
func adamAsm[T Float](p, g, m, v []T, c *adamCoef[T]) int                   { return 0 }
func sgdAsm[T Float](p, g []T, lr, wd T) int                                { return 0 }
func sgdMomentumAsm[T Float](p, g, b []T, lr, wd, mu T, n bool) int         { return 0 }
func expSumAsm[T Float](out, x []T, scale, shift float64) (int, float64)    { return 0, 0 }
func sumExpAsm[T Float](x []T, scale, shift float64) (int, float64)         { return 0, 0 }
func expSumAll[T Float]() bool                                              { return false }
func softmaxRowAsm[T Float](x []T, scale float64) bool                      { return false }
func softmaxGradRowAllAsm[T Float](ds, p []T, scale float64) bool           { return false }
func layerNormAsm[T Float](out, saved, x, gamma, beta []T, rows, C int, eps T) bool {
	return false
}
func layerNormGradAsm[T Float](dx, dgamma, dbeta, dy, x, gamma, saved []T, rows, C int) bool {
	return false
}

// elementwiseAsmUsed reports whether float32 element-wise kernels run on
// assembly.
func elementwiseAsmUsed() bool { return false }

func colSumsAsm[T Float](acc, x []T, rows, w, ld int) int                         { return 0 }
func colSumSqDevAsm[T Float](acc, mean, x []T, rows, w, ld int) int               { return 0 }
func colDotDevAsm[T Float](sdy, sdyx, mean, dy, x []T, rows, w, ld int) int       { return 0 }
func colScaleShiftDevAsm[T Float](out, x, mean, k, beta []T, rows, w, ld int) int { return 0 }
func colNormGradAsm[T Float](dx, dy, x, mean, a, b, c []T, rows, w, ld int) int   { return 0 }

func rowMaxAsm[T Float](x []T, m T) (int, T)                        { return 0, m }
func sum64Asm[T Float](x []T) (int, float64)                        { return 0, 0 }
func sumSqDev64Asm[T Float](x []T, mu float64) (int, float64)       { return 0, 0 }
func layerNormRowAsm[T Float](out, x, gamma, beta []T, m, rt T) int { return 0 }
func layerNormGradSumsAsm[T Float](dy, g, x []T, m, rs T) (int, float64, float64) {
	return 0, 0, 0
}
func layerNormGradRowAsm[T Float](dx, dg, db, dy, x, g []T, m, rs, ma, mb T) int { return 0 }
func dot64Asm[T Float](a, b []T) (int, float64)                                  { return 0, 0 }
func softmaxGradRowAsm[T Float](ds, p []T, mean, scale float64) int              { return 0 }
