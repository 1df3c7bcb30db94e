package runtime

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func ckptTensors[T Float]() []Tensor[T] {
	return []Tensor[T]{
		{Name: "dense1.w", Shape: []int{2, 3}, Data: []T{1, -2, 3.5, 0, 1e-7, -1e7}},
		{Name: "dense1.b", Shape: []int{3}, Data: []T{0.25, -0.125, 9}},
		{Name: "scalar", Shape: []int{}, Data: []T{42}},
		{Name: "empty", Shape: []int{0, 4}, Data: []T{}},
	}
}

// ckptZeroed returns tensors with the same names and shapes as src, data zeroed.
func ckptZeroed[T, U Float](src []Tensor[U]) []Tensor[T] {
	out := make([]Tensor[T], len(src))
	for i, t := range src {
		out[i] = Tensor[T]{Name: t.Name, Shape: slices.Clone(t.Shape), Data: make([]T, len(t.Data))}
	}
	return out
}

func TestCheckpointRoundTrip(t *testing.T) {
	dir := t.TempDir()
	meta := map[string]string{"step": "17", "model": "mlp"}

	t.Run("F32", func(t *testing.T) {
		path := filepath.Join(dir, "f32.safetensors")
		src := ckptTensors[float32]()
		if err := SaveCheckpoint(path, src, meta); err != nil {
			t.Fatal(err)
		}
		dst := ckptZeroed[float32](src)
		slices.Reverse(dst) // order of into does not matter
		got, err := LoadCheckpoint(path, dst)
		if err != nil {
			t.Fatal(err)
		}
		slices.Reverse(dst)
		for i := range src {
			if !slices.Equal(src[i].Data, dst[i].Data) {
				t.Errorf("%s: got %v want %v", src[i].Name, dst[i].Data, src[i].Data)
			}
		}
		if len(got) != 2 || got["step"] != "17" || got["model"] != "mlp" {
			t.Errorf("meta = %v", got)
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
			t.Errorf("stat: %v %v", fi, err)
		}
	})
	t.Run("F64", func(t *testing.T) {
		path := filepath.Join(dir, "f64.safetensors")
		src := ckptTensors[float64]()
		src[0].Data[0] = math.Pi
		src[0].Data[1] = math.Inf(-1)
		if err := SaveCheckpoint(path, src, nil); err != nil {
			t.Fatal(err)
		}
		dst := ckptZeroed[float64](src)
		got, err := LoadCheckpoint(path, dst)
		if err != nil {
			t.Fatal(err)
		}
		for i := range src {
			if !slices.Equal(src[i].Data, dst[i].Data) {
				t.Errorf("%s: got %v want %v", src[i].Name, dst[i].Data, src[i].Data)
			}
		}
		if len(got) != 0 {
			t.Errorf("meta = %v, want empty", got)
		}
	})
	t.Run("F64FileIntoFloat32", func(t *testing.T) {
		path := filepath.Join(dir, "cross64.safetensors")
		src := ckptTensors[float64]()
		src[0].Data[0] = math.Pi
		if err := SaveCheckpoint(path, src, nil); err != nil {
			t.Fatal(err)
		}
		dst := ckptZeroed[float32](src)
		if _, err := LoadCheckpoint(path, dst); err != nil {
			t.Fatal(err)
		}
		for i := range src {
			for j := range src[i].Data {
				if dst[i].Data[j] != float32(src[i].Data[j]) {
					t.Errorf("%s[%d]: got %v want %v", src[i].Name, j, dst[i].Data[j], float32(src[i].Data[j]))
				}
			}
		}
	})
	t.Run("F32FileIntoFloat64", func(t *testing.T) {
		path := filepath.Join(dir, "cross32.safetensors")
		src := ckptTensors[float32]()
		if err := SaveCheckpoint(path, src, nil); err != nil {
			t.Fatal(err)
		}
		dst := ckptZeroed[float64](src)
		if _, err := LoadCheckpoint(path, dst); err != nil {
			t.Fatal(err)
		}
		for i := range src {
			for j := range src[i].Data {
				if dst[i].Data[j] != float64(src[i].Data[j]) {
					t.Errorf("%s[%d]: got %v want %v", src[i].Name, j, dst[i].Data[j], src[i].Data[j])
				}
			}
		}
	})
	t.Run("OptimizerState", func(t *testing.T) {
		path := filepath.Join(dir, "opt.safetensors")
		a := NewAdam[float32](4, 0.1)
		p := []float32{1, 2, 3, 4}
		a.Step(p, []float32{1, -1, 2, -2})
		all := append([]Tensor[float32]{{Name: "p", Shape: []int{4}, Data: p}}, a.State()...)
		if err := SaveCheckpoint(path, all, map[string]string{"adam.t": "1"}); err != nil {
			t.Fatal(err)
		}
		b := NewAdam[float32](4, 0.1)
		q := make([]float32, 4)
		if _, err := LoadCheckpoint(path, append([]Tensor[float32]{{Name: "p", Shape: []int{4}, Data: q}}, b.State()...)); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(q, p) || !slices.Equal(a.M, b.M) || !slices.Equal(a.V, b.V) {
			t.Fatalf("state mismatch: %v %v %v %v", q, p, a.M, b.M)
		}
	})
}

