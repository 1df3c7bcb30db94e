package runtime

import (
	"math/rand/v2"
	"testing"
)

// TestEmbedding: rows looked up by token, and the gradient's scatter-add
// (repeated tokens get every row) written or added, against direct loops.
func TestEmbedding(t *testing.T) {
	const vocab, dim, rows = 7, 5, 12
	r := rand.New(rand.NewPCG(1, 2))
	table := make([]float64, vocab*dim)
	for i := range table {
		table[i] = r.NormFloat64()
	}
	tokens := []int32{3, 0, 6, 3, 3, 1, 0, 5, 6, 2, 3, 4}
	out := make([]float64, rows*dim+3) // longer: only rows·dim written
	out[rows*dim] = 42
	Embedding(out, table, tokens, rows, dim)
	for i, tok := range tokens {
		for j := range dim {
			if out[i*dim+j] != table[int(tok)*dim+j] {
				t.Fatalf("row %d element %d: %v, want table row %d's %v", i, j, out[i*dim+j], tok, table[int(tok)*dim+j])
			}
		}
	}
	if out[rows*dim] != 42 {
		t.Fatal("Embedding wrote past its rows")
	}
	dy := make([]float64, rows*dim)
	for i := range dy {
		dy[i] = r.NormFloat64()
	}
	for _, acc := range []bool{false, true} {
		dt := make([]float64, vocab*dim)
		want := make([]float64, vocab*dim)
		for i := range dt {
			dt[i] = 100 // cleared unless acc
			if acc {
				want[i] = 100
			}
		}
		for i, tok := range tokens {
			for j := range dim {
				want[int(tok)*dim+j] += dy[i*dim+j]
			}
		}
		EmbeddingGrad(dt, dy, tokens, rows, dim, acc)
		for i := range want {
			if dt[i] != want[i] {
				t.Fatalf("acc=%v: dtable[%d] = %v, want %v", acc, i, dt[i], want[i])
			}
		}
	}
	// Fewer rows than the buffers hold: only those are read.
	dt := make([]float32, vocab*dim)
	EmbeddingGrad(dt, make([]float32, rows*dim), tokens, 0, dim, false)
	defer func() {
		if recover() == nil {
			t.Error("a table whose size is no multiple of dim did not panic")
		}
	}()
	Embedding(out, table[:vocab*dim-1], tokens, rows, dim)
}
