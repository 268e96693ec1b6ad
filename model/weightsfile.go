// Package model: weightsfile.go reads and writes the NLIW container, a
// snappy-framed binary file of named float32 tensors with a JSON header, used
// both for shipped model weights (*.nliw.sz) and for training checkpoints.
package model

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/golang/snappy"
)

// Layout of the uncompressed stream (the whole of it is wrapped in snappy's
// framed stream format, which adds a CRC-32C per chunk of at most 64 KiB):
//
//	offset 0   4 bytes   magic "NLIW"
//	offset 4   uint32 LE format version (WeightsFormatVersion)
//	offset 8   uint32 LE length L of the JSON header
//	offset 12  L bytes   JSON header (weightsHeader)
//	12+L       tensor data, little-endian, in table order, contiguous
//
// Nothing may follow the tensor data.

// WeightsFormatVersion is the NLIW container version this build writes and
// the newest it can read.
const WeightsFormatVersion = 1

// WeightsFileExt is the conventional file name extension of NLIW files.
const WeightsFileExt = ".nliw.sz"

// Values of WeightsFile.Kind.
const (
	// WeightsKindWeights marks a file of model weights (shipped or exported).
	WeightsKindWeights = "weights"
	// WeightsKindCheckpoint marks a training checkpoint (weights plus, usually,
	// optimiser state and an Extra object with the step and RNG state).
	WeightsKindCheckpoint = "checkpoint"
)

// DType is the on-disk element type of a tensor. Reading always yields
// float32, whatever the stored DType.
type DType string

// Supported DType values.
const (
	// DTypeF32 stores IEEE-754 binary32 values; round trips are bit-exact.
	DTypeF32 DType = "f32"
	// DTypeF16 stores IEEE-754 binary16 ("half") values, rounded to nearest,
	// ties to even, with subnormals. Measured on 1e5 samples of N(0,1) (test
	// TestWeightsRoundTripF16, seed 42): max abs error 1.87e-3 (bound: half
	// an ulp, 2^-9 = 1.95e-3 for |x| in [4,8)); max rel error 4.87e-4 for
	// |x| >= 2^-14 (bound 2^-11 = 4.88e-4); the 4 samples below 2^-14 (half
	// subnormals) had abs error <= 2.76e-8 (bound 2^-25 = 2.98e-8). Finite
	// values beyond ±65504 (that round to ±Inf) are rejected at write.
	DTypeF16 DType = "f16"
)

// Limits applied to every file read (and write), so that hostile input cannot
// make a reader allocate more than it has checked.
const (
	weightsMagic          = "NLIW"
	weightsFixedHeaderLen = 12
	weightsMaxHeaderBytes = 64 << 20 // JSON header
	weightsMaxTensorBytes = 1 << 30  // all tensor data as stored
	weightsChunkBytes     = 64 << 10 // unit of conversion/hashing/progress
	weightsInitialAlloc   = 1 << 20  // elements allocated before data arrives
	// With the compressed size known, tensors may be allocated in full up
	// front while their float32 bytes stay within this multiple of it.
	weightsUpfrontFactor = 64
)

// NamedTensor is one tensor of a WeightsFile: a name unique in its file, a
// shape whose dimensions are all > 0 (at least one dimension; use [1] for a
// scalar), and row-major data of exactly the shape's product of elements.
type NamedTensor struct {
	Name  string
	Shape []int
	Data  []float32
}

// Provenance records where a WeightsFile came from. Only Seed is always
// written; the other fields are omitted when empty.
type Provenance struct {
	Split     string `json:"split,omitempty"`
	Steps     int    `json:"steps,omitempty"`
	Seed      uint64 `json:"seed"`
	GitCommit string `json:"git_commit,omitempty"`
	Created   string `json:"created,omitempty"`
	Command   string `json:"command,omitempty"`
}