// TestCheckpointGoldenBytes checks the encoding byte for byte against the
// safetensors spec, computed by hand:
//
//	tensors (in order): "b" F32 [2] = {1, -2}; "a" F32 [] = {0.5}; meta {"step":"3"}
//	data section: b at [0,8), a at [8,12)
//	header JSON (sorted keys, 135 bytes) + 1 space of padding = 136 = 0x88
//	1.0f = 0x3f800000, -2.0f = 0xc0000000, 0.5f = 0x3f000000, little-endian
func TestCheckpointGoldenBytes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "golden.safetensors")
	err := SaveCheckpoint(path, []Tensor[float32]{
		{Name: "b", Shape: []int{2}, Data: []float32{1, -2}},
		{Name: "a", Shape: nil, Data: []float32{0.5}},
	}, map[string]string{"step": "3"})
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	want = append(want, 0x88, 0, 0, 0, 0, 0, 0, 0)
	want = append(want, `{"__metadata__":{"step":"3"},"a":{"dtype":"F32","shape":[],"data_offsets":[8,12]},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} `...)
	want = append(want,
		0x00, 0x00, 0x80, 0x3f, // b[0] = 1
		0x00, 0x00, 0x00, 0xc0, // b[1] = -2
		0x00, 0x00, 0x00, 0x3f, // a = 0.5
	)
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("bytes differ:\n got %q\nwant %q", got, want)
	}
	// Same inputs, same bytes.
	path2 := path + "2"
	SaveCheckpoint(path2, []Tensor[float32]{
		{Name: "b", Shape: []int{2}, Data: []float32{1, -2}},
		{Name: "a", Shape: nil, Data: []float32{0.5}},
	}, map[string]string{"step": "3"})
	if got2, _ := os.ReadFile(path2); !bytes.Equal(got2, want) {
		t.Fatal("second save differs")
	}
}

