package runtime

// Reductions, broadcasts and transposition. The rank-4 kernels first drop
// size-1 dimensions and merge dimensions that step contiguously (see
// collapseDims), so the innermost loop is as long as possible and is one of
// a few specialized loops chosen once per row.

// ReduceSum sums the compact tensor in, of shape shape (rank ≤ 4, leading
// dimensions padded with 1), into out:
//
//	if !acc: out[:extent] = 0, extent = Π shape[d] over d with outStride[d] != 0
//	for every index i0<shape[0], i1, i2, i3 (in is compact row-major):
//		out[Σ id*outStride[d]] += scale * in[((i0*shape[1]+i1)*shape[2]+i2)*shape[3]+i3]
//
// outStride[d] is 0 on reduced dimensions. out must not alias in.
func ReduceSum[T Float](out, in []T, shape, outStride [4]int, scale T, acc bool) {
	if !acc {
		ext := 1
		for d, s := range shape {
			if outStride[d] != 0 {
				ext *= s
			}
		}
		if ext > 0 {
			clear(fit(out, ext, "ReduceSum", "out"))
		}
	}
	nd, sh, st := collapseDims(shape, [2][4]int{outStride, outStride})
	if nd < 0 {
		return
	}
	os := st[0]
	out = out[:len(out):len(out)] // row slices below check against len
	n := sh[3]
	in = fit(in, sh[0]*sh[1]*sh[2]*n, "ReduceSum", "in")
	o := 0
	for i0 := 0; i0 < sh[0]; i0++ {
		for i1 := 0; i1 < sh[1]; i1++ {
			for i2 := 0; i2 < sh[2]; i2++ {
				oo := i0*os[0] + i1*os[1] + i2*os[2]
				row := in[o : o+n]
				o += n
				switch os[3] {
				case 0:
					// Inner dimension reduced: one blocked sum per row.
					out[oo] += scale * sumBlock(row)
				case 1:
					Axpy(out[oo:oo+n], row, scale)
				default:
					s := os[3]
					_ = out[oo+(n-1)*s]
					for j, v := range row {
						out[oo+j*s] += scale * v
					}
				}
			}
		}
	}
}

// SumRows is the bias gradient: it sums the rows of the rows×cols matrix
// in,
//
//	for c < cols: out[c] = scale * Σ_{r<rows} in[r*cols+c]  // += when acc
//
// out must not alias in.
func SumRows[T Float](out, in []T, rows, cols int, scale T, acc bool) {
	if cols <= 0 {
		return
	}
	out = fit(out, cols, "SumRows", "out")
	if !acc {
		clear(out)
	}
	if rows <= 0 {
		return
	}
	in = fit(in, rows*cols, "SumRows", "in")
	// Row-at-a-time axpy keeps the loops contiguous; for the usual batch
	// sizes the per-element rounding of scale is immaterial. On amd64 the
	// float32 column blocks of 8 are summed by sumRowsAsm, in registers
	// down the rows but in the same order, so with the same rounding.
	k := sumRowsAsm(out, in, rows, cols, scale)
	if k == 0 {
		for r := 0; r < rows; r++ {
			Axpy(out, in[r*cols:r*cols+cols], scale)
		}
		return
	}
	// The last cols%8 columns, down the rows: the same additions in the
	// same order as the axpys.
	tail := out[k:cols]
	for r := 0; r < rows; r++ {
		row := in[r*cols+k : r*cols+cols][:len(tail)]
		for c, v := range row {
			tail[c] += scale * v
		}
	}
}

// SumAll returns Σ_i in[i]. It sums pairwise over blocks of 128 elements,
// each summed with four partial sums, so the rounding error grows with
// log(len) instead of len.
func SumAll[T Float](in []T) T {
	return sumPairwise(in)
}

// sumPairwise recurses on halves down to sumBlock-sized pieces. Recursion
// depth is log2(len/128), and it never allocates.
func sumPairwise[T Float](x []T) T {
	if len(x) <= 128 {
		return sumBlock(x)
	}
	h := len(x) / 2
	h -= h % 8 // keep the blocks' 4-way loop full
	return sumPairwise(x[:h]) + sumPairwise(x[h:])
}

// sumBlock sums x with four independent partial sums, which both hides the
// add latency and shortens each rounding chain by four.
func sumBlock[T Float](x []T) T {
	var s0, s1, s2, s3 T
	for ; len(x) >= 4; x = x[4:] {
		s0 += x[0]
		s1 += x[1]
		s2 += x[2]
		s3 += x[3]
	}
	for _, v := range x {
		s0 += v
	}
	return (s0 + s1) + (s2 + s3)
}

// BroadcastTo expands in over the compact output shape shape (rank ≤ 4,
// leading dimensions padded with 1), inStride being in's element stride
// per output dimension (0 on broadcast dimensions):
//
//	for every index i0<shape[0], i1, i2, i3 (out is compact row-major):
//		out[((i0*shape[1]+i1)*shape[2]+i2)*shape[3]+i3] = scale * in[Σ id*inStride[d]]  // += when acc
//
// out must not alias in.
func BroadcastTo[T Float](out, in []T, shape, inStride [4]int, scale T, acc bool) {
	nd, sh, st := collapseDims(shape, [2][4]int{inStride, inStride})
	if nd < 0 {
		return
	}
	is := st[0]
	n := sh[3]
	out = fit(out, sh[0]*sh[1]*sh[2]*n, "BroadcastTo", "out")
	in = in[:len(in):len(in)] // row slices below check against len
	o := 0
	for i0 := 0; i0 < sh[0]; i0++ {
		for i1 := 0; i1 < sh[1]; i1++ {
			for i2 := 0; i2 < sh[2]; i2++ {
				io := i0*is[0] + i1*is[1] + i2*is[2]
				row := out[o : o+n]
				o += n
				switch s := is[3]; {
				case s == 0:
					v := scale * in[io]
					if acc {
						for j := range row {
							row[j] += v
						}
					} else {
						Fill(row, v)
					}
				case s == 1:
					if acc {
						Axpy(row, in[io:io+n], scale)
					} else {
						Scale(row, in[io:io+n], scale)
					}
				default:
					_ = in[io+(n-1)*s]
					if acc {
						for j := range row {
							row[j] += scale * in[io+j*s]
						}
					} else {
						for j := range row {
							row[j] = scale * in[io+j*s]
						}
					}
				}
			}
		}
	}
}

// transposeBlock is the tile edge of Transpose: a 32×32 tile of float64
// is 8 KiB per side, so source and destination tiles sit in L1 together.
const transposeBlock = 32

// Transpose writes the transpose of the rows×cols matrix in to the
// cols×rows matrix out:
//
//	for r < rows, c < cols: out[c*rows+r] = in[r*cols+c]
//
// It walks square tiles so that neither side strides through memory a
// whole row at a time. out must not alias in.
func Transpose[T Float](out, in []T, rows, cols int) {
	if rows <= 0 || cols <= 0 {
		return
	}
	in = fit(in, rows*cols, "Transpose", "in")
	out = fit(out, rows*cols, "Transpose", "out")
	for r0 := 0; r0 < rows; r0 += transposeBlock {
		r1 := min(r0+transposeBlock, rows)
		for c0 := 0; c0 < cols; c0 += transposeBlock {
			c1 := min(c0+transposeBlock, cols)
			for r := r0; r < r1; r++ {
				src := in[r*cols+c0 : r*cols+c1]
				o := c0*rows + r
				_ = out[o+(len(src)-1)*rows]
				for j, v := range src {
					out[o+j*rows] = v
				}
			}
		}
	}
}
