package token

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"strconv"
	"testing"
)

// vector is one entry of testdata/statuslist-test-vectors.json: the test vectors of
// draft-ietf-oauth-status-list-20 (§4.1, §4.2 and Appendix C).
type vector struct {
	Name            string         `json:"name"`
	Size            int64          `json:"size"`
	Bits            int            `json:"bits"`
	Lst             string         `json:"lst"`
	Listed          map[string]int `json:"nonzero_or_listed"`
	DecompressedHex string         `json:"decompressed_hex"`
	Entries         int64          `json:"entries"`
}

// independentDecode is a second implementation, written from the draft for the test: base64url,
// then zlib, then the entry at idx sits in the least significant bits first.
func independentDecode(t *testing.T, lst string) []byte {
	t.Helper()
	z, err := base64.RawURLEncoding.DecodeString(lst)
	if err != nil {
		t.Fatal(err)
	}
	r, err := zlib.NewReader(bytes.NewReader(z))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func independentStatus(raw []byte, bits int, idx int64) int {
	bitPos := idx * int64(bits)
	b := raw[bitPos/8]
	return int(b>>(bitPos%8)) & (1<<bits - 1)
}

func loadVectors(t *testing.T) []vector {
	b, err := os.ReadFile("testdata/statuslist-test-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) < 6 {
		t.Fatalf("only %d vectors", len(vs))
	}
	return vs
}

func TestStatusListDraftVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.Name+"/"+strconv.Itoa(v.Bits), func(t *testing.T) {
			want := independentDecode(t, v.Lst)
			got, err := DecodeStatusList(v.Lst)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("DecodeStatusList differs from the independent decoding (%v)", err)
			}
			if v.DecompressedHex != "" && hex.EncodeToString(got) != v.DecompressedHex {
				t.Fatalf("decoded %x, want %s", got, v.DecompressedHex)
			}
			n := v.Size
			if n == 0 {
				n = v.Entries
			}
			if int64(len(got))*int64(8/v.Bits) < n {
				t.Fatalf("list holds fewer than %d entries", n)
			}
			for k, status := range v.Listed {
				idx, _ := strconv.ParseInt(k, 10, 64)
				s, ok := StatusAt(got, v.Bits, idx)
				if !ok || int(s) != status || independentStatus(got, v.Bits, idx) != status {
					t.Fatalf("entry %d = %d (ok %v), want %d", idx, s, ok, status)
				}
			}
			// Every entry not listed has the default status 0 (for the lists that say so).
			if v.Size > 0 {
				for idx := int64(0); idx < v.Size; idx += 997 {
					if _, listed := v.Listed[strconv.FormatInt(idx, 10)]; !listed && independentStatus(got, v.Bits, idx) != 0 {
						t.Fatalf("entry %d is %d, want the default 0", idx, independentStatus(got, v.Bits, idx))
					}
				}
			}
			// Our encoder round-trips (compare decoded bytes: zlib output may differ from the draft's).
			enc, err := EncodeStatusList(got)
			if err != nil || !bytes.Equal(independentDecode(t, enc), got) {
				t.Fatalf("EncodeStatusList does not round-trip (%v)", err)
			}
		})
	}
}

func TestSetStatusAndBounds(t *testing.T) {
	raw := make([]byte, 4)
	for _, i := range []int64{0, 9, 31} {
		SetStatus(raw, i)
	}
	for i := int64(0); i < 32; i++ {
		s, _ := StatusAt(raw, 1, i)
		if want := i == 0 || i == 9 || i == 31; (s == StatusInvalid) != want {
			t.Fatalf("entry %d = %d", i, s)
		}
	}
	if _, ok := StatusAt(raw, 1, 32); ok {
		t.Fatal("index past the end accepted")
	}
	if _, ok := StatusAt(raw, 3, 0); ok {
		t.Fatal("bits=3 accepted")
	}
	bomb := bytes.Repeat([]byte{0}, MaxStatusListBytes+10)
	lst, _ := EncodeStatusList(bomb)
	if _, err := DecodeStatusList(lst); err == nil {
		t.Fatal("an oversized list (zip bomb) was decoded")
	}
}

// BenchmarkStatusListEncode measures rendering a 131,072-entry 1-bit list with 1,000 revoked
// entries: what re-publishing a status list after a revocation costs (before signing).
func BenchmarkStatusListEncode(b *testing.B) {
	raw := make([]byte, 1<<14)
	for i := int64(0); i < 1000; i++ {
		SetStatus(raw, (i*7919)%(1<<17))
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeStatusList(raw); err != nil {
			b.Fatal(err)
		}
	}
}
