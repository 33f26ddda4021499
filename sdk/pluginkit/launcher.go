package pluginkit

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/hashicorp/go-plugin"
)

// ErrChecksum is wrapped by the error Launch returns when the executable
// does not match Launcher.Checksum.
var ErrChecksum = errors.New("pluginkit: plugin executable does not match its pinned SHA-256")

// Launcher says how to start one plugin child.
type Launcher struct {
	// Path is the executable. A node that serves its shipped plugins itself
	// passes os.Executable().
	Path string
	// Args are the arguments after the program name, e.g.
	// ["plugin", "serve", "transport", "udp"].
	Args []string
	// Checksum, if set, is the hex SHA-256 of the executable. It is checked
	// before every start, restarts included, so a binary replaced on disk
	// is refused rather than run.
	Checksum string
	// Logger receives go-plugin's events and the child's log lines, tagged
	// plugin=Name. Nil means slog.Default().
	Logger *slog.Logger
	// Name identifies the plugin in logs, errors and Stats, e.g. "udp".
	Name string
	// Env is added to the child's environment after the host's own, so
	// an entry here wins over the same variable inherited from the host:
	// the host's runtime settings for this child (e.g. GOMAXPROCS=1).
	Env []string
	// TimerSlack, if positive, is the child's timer slack: how late the
	// kernel may wake its sleeping threads so as to batch wake-ups (Linux
	// prctl PR_SET_TIMERSLACK; every thread of the child inherits it,
	// the Go runtime's own monitor thread included). Zero leaves the
	// child the host's. Elsewhere it is ignored.
	TimerSlack time.Duration
}

func (l Launcher) logger() *slog.Logger {
	if l.Logger != nil {
		return l.Logger
	}
	return slog.Default()
}

func (l Launcher) name() string {
	if l.Name != "" {
		return l.Name
	}
	return l.Path
}

func (l Launcher) validate() error {
	if l.Path == "" {
		return errors.New("pluginkit: Launcher.Path is empty")
	}
	if l.Checksum != "" {
		if b, err := hex.DecodeString(l.Checksum); err != nil || len(b) != sha256.Size {
			return fmt.Errorf("pluginkit: plugin %q: Checksum must be 64 hex digits (a SHA-256), got %q", l.name(), l.Checksum)
		}
	}
	return nil
}

// secureConfig is go-plugin's pre-start integrity check.
func (l Launcher) secureConfig() *plugin.SecureConfig {
	if l.Checksum == "" {
		return nil
	}
	sum, _ := hex.DecodeString(l.Checksum) // validated
	return &plugin.SecureConfig{Checksum: sum, Hash: sha256.New()}
}

// checksumError replaces go-plugin's terse "checksums did not match" with
// one that says which file, what was expected and what was found.
func (l Launcher) checksumError(err error) error {
	if !errors.Is(err, plugin.ErrChecksumsDoNotMatch) {
		return err
	}
	got := "unreadable"
	if f, ferr := os.Open(l.Path); ferr == nil {
		h := sha256.New()
		if _, cerr := io.Copy(h, f); cerr == nil {
			got = hex.EncodeToString(h.Sum(nil))
		}
		f.Close()
	}
	return fmt.Errorf("%w: %s: want %s, have %s; re-pin the checksum if the binary was upgraded on purpose",
		ErrChecksum, l.Path, strings.ToLower(l.Checksum), got)
}

// command is the child's command line and environment: the host's log
// level, then the host's environment (which may override it), then
// Launcher.Env. go-plugin appends its own variables after these
// (SkipHostEnv: it would otherwise put the host's environment after
// Launcher.Env, and the last of a duplicated variable is the one a child
// sees).
func (l Launcher) command() *exec.Cmd {
	cmd := exec.Command(l.Path, l.Args...)
	cmd.Env = append(append([]string{hostLevelEnv(l.logger())}, os.Environ()...), l.Env...)
	return cmd
}