// WeightsFile is the in-memory form of an NLIW file.
type WeightsFile struct {
	// Kind is WeightsKindWeights ("weights") or WeightsKindCheckpoint
	// ("checkpoint").
	Kind string
	// Config is the model configuration, a JSON object owned by the caller.
	// Empty means {}.
	Config json.RawMessage
	// Provenance says how the tensors were produced.
	Provenance Provenance
	// Extra is optional caller JSON (e.g. optimiser step, RNG state); nil
	// when absent.
	Extra json.RawMessage
	// Tensors are the tensors in file order.
	Tensors []NamedTensor
	// SHA256 is the lowercase hex SHA-256 of all tensor bytes as stored
	// (so it depends on the DType written). EncodeWeights sets it;
	// DecodeWeights fills it in after verifying it.
	SHA256 string
}

// weightsHeader is the JSON header as stored.
type weightsHeader struct {
	Kind       string               `json:"kind"`
	Config     json.RawMessage      `json:"config"`
	Tensors    []weightsTensorEntry `json:"tensors"`
	Provenance Provenance           `json:"provenance"`
	SHA256     string               `json:"sha256"`
	Extra      json.RawMessage      `json:"extra,omitempty"`
}

// weightsTensorEntry is one row of the header's tensor table. Offset is in
// bytes from the start of the tensor data.
type weightsTensorEntry struct {
	Name   string `json:"name"`
	Shape  []int  `json:"shape"`
	DType  DType  `json:"dtype"`
	Offset int64  `json:"offset"`
	NBytes int64  `json:"nbytes"`
}

// Tensor returns the tensor called name and true, or a zero NamedTensor and
// false when the file has none of that name.
func (w *WeightsFile) Tensor(name string) (NamedTensor, bool) {
	if w == nil {
		return NamedTensor{}, false
	}
	for _, t := range w.Tensors {
		if t.Name == name {
			return t, true
		}
	}
	return NamedTensor{}, false
}

// weightsDTypeSize returns the stored bytes per element of d.
func weightsDTypeSize(d DType) (int64, bool) {
	switch d {
	case DTypeF32:
		return 4, true
	case DTypeF16:
		return 2, true
	}
	return 0, false
}

func weightsValidKind(k string) bool {
	return k == WeightsKindWeights || k == WeightsKindCheckpoint
}

// weightsShapeElems returns the number of elements of shape, refusing
// non-positive dimensions and products above maxElems (checked before each
// multiplication, so it cannot overflow).
func weightsShapeElems(shape []int, maxElems int64) (int64, error) {
	if len(shape) == 0 {
		return 0, errors.New("empty shape (use [1] for a scalar)")
	}
	n := int64(1)
	for i, d := range shape {
		if d <= 0 {
			return 0, fmt.Errorf("shape %v: dimension %d is %d, must be > 0", shape, i, d)
		}
		if int64(d) > maxElems/n {
			return 0, fmt.Errorf("shape %v is too large (more than %d elements)", shape, maxElems)
		}
		n *= int64(d)
	}
	return n, nil
}

// isJSONObject reports whether raw is one valid JSON object.
func isJSONObject(raw []byte) bool {
	t := bytes.TrimSpace(raw)
	return len(t) > 0 && t[0] == '{' && json.Valid(t)
}

