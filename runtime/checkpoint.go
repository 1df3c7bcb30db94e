package runtime

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"unsafe"
)

// Tensor names a piece of model (or optimizer) memory for checkpointing.
// Data is a view into the model's buffers, so loading a checkpoint writes
// straight into the model; len(Data) must equal the product of Shape.
type Tensor[T Float] struct {
	Name  string
	Shape []int
	Data  []T
	// FileAxes, when set, is the axis order SaveTraining writes and
	// LoadTraining reads: file axis i is tensor axis FileAxes[i]. Generated
	// code sets it on conv kernels, (KH, KW, C, F) in memory, so files hold
	// PyTorch's (F, C, KH, KW). SaveCheckpoint itself ignores it.
	FileAxes []int
}

// Checkpoints use the safetensors format
// (https://huggingface.co/docs/safetensors): an 8-byte little-endian header
// length N, N bytes of JSON header padded with spaces to a multiple of 8,
// then the raw little-endian tensor data. It is simple, safe to parse (no
// code execution, bounded header) and readable by the Python ecosystem.

// maxHeaderSize caps the JSON header we are willing to read, so a corrupt
// or hostile length field cannot make us allocate gigabytes.
const maxHeaderSize = 100 << 20

// metadataKey is the reserved header key holding string metadata.
const metadataKey = "__metadata__"

