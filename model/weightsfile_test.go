// Tests for weightsfile.go: NLIW round trips (f32 bit-exact, f16 within the
// measured bound), the float16 converter, every rejection case, truncation,
// atomic writes, bounded allocation on hostile headers, and a fuzz target.
package model

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/golang/snappy"
)

// wfTestFile returns a checkpoint with a few tensors of random data (45945
// values): big enough to span several 64 KiB snappy chunks in f32 and f16.
func wfTestFile(seed uint64) *WeightsFile {
	rng := rand.New(rand.NewPCG(seed, 7))
	mk := func(name string, shape ...int) NamedTensor {
		n := 1
		for _, d := range shape {
			n *= d
		}
		data := make([]float32, n)
		for i := range data {
			data[i] = float32(rng.NormFloat64())
		}
		return NamedTensor{Name: name, Shape: shape, Data: data}
	}
	return &WeightsFile{
		Kind:   WeightsKindCheckpoint,
		Config: json.RawMessage(`{"d_model":64,"layers":2,"name":"tiny"}`),
		Provenance: Provenance{
			Split: "shift_l", Steps: 1234, Seed: 1<<63 + 5, GitCommit: "abc123",
			Created: "2025-01-02T03:04:05Z", Command: "nli train --tiny",
		},
		Extra: json.RawMessage(`{"step":1234,"rng":[1,2,3]}`),
		Tensors: []NamedTensor{
			mk("embed", 200, 64),
			mk("enc.0.w", 64, 512),
			mk("enc.0.b", 256),
			mk("scalar", 1),
			mk("enc.1.w", 2, 3, 4, 5),
		},
	}
}

func wfEncode(t testing.TB, f *WeightsFile, dtype DType) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := EncodeWeights(&b, f, dtype); err != nil {
		t.Fatalf("EncodeWeights: %v", err)
	}
	return b.Bytes()
}

// wfUnsnappy returns the uncompressed payload of a framed snappy stream.
func wfUnsnappy(t testing.TB, b []byte) []byte {
	t.Helper()
	raw, err := io.ReadAll(snappy.NewReader(bytes.NewReader(b)))
	if err != nil {
		t.Fatalf("unsnappy: %v", err)
	}
	return raw
}

