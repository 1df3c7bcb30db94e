package runtime

import "fmt"

// Embedding copies row tokens[i] of table (a vocabulary of rows of dim
// values) into row i of out, for the first rows token ids. The ids must be
// in [0, len(table)/dim): the generated Forward checks them (CheckLabels)
// before any kernel runs.
func Embedding[T Float](out, table []T, tokens []int32, rows, dim int) {
	checkEmbedding("Embedding", len(out), len(table), len(tokens), rows, dim)
	for i, t := range tokens[:rows] {
		copy(out[i*dim:(i+1)*dim], table[int(t)*dim:(int(t)+1)*dim])
	}
}

// EmbeddingGrad adds row i of dy into row tokens[i] of dtable for the first
// rows positions (a scatter-add: a token that occurs twice gets both rows,
// in position order), after clearing dtable unless acc.
func EmbeddingGrad[T Float](dtable, dy []T, tokens []int32, rows, dim int, acc bool) {
	checkEmbedding("EmbeddingGrad", len(dy), len(dtable), len(tokens), rows, dim)
	if !acc {
		clear(dtable)
	}
	for i, t := range tokens[:rows] {
		Axpy(dtable[int(t)*dim:(int(t)+1)*dim], dy[i*dim:(i+1)*dim], 1)
	}
}

func checkEmbedding(kernel string, rowsLen, tableLen, tokensLen, rows, dim int) {
	if dim < 1 || rows < 0 || rowsLen < rows*dim || tokensLen < rows || tableLen%dim != 0 {
		panic(fmt.Sprintf("runtime.%s: %d positions of %d values in buffers of %d, %d token ids and a table of %d: a generator bug", kernel, rows, dim, rowsLen, tokensLen, tableLen))
	}
}
