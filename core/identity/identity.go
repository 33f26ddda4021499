// Package identity holds a node's long-term Ed25519 identity key and the
// node ID derived from it (PROTOCOL.md §2).
package identity

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
)

// fileHeader is the first line of an identity file; it names the format so
// a future change of encoding is detected instead of misread.
const fileHeader = "tarzan-identity-v1"

var (
	// ErrExists is returned by Save when the target file already exists:
	// overwriting an identity key would silently change the node's ID.
	ErrExists = errors.New("identity: file already exists")
	// ErrInsecureFile is returned by Load for a key file that group or
	// other may read.
	ErrInsecureFile = errors.New("identity: key file is accessible by group or other")
	// ErrBadFile is returned by Load for a file not in the identity format.
	ErrBadFile = errors.New("identity: malformed identity file")
)

// Identity is a node's private identity key. Its String, GoString and
// LogValue show only the short node ID, so it cannot leak into logs.
type Identity struct {
	priv ed25519.PrivateKey
	id   ID
}

// Generate makes a new identity from rand (crypto/rand.Reader in
// production; a fixed stream in tests).
func Generate(rand io.Reader) (*Identity, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := io.ReadFull(rand, seed); err != nil {
		return nil, fmt.Errorf("identity: reading randomness: %w", err)
	}
	return FromSeed(seed)
}

// FromSeed builds the identity whose Ed25519 seed is seed (32 bytes).
func FromSeed(seed []byte) (*Identity, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("identity: seed is %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	return &Identity{priv: priv, id: IDFromPublic(priv.Public().(ed25519.PublicKey))}, nil
}

// ID is the node ID.
func (i *Identity) ID() ID { return i.id }

// Public returns a copy of the Ed25519 public key.
func (i *Identity) Public() ed25519.PublicKey {
	return bytes.Clone(i.priv.Public().(ed25519.PublicKey))
}

// Sign signs msg with the identity key. Callers prefix msg with their own
// context string (e.g. "tarzan-proof-v1") so that signatures made for one
// purpose can never be replayed for another.
func (i *Identity) Sign(msg []byte) []byte { return ed25519.Sign(i.priv, msg) }

// String shows only the short node ID.
func (i Identity) String() string { return "identity(" + i.id.Short() + ")" }

// GoString keeps %#v from dumping the private key.
func (i Identity) GoString() string { return i.String() }

// LogValue makes slog print the short node ID only.
func (i Identity) LogValue() slog.Value { return slog.StringValue(i.id.Short()) }

// Save writes the identity to a new file at path with mode 0600. It refuses
// to overwrite an existing file. Format: the line "tarzan-identity-v1",
// then the base64 (standard, padded) Ed25519 seed on its own line.
func (i *Identity) Save(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%w: %s (refusing to replace a node identity)", ErrExists, path)
	}
	if err != nil {
		return fmt.Errorf("identity: creating %s: %w", path, err)
	}
	// A restrictive umask can only narrow 0600; chmod anyway so the
	// result does not depend on the caller's umask at all.
	werr := f.Chmod(0o600)
	if werr == nil {
		content := fileHeader + "\n" + base64.StdEncoding.EncodeToString(i.priv.Seed()) + "\n"
		_, werr = f.WriteString(content)
	}
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(path)
		return fmt.Errorf("identity: writing %s: %w", path, werr)
	}
	return nil
}

// Load reads an identity file written by Save. It refuses a file that
// group or other can access: the key would already be exposed.
func Load(path string) (*Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o; run chmod 600 %s", ErrInsecureFile, path, st.Mode().Perm(), path)
	}
	// The file is two short lines; anything much bigger is not ours.
	data, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return nil, fmt.Errorf("identity: reading %s: %w", path, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	var lines []string
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) != 2 || lines[0] != fileHeader {
		return nil, fmt.Errorf("%w: %s: want the line %q then one base64 line", ErrBadFile, path, fileHeader)
	}
	seed, err := base64.StdEncoding.DecodeString(lines[1])
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%w: %s: line 2 is not a base64 %d-byte seed", ErrBadFile, path, ed25519.SeedSize)
	}
	return FromSeed(seed)
}