// wfSnappy wraps raw bytes in snappy's framed stream format.
func wfSnappy(t testing.TB, raw []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := snappy.NewBufferedWriter(&b)
	if _, err := w.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// wfRaw assembles an uncompressed NLIW payload from its parts.
func wfRaw(magic string, version, hlen uint32, hdr, data []byte) []byte {
	out := []byte(magic)
	out = binary.LittleEndian.AppendUint32(out, version)
	out = binary.LittleEndian.AppendUint32(out, hlen)
	out = append(out, hdr...)
	return append(out, data...)
}

// wfSplit parses a valid encoded file into its header and tensor data.
func wfSplit(t testing.TB, enc []byte) (weightsHeader, []byte) {
	t.Helper()
	raw := wfUnsnappy(t, enc)
	hlen := binary.LittleEndian.Uint32(raw[8:12])
	var h weightsHeader
	if err := json.Unmarshal(raw[12:12+hlen], &h); err != nil {
		t.Fatal(err)
	}
	return h, raw[12+hlen:]
}

// wfJoin builds a compressed file from a header and data; if fixSHA, the
// header's sha256 is set to the hash of data.
func wfJoin(t testing.TB, h weightsHeader, data []byte, fixSHA bool) []byte {
	t.Helper()
	if fixSHA {
		s := sha256.Sum256(data)
		h.SHA256 = hex.EncodeToString(s[:])
	}
	hb, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	return wfSnappy(t, wfRaw("NLIW", WeightsFormatVersion, uint32(len(hb)), hb, data))
}

func TestWeightsRoundTripF32(t *testing.T) {
	f := wfTestFile(1)
	// Special but finite values must survive bit for bit.
	f.Tensors[3].Data[0] = math.Float32frombits(0x80000000) // -0
	f.Tensors[2].Data[0] = math.Float32frombits(1)          // smallest subnormal
	f.Tensors[2].Data[1] = math.MaxFloat32
	f.Tensors[2].Data[2] = -math.SmallestNonzeroFloat32
	enc := wfEncode(t, f, DTypeF32)
	if f.SHA256 == "" {
		t.Fatal("EncodeWeights did not set SHA256")
	}
	g, err := DecodeWeights(bytes.NewReader(enc), "rt.nliw.sz")
	if err != nil {
		t.Fatalf("DecodeWeights: %v", err)
	}
	if g.Kind != f.Kind || g.Provenance != f.Provenance || g.SHA256 != f.SHA256 {
		t.Fatalf("metadata mismatch:\n got %q %+v %s\nwant %q %+v %s", g.Kind, g.Provenance, g.SHA256, f.Kind, f.Provenance, f.SHA256)
	}
	if !bytes.Equal(g.Config, f.Config) || !bytes.Equal(g.Extra, f.Extra) {
		t.Fatalf("config/extra mismatch: %s %s", g.Config, g.Extra)
	}
	if len(g.Tensors) != len(f.Tensors) {
		t.Fatalf("got %d tensors, want %d", len(g.Tensors), len(f.Tensors))
	}
	for i, want := range f.Tensors {
		got := g.Tensors[i]
		if got.Name != want.Name || !equalInts(got.Shape, want.Shape) || len(got.Data) != len(want.Data) {
			t.Fatalf("tensor %d: got %q %v len %d, want %q %v len %d", i, got.Name, got.Shape, len(got.Data), want.Name, want.Shape, len(want.Data))
		}
		for j := range want.Data {
			if math.Float32bits(got.Data[j]) != math.Float32bits(want.Data[j]) {
				t.Fatalf("tensor %q[%d]: got %08x want %08x", want.Name, j, math.Float32bits(got.Data[j]), math.Float32bits(want.Data[j]))
			}
		}
		if cap(got.Data) != len(got.Data) {
			t.Fatalf("tensor %q: cap %d != len %d (over-allocated)", want.Name, cap(got.Data), len(got.Data))
		}
		if tt, ok := g.Tensor(want.Name); !ok || tt.Name != want.Name {
			t.Fatalf("Tensor(%q) not found", want.Name)
		}
	}
	if _, ok := g.Tensor("missing"); ok {
		t.Fatal("Tensor(missing) found")
	}
	// Encoding is deterministic.
	if again := wfEncode(t, g, DTypeF32); !bytes.Equal(again, enc) {
		t.Fatal("re-encoding the decoded file gives different bytes")
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestWeightsDefaultsAndEmpty(t *testing.T) {
	f := &WeightsFile{Kind: WeightsKindWeights} // no config, no extra, no tensors
	g, err := DecodeWeightsBytes(wfEncode(t, f, DTypeF16), "empty", nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(g.Config) != "{}" || g.Extra != nil || len(g.Tensors) != 0 || g.Kind != WeightsKindWeights {
		t.Fatalf("got config %s extra %s tensors %d kind %q", g.Config, g.Extra, len(g.Tensors), g.Kind)
	}
}

// TestWeightsRoundTripF16 measures the float16 round-trip error on 1e5 N(0,1)
// samples (the numbers quoted in the DTypeF16 doc comment) and checks it
// against the IEEE bound: half an ulp, i.e. |err| <= max(2^-11 |x|, 2^-25).
func TestWeightsRoundTripF16(t *testing.T) {
	const n = 100000
	rng := rand.New(rand.NewPCG(42, 42))
	data := make([]float32, n)
	for i := range data {
		data[i] = float32(rng.NormFloat64())
	}
	f := &WeightsFile{Kind: WeightsKindWeights, Tensors: []NamedTensor{{Name: "x", Shape: []int{n}, Data: data}}}
	enc := wfEncode(t, f, DTypeF16)
	encF32 := wfEncode(t, f, DTypeF32)
	g, err := DecodeWeightsBytes(enc, "f16", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := g.Tensors[0].Data
	var maxAbs, maxRel, maxAbsSub float64
	nsub := 0
	for i, x := range data {
		d := math.Abs(float64(got[i]) - float64(x))
		ax := math.Abs(float64(x))
		if d > math.Max(ax*0x1p-11, 0x1p-25) {
			t.Fatalf("x=%v: f16 round trip %v, error %g beyond half an ulp", x, got[i], d)
		}
		maxAbs = math.Max(maxAbs, d)
		if ax >= 0x1p-14 {
			maxRel = math.Max(maxRel, d/ax)
		} else {
			nsub++
			maxAbsSub = math.Max(maxAbsSub, d)
		}
	}
	t.Logf("f16 round trip of %d N(0,1) values: max abs err %.3g, max rel err %.3g (|x| >= 2^-14); %d half-subnormal values, max abs err %.3g; file %d bytes (f32: %d)",
		n, maxAbs, maxRel, nsub, maxAbsSub, len(enc), len(encF32))
	if maxAbs > 0x1p-9 || maxRel > 0x1p-11 {
		t.Fatalf("f16 error above the documented bound: abs %g rel %g", maxAbs, maxRel)
	}
}

func TestHalfConversionExhaustive(t *testing.T) {
	// Every half value converts to float32 and back unchanged.
	for h := 0; h < 1<<16; h++ {
		f := float32FromHalfBits(uint16(h))
		back := halfBitsFromFloat32(f)
		if h&0x7c00 == 0x7c00 && h&0x3ff != 0 { // NaN
			if !math.IsNaN(float64(f)) || back&0x7c00 != 0x7c00 || back&0x3ff == 0 {
				t.Fatalf("NaN %04x -> %v -> %04x", h, f, back)
			}
			continue
		}
		if back != uint16(h) {
			t.Fatalf("%04x -> %v -> %04x", h, f, back)
		}
	}
}

func TestHalfConversionCases(t *testing.T) {
	cases := []struct {
		in   float32
		want uint16
	}{
		{0, 0x0000},
		{float32(math.Copysign(0, -1)), 0x8000},
		{1, 0x3c00},
		{-2, 0xc000},
		{65504, 0x7bff},
		{65519.99, 0x7bff},
		{65520, 0x7c00}, // ties to even: rounds to Inf
		{-65520, 0xfc00},
		{1e10, 0x7c00},
		{float32(math.Inf(1)), 0x7c00},
		{float32(math.Inf(-1)), 0xfc00},
		{0x1p-14, 0x0400},           // smallest normal
		{0x1p-24, 0x0001},           // smallest subnormal
		{0x1p-25, 0x0000},           // tie: to even (zero)
		{0x1.0002p-25, 0x0001},      // just above the tie
		{3 * 0x1p-25, 0x0002},       // tie between 1 and 2: even
		{5 * 0x1p-25, 0x0002},       // tie between 2 and 3: even
		{0x1p-14 - 0x1p-25, 0x0400}, // tie between 0x3ff and 0x400: even
		{1 + 0x1p-11, 0x3c00},       // tie: even
		{1 + 3*0x1p-11, 0x3c02},     // tie: even (up)
		{1 + 0x1.02p-11, 0x3c01},    // above tie
		{2047.5, 0x6800},            // tie between 2047 (odd) and 2048: even
		{math.SmallestNonzeroFloat32, 0x0000},
		{-math.SmallestNonzeroFloat32, 0x8000},
		{0x1p-26, 0x0000},
	}
	for _, c := range cases {
		if got := halfBitsFromFloat32(c.in); got != c.want {
			t.Errorf("halfBitsFromFloat32(%g) = %04x, want %04x", c.in, got, c.want)
		}
	}
	if h := halfBitsFromFloat32(float32(math.NaN())); h&0x7c00 != 0x7c00 || h&0x3ff == 0 {
		t.Errorf("NaN -> %04x, not a NaN", h)
	}
}

// halfRef is a slow reference: the nearest half to x (ties to even), by
// binary search over the ordered positive half encodings.
func halfRef(x float32) uint16 {
	sign := uint16(0)
	ax := float64(x)
	if math.Signbit(ax) {
		sign, ax = 0x8000, -ax
	}
	if ax >= 65520 {
		return sign | 0x7c00
	}
	lo, hi := 0, 0x7bff // largest h with value <= ax
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if float64(float32FromHalfBits(uint16(mid))) <= ax {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	v0 := float64(float32FromHalfBits(uint16(lo)))
	if v0 == ax || lo == 0x7bff {
		return sign | uint16(lo)
	}
	v1 := float64(float32FromHalfBits(uint16(lo + 1)))
	d0, d1 := ax-v0, v1-ax
	switch {
	case d0 < d1:
		return sign | uint16(lo)
	case d1 < d0:
		return sign | uint16(lo+1)
	case lo&1 == 0:
		return sign | uint16(lo)
	}
	return sign | uint16(lo+1)
}

func TestHalfConversionMatchesReference(t *testing.T) {
	check := func(x float32) {
		if got, want := halfBitsFromFloat32(x), halfRef(x); got != want {
			t.Fatalf("halfBitsFromFloat32(%g [%08x]) = %04x, reference %04x", x, math.Float32bits(x), got, want)
		}
	}
	// A strided sweep over all finite positive float32 bit patterns up to
	// just past the half range, plus the same negated.
	for b := uint32(0); b < 0x47800100; b += 4099 {
		x := math.Float32frombits(b)
		check(x)
		check(-x)
	}
	// Dense sweeps around every rounding boundary region of interest.
	for _, c := range []float32{0x1p-25, 0x1p-24, 0x1p-14, 1, 2048, 65504} {
		b := math.Float32bits(c)
		for d := uint32(0); d < 20000; d++ {
			check(math.Float32frombits(b - 10000 + d))
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 100000; i++ {
		check(float32(rng.NormFloat64() * math.Exp2(float64(rng.IntN(50)-30))))
	}
}

func TestWeightsProgress(t *testing.T) {
	f := wfTestFile(2)
	enc := wfEncode(t, f, DTypeF16)
	var calls, last, lastTotal int
	_, err := DecodeWeightsBytes(enc, "p", func(done, total int) {
		if done < last || (calls > 0 && total != lastTotal) || done > total {
			t.Fatalf("progress went (%d/%d) after (%d/%d)", done, total, last, lastTotal)
		}
		calls++
		last, lastTotal = done, total
	})
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, tt := range f.Tensors {
		want += 2 * len(tt.Data)
	}
	if last != want || lastTotal != want || calls < 3 {
		t.Fatalf("progress ended at %d/%d after %d calls, want %d/%d", last, lastTotal, calls, want, want)
	}
}

func TestWeightsEncodeRejects(t *testing.T) {
	nan := float32(math.NaN())
	cases := []struct {
		name  string
		mod   func(f *WeightsFile)
		dtype DType
		want  string
	}{
		{"nan", func(f *WeightsFile) { f.Tensors[1].Data[17] = nan }, DTypeF32, `tensor "enc.0.w" element 17 is NaN`},
		{"inf f16", func(f *WeightsFile) { f.Tensors[2].Data[3] = float32(math.Inf(-1)) }, DTypeF16, `tensor "enc.0.b" element 3 is -Inf`},
		{"f16 overflow", func(f *WeightsFile) { f.Tensors[0].Data[5] = 70000 }, DTypeF16, `tensor "embed" element 5 (70000) overflows float16`},
		{"dtype", func(f *WeightsFile) {}, DType("bf16"), `unknown dtype "bf16"`},
		{"no dtype", func(f *WeightsFile) {}, DType(""), `unknown dtype ""`},
		{"kind", func(f *WeightsFile) { f.Kind = "model" }, DTypeF32, `unknown kind "model"`},
		{"config", func(f *WeightsFile) { f.Config = json.RawMessage(`[1,2]`) }, DTypeF32, "config is not a valid JSON object"},
		{"config json", func(f *WeightsFile) { f.Config = json.RawMessage(`{"a":`) }, DTypeF32, "config is not a valid JSON object"},
		{"extra", func(f *WeightsFile) { f.Extra = json.RawMessage(`{x}`) }, DTypeF32, "extra is not valid JSON"},
		{"dup", func(f *WeightsFile) { f.Tensors[3].Name = "embed" }, DTypeF32, `duplicate tensor name "embed"`},
		{"empty name", func(f *WeightsFile) { f.Tensors[1].Name = "" }, DTypeF32, "tensor 1 has an empty name"},
		{"len", func(f *WeightsFile) { f.Tensors[2].Data = f.Tensors[2].Data[:10] }, DTypeF32, `tensor "enc.0.b" has 10 values but shape [256] needs 256`},
		{"zero dim", func(f *WeightsFile) { f.Tensors[3].Shape = []int{0} }, DTypeF32, "dimension 0 is 0, must be > 0"},
		{"no shape", func(f *WeightsFile) { f.Tensors[3].Shape = nil }, DTypeF32, "empty shape"},
		{"huge", func(f *WeightsFile) { f.Tensors[3].Shape = []int{1 << 20, 1 << 20} }, DTypeF32, "too large"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := wfTestFile(3)
			c.mod(f)
			var b bytes.Buffer
			err := EncodeWeights(&b, f, c.dtype)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
			if b.Len() != 0 {
				t.Fatalf("a rejected encode wrote %d bytes", b.Len())
			}
		})
	}
	if err := EncodeWeights(io.Discard, nil, DTypeF32); err == nil {
		t.Fatal("nil file accepted")
	}
}

func TestWeightsDecodeRejects(t *testing.T) {
	valid := wfEncode(t, wfTestFile(4), DTypeF32)
	validF16 := wfEncode(t, wfTestFile(4), DTypeF16)
	hdr0, data0 := wfSplit(t, valid)
	validHdrJSON, _ := json.Marshal(hdr0)
	// clone returns a deep-enough copy of the header to mutate.
	clone := func() weightsHeader {
		h := hdr0
		h.Tensors = append([]weightsTensorEntry(nil), hdr0.Tensors...)
		for i := range h.Tensors {
			h.Tensors[i].Shape = append([]int(nil), h.Tensors[i].Shape...)
		}
		return h
	}
	withHdr := func(mod func(h *weightsHeader)) []byte {
		h := clone()
		mod(&h)
		return wfJoin(t, h, data0, true)
	}
	// nanFile stores a NaN in tensor "enc.0.b", with a correct hash.
	nanFile := func() []byte {
		d := append([]byte(nil), data0...)
		off := hdr0.Tensors[2].Offset + 4*9
		binary.LittleEndian.PutUint32(d[off:], 0x7fc00000)
		return wfJoin(t, clone(), d, true)
	}
	infF16File := func() []byte {
		h, d := wfSplit(t, validF16)
		d = append([]byte(nil), d...)
		binary.LittleEndian.PutUint16(d[h.Tensors[1].Offset+2*5:], 0xfc00)
		return wfJoin(t, h, d, true)
	}
	flipped := append([]byte(nil), valid...)
	flipped[len(flipped)/2] ^= 0x10

	cases := []struct {
		name string
		file []byte
		want string
	}{
		{"empty input", nil, "empty file"},
		{"empty stream", wfSnappy(t, nil), "empty file"},
		{"not snappy", wfRaw("NLIW", 1, uint32(len(validHdrJSON)), validHdrJSON, data0), "corrupt or truncated compressed stream"},
		{"bad magic", wfSnappy(t, wfRaw("NLIX", 1, uint32(len(validHdrJSON)), validHdrJSON, data0)), `bad magic "NLIX"`},
		{"newer version", wfSnappy(t, wfRaw("NLIW", 2, uint32(len(validHdrJSON)), validHdrJSON, data0)), "weights format version 2 is newer than this build supports (1)"},
		{"version 0", wfSnappy(t, wfRaw("NLIW", 0, uint32(len(validHdrJSON)), validHdrJSON, data0)), "invalid weights format version 0"},
		{"short fixed header", wfSnappy(t, []byte("NLIW\x01\x00")), "truncated: stream ends inside the fixed header"},
		{"absurd header length", wfSnappy(t, wfRaw("NLIW", 1, 64<<20+1, validHdrJSON, data0)), "JSON header length 67108865 is absurd"},
		{"zero header length", wfSnappy(t, wfRaw("NLIW", 1, 0, nil, data0)), "JSON header length 0 is absurd"},
		{"header longer than file", wfSnappy(t, wfRaw("NLIW", 1, 60<<20, validHdrJSON, nil)), "truncated: stream ends inside the JSON header"},
		{"invalid JSON", wfSnappy(t, wfRaw("NLIW", 1, 5, []byte(`{"a":`), nil)), "invalid JSON header"},
		{"JSON wrong type", wfSnappy(t, wfRaw("NLIW", 1, 13, []byte(`{"tensors":1}`), nil)), "invalid JSON header"},
		{"unknown kind", withHdr(func(h *weightsHeader) { h.Kind = "model" }), `unknown kind "model"`},
		{"missing kind", withHdr(func(h *weightsHeader) { h.Kind = "" }), `unknown kind ""`},
		{"no config", withHdr(func(h *weightsHeader) { h.Config = nil }), "no config object"},
		{"config not object", withHdr(func(h *weightsHeader) { h.Config = json.RawMessage(`"x"`) }), "no config object"},
		{"unknown dtype", withHdr(func(h *weightsHeader) { h.Tensors[1].DType = "bf16" }), `tensor "enc.0.w" has unknown dtype "bf16"`},
		{"duplicate names", withHdr(func(h *weightsHeader) { h.Tensors[2].Name = "embed" }), `duplicate tensor name "embed" (entries 0 and 2)`},
		{"empty name", withHdr(func(h *weightsHeader) { h.Tensors[2].Name = "" }), "tensor 2 has an empty name"},
		{"offset", withHdr(func(h *weightsHeader) { h.Tensors[2].Offset += 4 }), `tensor "enc.0.b" offset`},
		{"offset negative", withHdr(func(h *weightsHeader) { h.Tensors[0].Offset = -4 }), `tensor "embed" offset -4 is inconsistent`},
		{"nbytes", withHdr(func(h *weightsHeader) { h.Tensors[1].NBytes -= 4 }), `tensor "enc.0.w" nbytes`},
		{"nbytes vs dtype", withHdr(func(h *weightsHeader) { h.Tensors[1].DType = DTypeF16 }), `tensor "enc.0.w" nbytes 131072 is inconsistent with shape [64 512] and dtype f16 (want 65536)`},
		{"shape vs nbytes", withHdr(func(h *weightsHeader) { h.Tensors[1].Shape[0] = 63 }), `tensor "enc.0.w" nbytes`},
		{"zero dim", withHdr(func(h *weightsHeader) { h.Tensors[3].Shape = []int{0} }), `tensor "scalar": shape [0]: dimension 0 is 0`},
		{"negative dim", withHdr(func(h *weightsHeader) { h.Tensors[3].Shape = []int{-1, -1} }), "dimension 0 is -1"},
		{"empty shape", withHdr(func(h *weightsHeader) { h.Tensors[3].Shape = []int{} }), "empty shape"},
		{"overflowing shape", withHdr(func(h *weightsHeader) {
			h.Tensors[3].Shape = []int{1 << 31, 1 << 31, 1 << 31, 1 << 31}
		}), "too large"},
		{"over 1 GiB", withHdr(func(h *weightsHeader) {
			h.Tensors = append(h.Tensors,
				weightsTensorEntry{Name: "big1", Shape: []int{1 << 27}, DType: DTypeF32, Offset: data0Len(hdr0), NBytes: 1 << 29},
				weightsTensorEntry{Name: "big2", Shape: []int{1 << 28}, DType: DTypeF32, Offset: data0Len(hdr0) + 1<<29, NBytes: 1 << 30},
			)
		}), `tensor data exceeds the 1073741824-byte limit at tensor "big2"`},
		{"bad sha format", func() []byte { h := clone(); h.SHA256 = "zz" + h.SHA256[2:]; return wfJoin(t, h, data0, false) }(), "is not hex"},
		{"short sha", func() []byte { h := clone(); h.SHA256 = "abcd"; return wfJoin(t, h, data0, false) }(), `sha256 "abcd" is not 64 hex digits`},
		{"hash mismatch", func() []byte { h := clone(); h.SHA256 = strings.Repeat("ab", 32); return wfJoin(t, h, data0, false) }(), "SHA-256 mismatch"},
		{"tensor data flipped", func() []byte {
			d := append([]byte(nil), data0...)
			d[100] ^= 1
			return wfJoin(t, clone(), d, false)
		}(), "SHA-256 mismatch"},
		{"truncated data", wfJoin(t, clone(), data0[:len(data0)-10], false), `truncated: stream ends inside the data of tensor "enc.1.w"`},
		{"truncated compressed", valid[:len(valid)-7], "corrupt or truncated compressed stream"},
		{"truncated mid first chunk", valid[:1000], "corrupt or truncated compressed stream"},
		{"flipped compressed byte", flipped, "corrupt or truncated compressed stream"},
		{"trailing garbage", wfJoin(t, clone(), append(append([]byte(nil), data0...), 0, 0, 0, 0), false), "trailing garbage"},
		{"trailing stream", append(append([]byte(nil), valid...), wfSnappy(t, []byte("x"))...), "trailing garbage"},
		{"trailing junk bytes", append(append([]byte(nil), valid...), 1, 2, 3), "corrupt or truncated compressed stream in the end of the stream"},
		{"NaN", nanFile(), `tensor "enc.0.b" element 9 is NaN`},
		{"Inf f16", infF16File(), `tensor "enc.0.w" element 5 is -Inf`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g, err := DecodeWeightsBytes(c.file, "bad.nliw.sz", nil)
			if err == nil {
				t.Fatalf("accepted (%d tensors)", len(g.Tensors))
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "bad.nliw.sz") {
				t.Fatalf("err = %v\nwant it to contain %q and the file name", err, c.want)
			}
		})
	}
	// Sanity: the pieces used above do make a valid file when unmodified.
	if _, err := DecodeWeightsBytes(wfJoin(t, clone(), data0, false), "ok", nil); err != nil {
		t.Fatalf("reassembled valid file rejected: %v", err)
	}
	if _, err := DecodeWeightsBytes(valid, "ok", nil); err != nil {
		t.Fatalf("valid file rejected: %v", err)
	}
}

// data0Len is the tensor-data length that a header's table describes.
func data0Len(h weightsHeader) int64 {
	last := h.Tensors[len(h.Tensors)-1]
	return last.Offset + last.NBytes
}

func TestWeightsTruncationEvery97(t *testing.T) {
	for _, dt := range []DType{DTypeF32, DTypeF16} {
		valid := wfEncode(t, wfTestFile(5), dt)
		if len(valid) < 64<<10+1000 {
			t.Fatalf("test file too small (%d bytes) to span several chunks", len(valid))
		}
		n := 0
		for cut := 0; cut < len(valid); cut += 97 {
			n++
			g, err := DecodeWeightsBytes(valid[:cut], "cut", nil)
			if err == nil {
				t.Fatalf("%s: truncation at %d of %d accepted (%d tensors)", dt, cut, len(valid), len(g.Tensors))
			}
		}
		for cut := len(valid) - 16; cut < len(valid); cut++ {
			if _, err := DecodeWeightsBytes(valid[:cut], "cut", nil); err == nil {
				t.Fatalf("%s: truncation at %d of %d accepted", dt, cut, len(valid))
			}
		}
		t.Logf("%s: %d truncations of a %d-byte file all rejected", dt, n+16, len(valid))
	}
}

// TestWeightsHostileHeaderBoundedAlloc: a header that claims close to 1 GiB
// of tensors followed by almost no data must fail without allocating it.
func TestWeightsHostileHeaderBoundedAlloc(t *testing.T) {
	h := weightsHeader{
		Kind: WeightsKindWeights, Config: json.RawMessage(`{}`), SHA256: strings.Repeat("00", 32),
		Tensors: []weightsTensorEntry{{Name: "w", Shape: []int{1 << 28}, DType: DTypeF32, NBytes: 1 << 30}},
	}
	file := wfJoin(t, h, make([]byte, 1000), false)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := DecodeWeightsBytes(file, "hostile", nil)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("err = %v, want truncated", err)
	}
	if d := after.TotalAlloc - before.TotalAlloc; d > 32<<20 {
		t.Fatalf("decoding a 1 GiB claim with 1000 bytes of data allocated %d bytes", d)
	}
}

func TestWeightsFileAtomicWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model"+WeightsFileExt)
	f := wfTestFile(6)
	if err := WriteWeightsFile(path, f, DTypeF16); err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	g, err := ReadWeightsFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Tensors) != len(f.Tensors) || g.SHA256 != f.SHA256 {
		t.Fatalf("read back %d tensors sha %s, want %d sha %s", len(g.Tensors), g.SHA256, len(f.Tensors), f.SHA256)
	}

	noTemps := func() {
		t.Helper()
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".tmp") {
				t.Fatalf("temporary file %s left behind", e.Name())
			}
		}
	}
	// A NaN is rejected and the previous file is intact.
	bad := wfTestFile(7)
	bad.Tensors[4].Data[2] = float32(math.NaN())
	err = WriteWeightsFile(path, bad, DTypeF32)
	if err == nil || !strings.Contains(err.Error(), `tensor "enc.1.w" element 2 is NaN`) {
		t.Fatalf("err = %v", err)
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, orig) {
		t.Fatal("failed write changed the existing file")
	}
	noTemps()
	// Unknown dtype: same.
	if err := WriteWeightsFile(path, wfTestFile(8), "f64"); err == nil {
		t.Fatal("dtype f64 accepted")
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, orig) {
		t.Fatal("failed write changed the existing file")
	}
	noTemps()
	// A rename failure (the target is a non-empty directory) removes the temp.
	target := filepath.Join(dir, "adir")
	if err := os.MkdirAll(filepath.Join(target, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteWeightsFile(target, wfTestFile(9), DTypeF32); err == nil {
		t.Fatal("writing over a directory succeeded")
	}
	noTemps()
	// A missing folder fails cleanly.
	if err := WriteWeightsFile(filepath.Join(dir, "nope", "m.nliw.sz"), f, DTypeF32); err == nil {
		t.Fatal("write into a missing folder succeeded")
	}
	// A successful overwrite replaces the file.
	if err := WriteWeightsFile(path, wfTestFile(10), DTypeF32); err != nil {
		t.Fatal(err)
	}
	if now, _ := os.ReadFile(path); bytes.Equal(now, orig) {
		t.Fatal("overwrite did not replace the file")
	}
	noTemps()
	if _, err := ReadWeightsFile(filepath.Join(dir, "missing.nliw.sz")); err == nil {
		t.Fatal("reading a missing file succeeded")
	}
}

// FuzzDecodeWeights asserts only that decoding never panics. Each input is
// decoded both as a compressed file and, wrapped in snappy, as the
// uncompressed payload, so the fuzzer can reach the header parser past the
// CRC checks.
func FuzzDecodeWeights(f *testing.F) {
	small := wfTestFile(11)
	small.Tensors = small.Tensors[2:]
	var b bytes.Buffer
	if err := EncodeWeights(&b, small, DTypeF16); err != nil {
		f.Fatal(err)
	}
	f.Add(b.Bytes())
	f.Add(wfUnsnappy(f, b.Bytes()))
	b.Reset()
	if err := EncodeWeights(&b, &WeightsFile{Kind: WeightsKindWeights, Tensors: []NamedTensor{{Name: "a", Shape: []int{2, 2}, Data: []float32{1, 2, 3, 4}}}}, DTypeF32); err != nil {
		f.Fatal(err)
	}
	f.Add(b.Bytes())
	f.Add(wfUnsnappy(f, b.Bytes()))
	f.Fuzz(func(t *testing.T, data []byte) {
		if g, err := DecodeWeightsBytes(data, "fuzz", func(int, int) {}); err == nil && g == nil {
			t.Fatal("nil file without error")
		}
		if g, err := DecodeWeightsBytes(wfSnappy(t, data), "fuzz", nil); err == nil {
			for _, tt := range g.Tensors {
				if n, err := weightsShapeElems(tt.Shape, 1<<30); err != nil || int64(len(tt.Data)) != n {
					t.Fatalf("accepted tensor %q with shape %v and %d values", tt.Name, tt.Shape, len(tt.Data))
				}
			}
		}
	})
}