func TestCheckpointAtomicity(t *testing.T) {
	dir := t.TempDir()
	src := ckptTensors[float32]()

	// Non-existent directory: error, nothing created.
	missing := filepath.Join(dir, "nope", "x.safetensors")
	err := SaveCheckpoint(missing, src, nil)
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("save into missing dir: err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "nope")); !os.IsNotExist(err) {
		t.Fatalf("something was created: %v", err)
	}

	// An existing checkpoint survives failed saves.
	path := filepath.Join(dir, "ckpt.safetensors")
	if err := SaveCheckpoint(path, src, map[string]string{"v": "1"}); err != nil {
		t.Fatal(err)
	}
	orig, _ := os.ReadFile(path)
	bad := ckptTensors[float32]()
	bad[1].Data = bad[1].Data[:2] // shape says 3
	if err := SaveCheckpoint(path, bad, nil); err == nil || !strings.Contains(err.Error(), `"dense1.b"`) {
		t.Fatalf("bad tensor: err = %v", err)
	}
	dup := append(ckptTensors[float32](), Tensor[float32]{Name: "scalar", Shape: []int{}, Data: []float32{1}})
	if err := SaveCheckpoint(path, dup, nil); err == nil || !strings.Contains(err.Error(), "more than once") {
		t.Fatalf("duplicate: err = %v", err)
	}
	if err := SaveCheckpoint(path, []Tensor[float32]{{Name: "__metadata__", Shape: []int{}, Data: []float32{1}}}, nil); err == nil {
		t.Fatal("reserved name accepted")
	}
	// Failure at the rename step: the target is a directory.
	sub := filepath.Join(dir, "isdir")
	os.Mkdir(sub, 0o755)
	if err := SaveCheckpoint(sub, src, nil); err == nil {
		t.Fatal("saving over a directory succeeded")
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, orig) {
		t.Fatal("existing checkpoint was modified by failed saves")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != "ckpt.safetensors" && e.Name() != "isdir" {
			t.Errorf("leftover file %q", e.Name())
		}
	}
	// And a successful overwrite replaces it completely.
	if err := SaveCheckpoint(path, src[:1], nil); err != nil {
		t.Fatal(err)
	}
	dst := ckptZeroed[float32](src[:1])
	if _, err := LoadCheckpoint(path, dst); err != nil {
		t.Fatal(err)
	}
}