// EncodeWeights writes f to dst as a snappy-framed NLIW stream, storing every
// tensor as dtype. It computes the offsets and the SHA-256 of the tensor
// bytes, and sets f.SHA256 on success.
//
// Config is stored compacted. f must not change during the call. f is
// validated completely before anything is written, so on a validation error
// dst is untouched. It rejects: an unknown kind or dtype, a Config that
// is not a JSON object, an Extra that is not valid JSON, empty or duplicate
// tensor names, shapes with a dimension <= 0 or whose product differs from
// len(Data), more than 1 GiB of tensor data, NaN or ±Inf values (naming the
// tensor and element), and, for DTypeF16, finite values that overflow to
// ±Inf in half precision.
func EncodeWeights(dst io.Writer, f *WeightsFile, dtype DType) error {
	if f == nil {
		return errors.New("encode weights: nil WeightsFile")
	}
	size, ok := weightsDTypeSize(dtype)
	if !ok {
		return fmt.Errorf("encode weights: unknown dtype %q (want %q or %q)", dtype, DTypeF32, DTypeF16)
	}
	if !weightsValidKind(f.Kind) {
		return fmt.Errorf("encode weights: unknown kind %q (want %q or %q)", f.Kind, WeightsKindWeights, WeightsKindCheckpoint)
	}
	config := f.Config
	if len(bytes.TrimSpace(config)) == 0 {
		config = json.RawMessage("{}")
	} else if !isJSONObject(config) {
		return errors.New("encode weights: config is not a valid JSON object")
	}
	extra := f.Extra
	if len(bytes.TrimSpace(extra)) == 0 {
		extra = nil
	} else if !json.Valid(extra) {
		return errors.New("encode weights: extra is not valid JSON")
	}

	// Table: names, shapes, offsets.
	entries := make([]weightsTensorEntry, len(f.Tensors))
	seen := make(map[string]int, len(f.Tensors))
	var total int64
	for i, t := range f.Tensors {
		if t.Name == "" {
			return fmt.Errorf("encode weights: tensor %d has an empty name", i)
		}
		if j, dup := seen[t.Name]; dup {
			return fmt.Errorf("encode weights: duplicate tensor name %q (tensors %d and %d)", t.Name, j, i)
		}
		seen[t.Name] = i
		elems, err := weightsShapeElems(t.Shape, weightsMaxTensorBytes/size)
		if err != nil {
			return fmt.Errorf("encode weights: tensor %q: %v", t.Name, err)
		}
		if int64(len(t.Data)) != elems {
			return fmt.Errorf("encode weights: tensor %q has %d values but shape %v needs %d", t.Name, len(t.Data), t.Shape, elems)
		}
		nbytes := elems * size
		if total+nbytes > weightsMaxTensorBytes {
			return fmt.Errorf("encode weights: tensor data exceeds the %d-byte limit at tensor %q", int64(weightsMaxTensorBytes), t.Name)
		}
		entries[i] = weightsTensorEntry{
			Name:   t.Name,
			Shape:  append([]int(nil), t.Shape...),
			DType:  dtype,
			Offset: total,
			NBytes: nbytes,
		}
		total += nbytes
	}

	// Pass 1: convert, check values and hash, writing nothing.
	buf := make([]byte, 0, weightsChunkBytes)
	h := sha256.New()
	for _, t := range f.Tensors {
		if err := weightsEachChunk(t, dtype, buf, func(b []byte) error {
			h.Write(b)
			return nil
		}); err != nil {
			return fmt.Errorf("encode weights: %w", err)
		}
	}
	sum := hex.EncodeToString(h.Sum(nil))

	hdr, err := json.Marshal(weightsHeader{
		Kind:       f.Kind,
		Config:     config,
		Tensors:    entries,
		Provenance: f.Provenance,
		SHA256:     sum,
		Extra:      extra,
	})
	if err != nil {
		return fmt.Errorf("encode weights: JSON header: %w", err)
	}
	if len(hdr) > weightsMaxHeaderBytes {
		return fmt.Errorf("encode weights: JSON header is %d bytes, over the %d-byte limit", len(hdr), weightsMaxHeaderBytes)
	}

	// Pass 2: write.
	zw := snappy.NewBufferedWriter(dst)
	var fixed [weightsFixedHeaderLen]byte
	copy(fixed[:4], weightsMagic)
	binary.LittleEndian.PutUint32(fixed[4:8], WeightsFormatVersion)
	binary.LittleEndian.PutUint32(fixed[8:12], uint32(len(hdr)))
	if _, err := zw.Write(fixed[:]); err != nil {
		return fmt.Errorf("encode weights: %w", err)
	}
	if _, err := zw.Write(hdr); err != nil {
		return fmt.Errorf("encode weights: %w", err)
	}
	for _, t := range f.Tensors {
		if err := weightsEachChunk(t, dtype, buf, func(b []byte) error {
			_, err := zw.Write(b)
			return err
		}); err != nil {
			return fmt.Errorf("encode weights: %w", err)
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("encode weights: %w", err)
	}
	f.SHA256 = sum
	return nil
}

// weightsEachChunk converts t.Data to dtype bytes in chunks of at most
// weightsChunkBytes (reusing buf) and passes each to fn. It fails on NaN,
// ±Inf, or (for f16) values that overflow half precision.
func weightsEachChunk(t NamedTensor, dtype DType, buf []byte, fn func([]byte) error) error {
	data := t.Data
	switch dtype {
	case DTypeF32:
		per := weightsChunkBytes / 4
		for base := 0; base < len(data); base += per {
			part := data[base:min(base+per, len(data))]
			b := buf[:0]
			for i, v := range part {
				u := math.Float32bits(v)
				if u&0x7f800000 == 0x7f800000 {
					return fmt.Errorf("tensor %q element %d is %v (NaN/Inf not allowed)", t.Name, base+i, v)
				}
				b = binary.LittleEndian.AppendUint32(b, u)
			}
			if err := fn(b); err != nil {
				return err
			}
		}
	case DTypeF16:
		per := weightsChunkBytes / 2
		for base := 0; base < len(data); base += per {
			part := data[base:min(base+per, len(data))]
			b := buf[:0]
			for i, v := range part {
				if math.Float32bits(v)&0x7f800000 == 0x7f800000 {
					return fmt.Errorf("tensor %q element %d is %v (NaN/Inf not allowed)", t.Name, base+i, v)
				}
				hb := halfBitsFromFloat32(v)
				if hb&0x7c00 == 0x7c00 {
					return fmt.Errorf("tensor %q element %d (%v) overflows float16 (max ±65504)", t.Name, base+i, v)
				}
				b = binary.LittleEndian.AppendUint16(b, hb)
			}
			if err := fn(b); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("unknown dtype %q", dtype)
	}
	return nil
}

// DecodeWeights reads one snappy-framed NLIW stream from src, to its end, and
// returns the file. name labels error messages (e.g. the path).
//
// It returns an error, never panics, on: a corrupt or truncated snappy stream
// (CRC-32C per chunk), bad magic, a format version newer than
// WeightsFormatVersion (or 0), a JSON header longer than 64 MiB or invalid, an
// unknown kind or dtype, a missing config object, empty or duplicate tensor
// names, bad shapes, offsets or nbytes inconsistent with the shapes and dtypes
// (tensors must be contiguous in table order), more than 1 GiB of tensor
// data, a SHA-256 mismatch, bytes after the tensor data, and NaN or ±Inf
// values (naming the tensor). Memory grows with the data actually received,
// never with sizes claimed by the header alone (DecodeWeightsBytes and
// ReadWeightsFile, which know the compressed size, allocate tensors exactly
// while that stays below 64 times the compressed size).
func DecodeWeights(src io.Reader, name string) (*WeightsFile, error) {
	return decodeWeights(src, name, nil, 0)
}

// DecodeWeightsBytes is DecodeWeights over an in-memory file, for the
// browser. If progress is non-nil it is called with (0, total) once the
// header is verified and then after each chunk of at most 64 KiB, where done
// and total count bytes of stored tensor data; the last call has done ==
// total.
func DecodeWeightsBytes(b []byte, name string, progress func(done, total int)) (*WeightsFile, error) {
	return decodeWeights(bytes.NewReader(b), name, progress, int64(len(b)))
}

// ReadWeightsFile reads and verifies the NLIW file at path.
func ReadWeightsFile(path string) (*WeightsFile, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read weights: %w", err)
	}
	defer fh.Close()
	var size int64
	if st, err := fh.Stat(); err == nil && st.Mode().IsRegular() {
		size = st.Size()
	}
	return decodeWeights(fh, path, nil, size)
}

// WriteWeightsFile writes f to path atomically, storing tensors as dtype: it
// encodes into a temporary file in the same folder, fsyncs and closes it, and
// renames it over path. On any error the temporary file is removed and an
// existing file at path is left untouched.
func WriteWeightsFile(path string, f *WeightsFile, dtype DType) (err error) {
	dir := filepath.Dir(path)
	fh, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*.tmp")
	if err != nil {
		return fmt.Errorf("write weights %s: %w", path, err)
	}
	tmp := fh.Name()
	closed := false
	defer func() {
		if err != nil {
			if !closed {
				fh.Close()
			}
			os.Remove(tmp)
		}
	}()
	// CreateTemp makes the file 0600; weights are served to browsers. A file
	// system that cannot chmod is not a reason to fail the write.
	_ = fh.Chmod(0o644)
	if err = EncodeWeights(fh, f, dtype); err != nil {
		return fmt.Errorf("write weights %s: %w", path, err)
	}
	if err = fh.Sync(); err != nil {
		return fmt.Errorf("write weights %s: sync: %w", path, err)
	}
	closed = true
	if err = fh.Close(); err != nil {
		return fmt.Errorf("write weights %s: close: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write weights %s: rename: %w", path, err)
	}
	// Best effort: persist the rename. Not every platform can sync a directory.
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// weightsStreamErr explains a read error from the snappy stream.
func weightsStreamErr(prefix, what string, err error) error {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%s: truncated: stream ends inside %s", prefix, what)
	case errors.Is(err, snappy.ErrCorrupt):
		return fmt.Errorf("%s: corrupt or truncated compressed stream in %s (snappy framing or CRC-32C check failed; is this a %s file?): %w", prefix, what, WeightsFileExt, err)
	case errors.Is(err, snappy.ErrUnsupported), errors.Is(err, snappy.ErrTooLarge):
		return fmt.Errorf("%s: unsupported or corrupt compressed stream in %s: %w", prefix, what, err)
	}
	return fmt.Errorf("%s: reading %s: %w", prefix, what, err)
}

// decodeWeights implements DecodeWeights. srcSize, when > 0, is the size of
// the compressed input: it lets tensors be allocated exactly, up front, within
// weightsUpfrontFactor*srcSize bytes in all; beyond that (or when the size is
// unknown) tensor slices grow by doubling as data arrives.
func decodeWeights(src io.Reader, name string, progress func(done, total int), srcSize int64) (*WeightsFile, error) {
	if name == "" {
		name = "<input>"
	}
	prefix := "weights file " + name
	zr := snappy.NewReader(src)

	var fixed [weightsFixedHeaderLen]byte
	if _, err := io.ReadFull(zr, fixed[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty file", prefix)
		}
		return nil, weightsStreamErr(prefix, "the fixed header", err)
	}
	if string(fixed[:4]) != weightsMagic {
		return nil, fmt.Errorf("%s: bad magic %q, want %q (not an NLI weights file)", prefix, fixed[:4], weightsMagic)
	}
	version := binary.LittleEndian.Uint32(fixed[4:8])
	if version > WeightsFormatVersion {
		return nil, fmt.Errorf("%s: weights format version %d is newer than this build supports (%d)", prefix, version, WeightsFormatVersion)
	}
	if version == 0 {
		return nil, fmt.Errorf("%s: invalid weights format version 0", prefix)
	}
	hlen := binary.LittleEndian.Uint32(fixed[8:12])
	if hlen == 0 || hlen > weightsMaxHeaderBytes {
		return nil, fmt.Errorf("%s: JSON header length %d is absurd (must be 1..%d)", prefix, hlen, weightsMaxHeaderBytes)
	}
	// Grow with the bytes that actually arrive, not with the claimed length.
	var hb bytes.Buffer
	if _, err := io.CopyN(&hb, zr, int64(hlen)); err != nil {
		return nil, weightsStreamErr(prefix, "the JSON header", err)
	}
	var hdr weightsHeader
	if err := json.Unmarshal(hb.Bytes(), &hdr); err != nil {
		return nil, fmt.Errorf("%s: invalid JSON header: %v", prefix, err)
	}
	hb = bytes.Buffer{}

	if !weightsValidKind(hdr.Kind) {
		return nil, fmt.Errorf("%s: unknown kind %q (want %q or %q)", prefix, hdr.Kind, WeightsKindWeights, WeightsKindCheckpoint)
	}
	if !isJSONObject(hdr.Config) {
		return nil, fmt.Errorf("%s: JSON header has no config object", prefix)
	}
	if len(hdr.SHA256) != 2*sha256.Size {
		return nil, fmt.Errorf("%s: sha256 %q is not %d hex digits", prefix, hdr.SHA256, 2*sha256.Size)
	}
	wantSum, err := hex.DecodeString(hdr.SHA256)
	if err != nil {
		return nil, fmt.Errorf("%s: sha256 %q is not hex", prefix, hdr.SHA256)
	}
	if bytes.Equal(bytes.TrimSpace(hdr.Extra), []byte("null")) {
		hdr.Extra = nil
	}

	// Check the whole table before allocating any tensor.
	seen := make(map[string]int, len(hdr.Tensors))
	var total int64
	for i, e := range hdr.Tensors {
		if e.Name == "" {
			return nil, fmt.Errorf("%s: tensor %d has an empty name", prefix, i)
		}
		if j, dup := seen[e.Name]; dup {
			return nil, fmt.Errorf("%s: duplicate tensor name %q (entries %d and %d)", prefix, e.Name, j, i)
		}
		seen[e.Name] = i
		size, ok := weightsDTypeSize(e.DType)
		if !ok {
			return nil, fmt.Errorf("%s: tensor %q has unknown dtype %q (want %q or %q)", prefix, e.Name, e.DType, DTypeF32, DTypeF16)
		}
		elems, err := weightsShapeElems(e.Shape, weightsMaxTensorBytes/size)
		if err != nil {
			return nil, fmt.Errorf("%s: tensor %q: %v", prefix, e.Name, err)
		}
		if e.NBytes != elems*size {
			return nil, fmt.Errorf("%s: tensor %q nbytes %d is inconsistent with shape %v and dtype %s (want %d)", prefix, e.Name, e.NBytes, e.Shape, e.DType, elems*size)
		}
		if e.Offset != total {
			return nil, fmt.Errorf("%s: tensor %q offset %d is inconsistent with the table (want %d: tensors are contiguous in table order)", prefix, e.Name, e.Offset, total)
		}
		if total+e.NBytes > weightsMaxTensorBytes {
			return nil, fmt.Errorf("%s: tensor data exceeds the %d-byte limit at tensor %q", prefix, int64(weightsMaxTensorBytes), e.Name)
		}
		total += e.NBytes
	}
	seen = nil

	if progress != nil {
		progress(0, int(total))
	}
	out := &WeightsFile{
		Kind:       hdr.Kind,
		Config:     hdr.Config,
		Provenance: hdr.Provenance,
		Extra:      hdr.Extra,
		Tensors:    make([]NamedTensor, 0, min(len(hdr.Tensors), 1024)),
	}
	h := sha256.New()
	buf := make([]byte, weightsChunkBytes)
	var done, upfront int64
	badTensor, badIndex, badValue := "", int64(-1), float32(0)
	for _, e := range hdr.Tensors {
		size, _ := weightsDTypeSize(e.DType)
		elems := e.NBytes / size
		initial := min(elems, weightsInitialAlloc)
		if srcSize > 0 && upfront+4*elems <= weightsUpfrontFactor*srcSize {
			initial = elems
			upfront += 4 * elems
		}
		data := make([]float32, 0, initial)
		for rem := e.NBytes; rem > 0; {
			n := min(rem, weightsChunkBytes) // a multiple of size
			b := buf[:n]
			if _, err := io.ReadFull(zr, b); err != nil {
				return nil, weightsStreamErr(prefix, fmt.Sprintf("the data of tensor %q", e.Name), err)
			}
			h.Write(b)
			k := int(n / size)
			if len(data)+k > cap(data) {
				// Double, capped at the (checked) element count: memory
				// follows the data received.
				nd := make([]float32, len(data), min(elems, max(2*int64(cap(data)), int64(len(data)+k))))
				copy(nd, data)
				data = nd
			}
			start := len(data)
			if size == 4 {
				for i := 0; i < k; i++ {
					data = append(data, math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])))
				}
			} else {
				for i := 0; i < k; i++ {
					data = append(data, float32FromHalfBits(binary.LittleEndian.Uint16(b[2*i:])))
				}
			}
			if badIndex < 0 {
				for i, v := range data[start:] {
					if math.Float32bits(v)&0x7f800000 == 0x7f800000 {
						badTensor, badIndex, badValue = e.Name, int64(start+i), v
						break
					}
				}
			}
			rem -= n
			done += n
			if progress != nil {
				progress(int(done), int(total))
			}
		}
		out.Tensors = append(out.Tensors, NamedTensor{Name: e.Name, Shape: e.Shape, Data: data})
	}
	if !bytes.Equal(h.Sum(nil), wantSum) {
		return nil, fmt.Errorf("%s: SHA-256 mismatch: tensor data hashes to %x, header says %s (corrupt file)", prefix, h.Sum(nil), hdr.SHA256)
	}
	var one [1]byte
	switch _, err := io.ReadFull(zr, one[:]); {
	case err == nil:
		return nil, fmt.Errorf("%s: trailing garbage after the tensor data", prefix)
	case errors.Is(err, io.EOF):
	default:
		return nil, weightsStreamErr(prefix, "the end of the stream (after the tensor data)", err)
	}
	if badIndex >= 0 {
		return nil, fmt.Errorf("%s: tensor %q element %d is %v (NaN/Inf not allowed)", prefix, badTensor, badIndex, badValue)
	}
	out.SHA256 = hdr.SHA256
	return out, nil
}

