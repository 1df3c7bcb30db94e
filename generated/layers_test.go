package generated

import (
	"os"
	"strings"
	"testing"
)

// TestMLPBatch128MatchesMLP: mlpb128 is the seed's MLP at another batch
// size for the benchmarks, so its layers must stay those of mlp.
func TestMLPBatch128MatchesMLP(t *testing.T) {
	layers := func(path string) string {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var keep []string
		for _, l := range strings.Split(string(src), "\n") {
			if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "model ") || strings.HasPrefix(l, "batch ") {
				continue
			}
			keep = append(keep, l)
		}
		return strings.Join(keep, "\n")
	}
	if a, b := layers("mlp/mlp.bpg"), layers("mlpb128/mlpb128.bpg"); a != b {
		t.Errorf("mlpb128/mlpb128.bpg declares other layers than mlp/mlp.bpg:\n%s\nvs\n%s", b, a)
	}
}
