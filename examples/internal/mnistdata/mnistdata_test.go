package mnistdata

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// idxImages builds an IDX image file with the given header and pixel bytes.
func idxImages(magic, count, rows, cols uint32, pixels []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, magic)
	b = binary.BigEndian.AppendUint32(b, count)
	b = binary.BigEndian.AppendUint32(b, rows)
	b = binary.BigEndian.AppendUint32(b, cols)
	return append(b, pixels...)
}

// idxLabels builds an IDX label file.
func idxLabels(magic, count uint32, labels []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, magic)
	b = binary.BigEndian.AppendUint32(b, count)
	return append(b, labels...)
}

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func write(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// pixels returns n images; image i has every pixel equal to 255 - i.
func pixels(n int) []byte {
	p := make([]byte, n*Pixels)
	for i := range p {
		p[i] = byte(255 - i/Pixels)
	}
	return p
}

func TestLoadSetGood(t *testing.T) {
	for _, compress := range []bool{true, false} {
		dir := t.TempDir()
		img := idxImages(imageMagic, 3, Rows, Cols, pixels(3))
		lbl := idxLabels(labelMagic, 3, []byte{7, 0, 9})
		if compress {
			img, lbl = gz(t, img), gz(t, lbl)
		}
		s, err := LoadSet(write(t, dir, "img", img), write(t, dir, "lbl", lbl))
		if err != nil {
			t.Fatalf("compress=%v: %v", compress, err)
		}
		if s.N != 3 || len(s.Images) != 3*Pixels || len(s.Labels) != 3 {
			t.Fatalf("compress=%v: N=%d, %d pixels, %d labels", compress, s.N, len(s.Images), len(s.Labels))
		}
		if got := s.Image(0)[0]; got != 1 {
			t.Errorf("pixel 255 scaled to %v, want 1", got)
		}
		if got, want := s.Image(2)[Pixels-1], float32(253)/255; got != want {
			t.Errorf("pixel 253 scaled to %v, want %v", got, want)
		}
		if s.Labels[0] != 7 || s.Labels[1] != 0 || s.Labels[2] != 9 {
			t.Errorf("labels %v, want [7 0 9]", s.Labels)
		}
		if h := s.Head(2); h.N != 2 || len(h.Images) != 2*Pixels || len(h.Labels) != 2 {
			t.Errorf("Head(2): N=%d", h.N)
		}
	}
}

func TestLoadSetErrors(t *testing.T) {
	goodImg := idxImages(imageMagic, 3, Rows, Cols, pixels(3))
	goodLbl := idxLabels(labelMagic, 3, []byte{1, 2, 3})
	zImg := gz(t, goodImg)
	tests := []struct {
		name     string
		img, lbl []byte // written gzipped unless raw
		raw      bool
		wantFile string // "img" or "lbl": the file the error must name
		want     []string
	}{
		{name: "image magic", img: idxImages(1234, 3, Rows, Cols, pixels(3)), lbl: goodLbl,
			wantFile: "img", want: []string{"bad magic number 1234", "want 2051"}},
		{name: "label file as images", img: goodLbl, lbl: goodLbl,
			wantFile: "img", want: []string{"bad magic number 2049", "label file"}},
		{name: "label magic", img: goodImg, lbl: idxLabels(2051, 3, []byte{1, 2, 3}),
			wantFile: "lbl", want: []string{"bad magic number 2051", "want 2049"}},
		{name: "dimensions", img: idxImages(imageMagic, 3, 28, 27, pixels(3)[:3*28*27]), lbl: goodLbl,
			wantFile: "img", want: []string{"28×27", "want 28×28"}},
		{name: "zero images", img: idxImages(imageMagic, 0, Rows, Cols, nil), lbl: goodLbl,
			wantFile: "img", want: []string{"0 images"}},
		{name: "truncated images", img: goodImg[:len(goodImg)-100], lbl: goodLbl,
			wantFile: "img", want: []string{"truncated", "after 2 of the 3 images"}},
		{name: "truncated header", img: goodImg[:10], lbl: goodLbl,
			wantFile: "img", want: []string{"truncated", "10 of the 16 header bytes"}},
		{name: "empty image file", img: nil, lbl: goodLbl, raw: true,
			wantFile: "img", want: []string{"truncated", "0 of the 16 header bytes"}},
		{name: "truncated labels", img: goodImg, lbl: goodLbl[:9],
			wantFile: "lbl", want: []string{"truncated", "after 1 of the 3 labels"}},
		{name: "truncated gzip stream", img: zImg[:len(zImg)/2], lbl: gz(t, goodLbl), raw: true,
			wantFile: "img", want: []string{"truncated"}},
		{name: "truncated gzip trailer", img: zImg[:len(zImg)-4], lbl: gz(t, goodLbl), raw: true,
			wantFile: "img", want: []string{"truncated"}},
		{name: "trailing data", img: append(append([]byte{}, goodImg...), 0), lbl: goodLbl,
			wantFile: "img", want: []string{"unexpected data after the 3 images"}},
		{name: "count mismatch", img: goodImg, lbl: idxLabels(labelMagic, 2, []byte{1, 2}),
			want: []string{"count mismatch", "3 images", "2 labels"}},
		{name: "label out of range", img: goodImg, lbl: idxLabels(labelMagic, 3, []byte{1, 10, 3}),
			wantFile: "lbl", want: []string{"label 1 is 10", "0..9"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			img, lbl := tc.img, tc.lbl
			if !tc.raw {
				img, lbl = gz(t, img), gz(t, lbl)
			}
			imgPath := write(t, dir, "img", img)
			lblPath := write(t, dir, "lbl", lbl)
			s, err := LoadSet(imgPath, lblPath)
			if err == nil {
				t.Fatalf("LoadSet succeeded with N=%d, want an error", s.N)
			}
			msg := err.Error()
			if tc.wantFile != "" && !strings.Contains(msg, filepath.Join(dir, tc.wantFile)+" ") &&
				!strings.Contains(msg, filepath.Join(dir, tc.wantFile)+":") {
				t.Errorf("error does not name file %q: %s", tc.wantFile, msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, TrainImages, gz(t, idxImages(imageMagic, 4, Rows, Cols, pixels(4))))
	write(t, dir, TrainLabels, gz(t, idxLabels(labelMagic, 4, []byte{0, 1, 2, 3})))
	// The test set uncompressed, to check the .gz-less fallback.
	write(t, dir, strings.TrimSuffix(TestImages, ".gz"), idxImages(imageMagic, 2, Rows, Cols, pixels(2)))
	write(t, dir, strings.TrimSuffix(TestLabels, ".gz"), idxLabels(labelMagic, 2, []byte{4, 5}))
	train, test, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if train.N != 4 || test.N != 2 || test.Labels[1] != 5 {
		t.Fatalf("train N=%d, test N=%d, test labels %v", train.N, test.N, test.Labels)
	}

	if err := os.Remove(filepath.Join(dir, TrainLabels)); err != nil {
		t.Fatal(err)
	}
	_, _, err = Load(dir)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, TrainLabels)+" not found") {
		t.Fatalf("missing file: got error %v, want it to name %s", err, TrainLabels)
	}
}

func TestDirEnv(t *testing.T) {
	t.Setenv("MNIST_DIR", "/some/where")
	d, err := Dir()
	if err != nil || d != "/some/where" {
		t.Fatalf("Dir() = %q, %v; want /some/where", d, err)
	}
}