// halfBitsFromFloat32 converts f to IEEE-754 binary16 bits, rounding to
// nearest, ties to even. Overflow gives ±Inf, values below half the smallest
// subnormal give ±0, and NaN stays a (quiet) NaN.
func halfBitsFromFloat32(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00 | uint16(mant>>13) // keep payload, force quiet
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15 // half biased exponent
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e >= 1 {
		h := uint32(e)<<10 | mant>>13
		rem := mant & 0x1fff
		if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
			h++ // may carry into the exponent, up to 0x7c00 = Inf: correct
		}
		return sign | uint16(h)
	}
	// Half subnormal (or zero): value = m * 2^-24, m = full >> shift.
	if exp == 0 {
		return sign // float32 zero or subnormal: far below 2^-25
	}
	shift := uint32(126 - exp) // >= 14
	if shift > 24 {
		return sign // below 2^-25: rounds to zero
	}
	full := mant | 0x800000
	m := full >> shift
	rem := full & (1<<shift - 1)
	half := uint32(1) << (shift - 1)
	if rem > half || (rem == half && m&1 == 1) {
		m++ // may become 0x400, the smallest normal: correct
	}
	return sign | uint16(m)
}

// float32FromHalfBits converts IEEE-754 binary16 bits to float32 (exactly).
func float32FromHalfBits(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch exp {
	case 0:
		v := float32(mant) * (1.0 / (1 << 24)) // exact; sign added below
		return math.Float32frombits(math.Float32bits(v) | sign)
	case 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}
