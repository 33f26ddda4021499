package descriptor

import (
	"bytes"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/descriptor/*.hex from the code")

const vectorDir = "../../testdata/descriptor"

// checkVector compares got with the named vector file, or rewrites the file
// under -update. Files hold '#' comment lines and hex (whitespace ignored).
func checkVector(t *testing.T, name, comment string, got []byte) {
	t.Helper()
	path := filepath.Join(vectorDir, name)
	if *update {
		var sb strings.Builder
		for _, l := range strings.Split(strings.TrimSpace(comment), "\n") {
			sb.WriteString("# " + l + "\n")
		}
		h := hex.EncodeToString(got)
		for len(h) > 64 {
			sb.WriteString(h[:64] + "\n")
			h = h[64:]
		}
		sb.WriteString(h + "\n")
		if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (regenerate with: go test ./core/descriptor -run TestVectors -update)", err)
	}
	var hx strings.Builder
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			hx.WriteString(l)
		}
	}
	want, err := hex.DecodeString(hx.String())
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: code no longer reproduces the vector\n got %x\nwant %x", path, got, want)
	}
}

const vectorInputs = `
identity seed: 32 bytes of 0x01
link key: 0x40..0x5f, onion key: 0x80..0x9f
addrs: udp 127.1.0.1:7070, kcp [2001:db8::1]:7071
exit: true, policy "accept *:80,443; reject private"
published 2026-11-01T12:00:00Z (unix 1793534400), expires +24h`

func TestVectors(t *testing.T) {
	id := testIdentity(t, 1)
	b := signed(t, sample(), id)
	checkVector(t, "basic.hex", "Descriptor v1 (PROTOCOL.md §2)."+vectorInputs, b)

	d := sample()
	d.Unknown = []Field{{Type: 0x09, Value: []byte("future")}}
	u := signed(t, d, id)
	checkVector(t, "unknown-field.hex", "Descriptor v1 with an unknown field type 0x09 = \"future\" (kept, signed)."+vectorInputs, u)

	for _, b := range [][]byte{b, u} {
		if _, err := Parse(b, t0); err != nil {
			t.Fatal(err)
		}
	}
}