// TestCheckpointStaleTemps: the temporary files of saves killed before
// their rename (here made by hand) are removed by the next save of the same
// path, and only those: another checkpoint's temporary file stays.
func TestCheckpointStaleTemps(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "run[1].safetensors") // glob characters in the name
	for _, name := range []string{".run[1].safetensors.tmp-123", ".run[1].safetensors.tmp-456", ".other.safetensors.tmp-789"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("half a checkpoint"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := SaveCheckpoint(path, ckptTensors[float32](), nil); err != nil {
		t.Fatal(err)
	}
	var left []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if want := []string{".other.safetensors.tmp-789", "run[1].safetensors"}; !slices.Equal(left, want) {
		t.Errorf("files after the save: %v, want %v", left, want)
	}
}

// ckptRaw builds a safetensors file from a header string and data bytes;
// hlen < 0 means "use the real header length".
func ckptRaw(header string, hlen int64, data []byte) []byte {
	if hlen < 0 {
		hlen = int64(len(header))
	}
	b := binary.LittleEndian.AppendUint64(nil, uint64(hlen))
	b = append(b, header...)
	return append(b, data...)
}

func ckptF32Bytes(xs ...float32) []byte {
	var b []byte
	for _, x := range xs {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

func TestCheckpointCorruptFiles(t *testing.T) {
	dir := t.TempDir()
	d8 := ckptF32Bytes(1, 2)
	d12 := ckptF32Bytes(1, 2, 3)
	okA := `"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}`
	cases := []struct {
		name string
		file []byte
		into []string // tensor names requested, each shape [2]
		want string   // substring of the error
	}{
		{"valid control", ckptRaw(`{`+okA+`}`, -1, d8), []string{"a"}, ""},
		{"too short for length", []byte{1, 2, 3, 4, 5}, []string{"a"}, "too short"},
		{"header length beyond file", ckptRaw(`{`+okA+`}`, 1000, d8), []string{"a"}, "larger than"},
		{"absurd header length", ckptRaw(`{`+okA+`}`, 1<<40, d8), []string{"a"}, "exceeds"},
		{"invalid JSON", ckptRaw(`{"a":{"dtype":`, -1, d8), []string{"a"}, "not valid JSON"},
		{"not an object", ckptRaw(`[1,2]   `, -1, d8), []string{"a"}, "not a JSON object"},
		{"wrong dtype", ckptRaw(`{"a":{"dtype":"I8","shape":[2],"data_offsets":[0,8]}}`, -1, d8), []string{"a"}, `dtype "I8"`},
		{"shape mismatch", ckptRaw(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}}`, -1, d12), []string{"a"}, "shape [3] in file, model expects [2]"},
		{"missing tensor", ckptRaw(`{`+okA+`}`, -1, d8), []string{"a", "b"}, `missing tensor(s) "b"`},
		{"extra tensor", ckptRaw(`{`+okA+`,"zz":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`, -1, d12), []string{"a"}, `"zz" that the model does not have`},
		{"offsets out of range", ckptRaw(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,800]}}`, -1, d8), []string{"a"}, "out of range"},
		{"negative offset", ckptRaw(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}`, -1, d8), []string{"a"}, "out of range"},
		{"offsets not a pair", ckptRaw(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}}`, -1, d8), []string{"a"}, "data_offsets has 1 values"},
		{"offsets disagree with shape", ckptRaw(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, -1, d8), []string{"a", "b"}, "needs 8 bytes"},
		{"overlapping offsets", ckptRaw(`{`+okA+`,"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, -1, d12), []string{"a", "b"}, "overlapping"},
		{"gap", ckptRaw(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, -1, d12), []string{"a"}, "gap"},
		{"trailing bytes", ckptRaw(`{`+okA+`}`, -1, d12), []string{"a"}, "cover only 8"},
		{"truncated data", ckptRaw(`{`+okA+`}`, -1, d8[:5]), []string{"a"}, "truncated"},
		{"bad metadata", ckptRaw(`{"__metadata__":{"k":1},`+okA+`}`, -1, d8), []string{"a"}, "__metadata__"},
		{"bad entry", ckptRaw(`{"a":{"dtype":"F32","shape":"x","data_offsets":[0,8]}}`, -1, d8), []string{"a"}, "invalid header entry"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_"))
			if err := os.WriteFile(path, c.file, 0o644); err != nil {
				t.Fatal(err)
			}
			var into []Tensor[float32]
			for _, n := range c.into {
				into = append(into, Tensor[float32]{Name: n, Shape: []int{2}, Data: []float32{-7, -7}})
			}
			_, err := LoadCheckpoint(path, into)
			if c.want == "" {
				if err != nil {
					t.Fatalf("control case failed: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want one mentioning %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not mention %q and the path", err, c.want)
			}
			t.Log(err)
			for _, tt := range into {
				if !slices.Equal(tt.Data, []float32{-7, -7}) {
					t.Fatalf("destination %q modified on error: %v", tt.Name, tt.Data)
				}
			}
		})
	}
}

func TestCheckpointLoadErrorsNameTheFix(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.safetensors")
	if err := SaveCheckpoint(path, ckptTensors[float32](), nil); err != nil {
		t.Fatal(err)
	}
	into := ckptZeroed[float32](ckptTensors[float32]())
	into[0].Shape = []int{3, 2}
	_, err := LoadCheckpoint(path, into)
	if err == nil || !strings.Contains(err.Error(), `"dense1.w"`) || !strings.Contains(err.Error(), "different model description") {
		t.Fatalf("err = %v", err)
	}
	if _, err := LoadCheckpoint(filepath.Join(t.TempDir(), "absent"), into); err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: err = %v", err)
	}
	// Destination whose Data does not match its Shape is rejected up front.
	into = ckptZeroed[float32](ckptTensors[float32]())
	into[1].Data = into[1].Data[:1]
	if _, err := LoadCheckpoint(path, into); err == nil || !strings.Contains(err.Error(), "does not match its shape") {
		t.Fatalf("err = %v", err)
	}
}
