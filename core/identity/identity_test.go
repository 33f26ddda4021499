package identity

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func fixed(t testing.TB, b byte) *Identity {
	t.Helper()
	id, err := Generate(bytes.NewReader(bytes.Repeat([]byte{b}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestSaveLoadRoundTrip(t *testing.T) {
	id := fixed(t, 7)
	path := filepath.Join(t.TempDir(), "id.key")
	if err := id.Save(path); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %04o, want 0600", st.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(data), "tarzan-identity-v1\n") {
		t.Fatalf("file does not start with header: %q", data)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID() != id.ID() || !got.Public().Equal(id.Public()) {
		t.Fatal("loaded identity differs")
	}
	msg := []byte("hello")
	if !ed25519.Verify(id.Public(), msg, got.Sign(msg)) {
		t.Fatal("loaded key does not sign for the saved public key")
	}
}

func TestSaveRefusesOverwrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "id.key")
	if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := fixed(t, 1).Save(path)
	if !errors.Is(err, ErrExists) {
		t.Fatalf("err = %v, want ErrExists", err)
	}
	if data, _ := os.ReadFile(path); string(data) != "precious" {
		t.Fatal("existing file was modified")
	}
}

func TestLoadRejects(t *testing.T) {
	good := fixed(t, 3)
	tests := []struct {
		name    string
		prepare func(path string) error
		want    error
	}{
		{"mode 0644", func(p string) error {
			if err := good.Save(p); err != nil {
				return err
			}
			return os.Chmod(p, 0o644)
		}, ErrInsecureFile},
		{"mode 0640", func(p string) error {
			if err := good.Save(p); err != nil {
				return err
			}
			return os.Chmod(p, 0o640)
		}, ErrInsecureFile},
		{"no header", func(p string) error {
			return os.WriteFile(p, []byte("AAAA\n"), 0o600)
		}, ErrBadFile},
		{"short seed", func(p string) error {
			return os.WriteFile(p, []byte("tarzan-identity-v1\nAAAA\n"), 0o600)
		}, ErrBadFile},
		{"not base64", func(p string) error {
			return os.WriteFile(p, []byte("tarzan-identity-v1\n!!!!\n"), 0o600)
		}, ErrBadFile},
		{"missing", func(string) error { return nil }, os.ErrNotExist},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "id.key")
			if err := tc.prepare(path); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if err != nil && tc.want == ErrInsecureFile && !strings.Contains(err.Error(), "chmod 600") {
				t.Fatalf("error does not say how to fix it: %v", err)
			}
		})
	}
}

func TestIDForms(t *testing.T) {
	id := fixed(t, 9)
	s := id.ID().String()
	if len(s) != 64 {
		t.Fatalf("String() = %q, want 64 hex digits", s)
	}
	if id.ID().Short() != s[:8] {
		t.Fatalf("Short() = %q, want %q", id.ID().Short(), s[:8])
	}
	back, err := ParseID(s)
	if err != nil || back != id.ID() {
		t.Fatalf("ParseID(String()) = %v, %v", back, err)
	}
	if id.ID().IsZero() || !(ID{}).IsZero() {
		t.Fatal("IsZero wrong")
	}
	if want := IDFromPublic(id.Public()); want != id.ID() {
		t.Fatal("ID() != IDFromPublic(Public())")
	}
	for _, bad := range []string{"", "zz", s[:62], s + "00", strings.Repeat("g", 64)} {
		if _, err := ParseID(bad); !errors.Is(err, ErrBadID) {
			t.Errorf("ParseID(%q) err = %v, want ErrBadID", bad, err)
		}
	}
}

// TestNoKeyInOutput checks every way a key could reach a log or a panic
// message prints only the short ID.
func TestNoKeyInOutput(t *testing.T) {
	id := fixed(t, 5)
	seedHex := fmt.Sprintf("%x", id.priv.Seed())
	var logBuf bytes.Buffer
	slog.New(slog.NewTextHandler(&logBuf, nil)).Info("x", "id", id, "idv", *id)
	outs := []string{
		fmt.Sprint(id), fmt.Sprintf("%v", *id), fmt.Sprintf("%+v", id), fmt.Sprintf("%#v", id),
		fmt.Sprintf("%#v", *id), fmt.Sprintf("%s", id), logBuf.String(),
	}
	for _, o := range outs {
		if strings.Contains(o, seedHex[:16]) || strings.Contains(o, fmt.Sprint(id.priv.Seed()[:4])) {
			t.Fatalf("key material in output: %q", o)
		}
		if !strings.Contains(o, id.ID().Short()) {
			t.Fatalf("output lacks short ID: %q", o)
		}
	}
}