// ckptHeaderEntry is one tensor's record in the JSON header.
type ckptHeaderEntry struct {
	Dtype       string  `json:"dtype"`
	Shape       []int   `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}

// ckptDtype returns the safetensors dtype name and element size for T.
func ckptDtype[T Float]() (string, int) {
	var z T
	if unsafe.Sizeof(z) == 4 {
		return "F32", 4
	}
	return "F64", 8
}

// ckptNumElements returns the product of shape, or an error for negative
// dimensions or overflow.
func ckptNumElements(shape []int) (int64, error) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension %d in shape %v", d, shape)
		}
		if d != 0 && n > math.MaxInt64/int64(d) {
			return 0, fmt.Errorf("shape %v has too many elements", shape)
		}
		n *= int64(d)
	}
	return n, nil
}

// SaveCheckpoint writes tensors (data in the given order) and string
// metadata to path in safetensors format, with dtype "F32" for float32 and
// "F64" for float64. The JSON header has sorted keys, so the same inputs
// always produce the same bytes.
//
// The write is atomic: data goes to a temporary file in the same directory,
// which is fsynced and then renamed over path, so a crash or error never
// leaves a partial checkpoint and an existing one at path stays intact
// until the new one is complete.
func SaveCheckpoint[T Float](path string, tensors []Tensor[T], meta map[string]string) (err error) {
	dtype, size := ckptDtype[T]()
	header := make(map[string]any, len(tensors)+1)
	var offset int64
	for i, t := range tensors {
		if t.Name == "" {
			return fmt.Errorf("save checkpoint %s: tensor #%d has an empty name; every tensor needs a unique name", path, i)
		}
		if t.Name == metadataKey {
			return fmt.Errorf("save checkpoint %s: tensor name %q is reserved by the safetensors format; rename the tensor", path, t.Name)
		}
		if _, dup := header[t.Name]; dup {
			return fmt.Errorf("save checkpoint %s: tensor name %q appears more than once; tensor names must be unique", path, t.Name)
		}
		n, err := ckptNumElements(t.Shape)
		if err != nil {
			return fmt.Errorf("save checkpoint %s: tensor %q: %v", path, t.Name, err)
		}
		if n != int64(len(t.Data)) {
			return fmt.Errorf("save checkpoint %s: tensor %q: shape %v needs %d elements but Data has %d; the tensor view does not match its shape",
				path, t.Name, t.Shape, n, len(t.Data))
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{} // scalar: encode as [], not null
		}
		end := offset + n*int64(size)
		header[t.Name] = ckptHeaderEntry{Dtype: dtype, Shape: shape, DataOffsets: []int64{offset, end}}
		offset = end
	}
	if len(meta) > 0 {
		header[metadataKey] = meta
	}
	// encoding/json sorts map keys, which makes the header deterministic.
	js, err := json.Marshal(header)
	if err != nil {
		return fmt.Errorf("save checkpoint %s: encoding header: %v", path, err)
	}
	// Pad with spaces so the data section starts 8-byte aligned.
	if pad := (8 - len(js)%8) % 8; pad > 0 {
		js = append(js, bytes.Repeat([]byte{' '}, pad)...)
	}

	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	removeStaleTemps(dir, base)
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("save checkpoint %s: creating temporary file: %w (does the directory exist and is it writable?)", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()

	w := bufio.NewWriterSize(f, 1<<16)
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(js)))
	w.Write(lenBuf[:])
	w.Write(js)
	var elem [8]byte
	for _, t := range tensors {
		for _, x := range t.Data {
			if size == 4 {
				binary.LittleEndian.PutUint32(elem[:4], math.Float32bits(float32(x)))
			} else {
				binary.LittleEndian.PutUint64(elem[:8], math.Float64bits(float64(x)))
			}
			w.Write(elem[:size])
		}
	}
	// bufio.Writer errors are sticky, so checking Flush covers every Write.
	if err = w.Flush(); err != nil {
		return fmt.Errorf("save checkpoint %s: writing: %w", path, err)
	}
	if err = f.Chmod(0o644); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("save checkpoint %s: syncing to disk: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("save checkpoint %s: closing: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save checkpoint %s: renaming temporary file into place: %w", path, err)
	}
	// Make the rename itself durable. Best effort: some systems cannot
	// fsync a directory, and the checkpoint is complete either way.
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// removeStaleTemps removes the temporary files that saves of dir/base
// killed before their rename left behind (.base.tmp-*). Best effort: a
// file that cannot be removed stays, and the save goes on.
func removeStaleTemps(dir, base string) {
	stale, _ := filepath.Glob(filepath.Join(dir, "."+globEscape(base)+".tmp-*"))
	for _, f := range stale {
		os.Remove(f)
	}
}

// globEscape quotes the characters filepath.Match treats as patterns.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// ckptFileTensor is a validated header entry.
type ckptFileTensor struct {
	name       string
	dtype      string
	elemSize   int64
	shape      []int
	begin, end int64
}

// LoadCheckpoint reads the safetensors file at path and fills every tensor
// in into, matched by name, returning the file's metadata.
//
// It verifies everything before writing anything: the header length is sane
// (at most 100 MiB and within the file), the header is valid JSON, every
// requested name exists in the file and every file tensor is requested,
// shapes match exactly, dtypes are F32 or F64 (converted to T), and the
// data offsets are in range, non-overlapping and cover the data section
// exactly (which also catches truncated files). Data is decoded into
// scratch buffers first, so on any error nothing in into is modified.
func LoadCheckpoint[T Float](path string, into []Tensor[T]) (meta map[string]string, err error) {
	return loadCheckpoint(path, into, nil)
}

// loadCheckpoint is LoadCheckpoint that skips the file's tensors for which
// skip returns true (optimizer state when loading parameters only).
func loadCheckpoint[T Float](path string, into []Tensor[T], skip func(name string) bool) (meta map[string]string, err error) {
	fail := func(format string, args ...any) (map[string]string, error) {
		return nil, fmt.Errorf("load checkpoint %s: "+format, append([]any{path}, args...)...)
	}
	const differentModel = "the checkpoint was written for a different model description; regenerate the code for that model or start fresh without the checkpoint"

	// Validate the destination first: these are caller bugs.
	want := make(map[string]int, len(into))
	for i, t := range into {
		if _, dup := want[t.Name]; dup {
			return fail("tensor %q is requested twice; destination names must be unique", t.Name)
		}
		want[t.Name] = i
		n, err := ckptNumElements(t.Shape)
		if err != nil {
			return fail("destination tensor %q: %v", t.Name, err)
		}
		if n != int64(len(t.Data)) {
			return fail("destination tensor %q: shape %v needs %d elements but Data has %d; the tensor view does not match its shape",
				t.Name, t.Shape, n, len(t.Data))
		}
	}

	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load checkpoint: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("load checkpoint: %w", err)
	}
	fileSize := st.Size()
	const corrupt = "the file is corrupt or not a safetensors checkpoint; restore it from a backup or start fresh"
	raw, dataStart, err := readHeader(f, path, fileSize)
	if err != nil {
		return nil, err
	}
	dataLen := fileSize - dataStart

	meta = map[string]string{}
	var entries []ckptFileTensor
	// Visit names in sorted order so the first reported problem is
	// deterministic.
	names := slices.Sorted(maps.Keys(raw))
	for _, name := range names {
		msg := raw[name]
		if name == metadataKey {
			if err := json.Unmarshal(msg, &meta); err != nil {
				return fail("%s must map strings to strings (%v); %s", metadataKey, err, corrupt)
			}
			continue
		}
		var e ckptHeaderEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return fail("tensor %q: invalid header entry (%v); %s", name, err, corrupt)
		}
		var elemSize int64
		switch e.Dtype {
		case "F32":
			elemSize = 4
		case "F64":
			elemSize = 8
		default:
			return fail("tensor %q: dtype %q is not supported (expected F32 or F64); convert the checkpoint to float32/float64", name, e.Dtype)
		}
		if len(e.DataOffsets) != 2 {
			return fail("tensor %q: data_offsets has %d values, expected [begin, end]; %s", name, len(e.DataOffsets), corrupt)
		}
		begin, end := e.DataOffsets[0], e.DataOffsets[1]
		if begin < 0 || end < begin || end > dataLen {
			return fail("tensor %q: data_offsets [%d, %d] out of range for the data section of %d bytes (truncated file?); %s",
				name, begin, end, dataLen, corrupt)
		}
		n, err := ckptNumElements(e.Shape)
		if err != nil {
			return fail("tensor %q: %v; %s", name, err, corrupt)
		}
		if n > (end-begin)/elemSize || n*elemSize != end-begin {
			return fail("tensor %q: shape %v of %s needs %d bytes but data_offsets [%d, %d] span %d; %s",
				name, e.Shape, e.Dtype, n*elemSize, begin, end, end-begin, corrupt)
		}
		entries = append(entries, ckptFileTensor{name: name, dtype: e.Dtype, elemSize: elemSize, shape: e.Shape, begin: begin, end: end})
	}

	// Offsets must tile the data section: sorted by begin, each starts
	// where the previous ended, the first at 0 and the last at the end.
	sort.Slice(entries, func(i, j int) bool {
		if entries[i].begin != entries[j].begin {
			return entries[i].begin < entries[j].begin
		}
		return entries[i].end < entries[j].end
	})
	var pos int64
	prev := ""
	for _, e := range entries {
		switch {
		case e.begin < pos:
			return fail("tensors %q and %q have overlapping data_offsets (%q starts at %d before %q ends at %d); %s",
				prev, e.name, e.name, e.begin, prev, pos, corrupt)
		case e.begin > pos:
			return fail("gap in data section before tensor %q (bytes %d..%d belong to no tensor); %s", e.name, pos, e.begin, corrupt)
		}
		pos, prev = e.end, e.name
	}
	if pos != dataLen {
		return fail("data section is %d bytes but tensors cover only %d; %s", dataLen, pos, corrupt)
	}

	// Match names and shapes against the destination.
	var missing, extra []string
	found := make(map[string]*ckptFileTensor, len(entries))
	for i := range entries {
		e := &entries[i]
		if _, ok := want[e.name]; !ok {
			if skip != nil && skip(e.name) {
				continue
			}
			extra = append(extra, e.name)
			continue
		}
		found[e.name] = e
	}
	for _, t := range into {
		if _, ok := found[t.Name]; !ok {
			missing = append(missing, t.Name)
		}
	}
	if len(missing) > 0 {
		return fail("missing tensor(s) %s; %s", ckptQuoteList(missing), differentModel)
	}
	if len(extra) > 0 {
		slices.Sort(extra)
		return fail("file has tensor(s) %s that the model does not have; %s", ckptQuoteList(extra), differentModel)
	}
	for _, t := range into {
		e := found[t.Name]
		if !slices.Equal(e.shape, t.Shape) {
			return fail("tensor %q: shape %v in file, model expects %v; %s", t.Name, e.shape, t.Shape, differentModel)
		}
	}

	// Decode into scratch, then commit.
	scratch := make([][]T, len(into))
	br := bufio.NewReaderSize(nil, 1<<16)
	for i, t := range into {
		e := found[t.Name]
		dst := make([]T, len(t.Data))
		br.Reset(io.NewSectionReader(f, dataStart+e.begin, e.end-e.begin))
		var elem [8]byte
		for j := range dst {
			if _, err := io.ReadFull(br, elem[:e.elemSize]); err != nil {
				if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
					return fail("tensor %q: file ended early (truncated?); %s", t.Name, corrupt)
				}
				return fail("tensor %q: reading data: %v", t.Name, err)
			}
			if e.elemSize == 4 {
				dst[j] = T(math.Float32frombits(binary.LittleEndian.Uint32(elem[:4])))
			} else {
				dst[j] = T(math.Float64frombits(binary.LittleEndian.Uint64(elem[:8])))
			}
		}
		scratch[i] = dst
	}
	for i, t := range into {
		copy(t.Data, scratch[i])
	}
	return meta, nil
}

// ckptQuoteList formats names as "a", "b", "c" (at most 10, then a count).
func ckptQuoteList(names []string) string {
	const show = 10
	var b strings.Builder
	for i, n := range names {
		if i == show {
			fmt.Fprintf(&b, " and %d more", len(names)-show)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", n)
	}
	return b.String()
}

// readHeader reads and parses the JSON header of the safetensors file f
// (of fileSize bytes) and returns its entries and where the data start.
func readHeader(f *os.File, path string, fileSize int64) (raw map[string]json.RawMessage, dataStart int64, err error) {
	fail := func(format string, args ...any) (map[string]json.RawMessage, int64, error) {
		return nil, 0, fmt.Errorf("load checkpoint %s: "+format, append([]any{path}, args...)...)
	}
	const corrupt = "the file is corrupt or not a safetensors checkpoint; restore it from a backup or start fresh"
	if fileSize < 8 {
		return fail("file is %d bytes, too short for the 8-byte header length (truncated?); %s", fileSize, corrupt)
	}
	var lenBuf [8]byte
	if _, err := io.ReadFull(f, lenBuf[:]); err != nil {
		return fail("reading header length: %v", err)
	}
	hlen := binary.LittleEndian.Uint64(lenBuf[:])
	if hlen > maxHeaderSize {
		return fail("header length %d exceeds the %d-byte limit; %s", hlen, maxHeaderSize, corrupt)
	}
	if int64(hlen) > fileSize-8 {
		return fail("header length %d is larger than the %d bytes after it (truncated file?); %s", hlen, fileSize-8, corrupt)
	}
	hbuf := make([]byte, hlen)
	if _, err := io.ReadFull(f, hbuf); err != nil {
		return fail("reading header: %v", err)
	}
	dataStart = 8 + int64(hlen)

	trimmed := bytes.TrimRight(hbuf, " ")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return fail("header is not a JSON object; %s", corrupt)
	}
	raw = map[string]json.RawMessage{}
	if err := json.Unmarshal(trimmed, &raw); err != nil {
		return fail("header is not valid JSON (%v); %s", err, corrupt)
	}

	return raw, dataStart, nil
}

// ReadMetadata returns the metadata of the safetensors checkpoint at path,
// reading only its header: what a program checks (the model, the run)
// before it loads anything.
func ReadMetadata(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load checkpoint: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("load checkpoint: %w", err)
	}
	raw, _, err := readHeader(f, path, st.Size())
	if err != nil {
		return nil, err
	}
	meta := map[string]string{}
	if msg, ok := raw[metadataKey]; ok {
		if err := json.Unmarshal(msg, &meta); err != nil {
			return nil, fmt.Errorf("load checkpoint %s: %s must map strings to strings (%v); the file is corrupt or not a safetensors checkpoint", path, metadataKey, err)
		}
	}
	return meta, nil
}
