package control

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Files a running node keeps in its data directory for its control API.
const (
	// AddrFile holds the API's address: "unix:/path/control.sock" or
	// "127.0.0.1:PORT".
	AddrFile = "control.addr"
	// CookieFile holds the secret a TCP control API wants in CookieHeader
	// (mode 0600, like Tor's control_auth_cookie). A Unix socket needs
	// none: its file mode (0600) already admits the owner only.
	CookieFile = "control.cookie"
	// SocketFile is the default Unix socket (node.control = "unix").
	SocketFile = "control.sock"
	// CookieHeader carries the cookie, hex, on every TCP request.
	CookieHeader = "X-Tarzan-Cookie"
	// UnixPrefix marks a Unix socket address in AddrFile and node.control.
	UnixPrefix = "unix:"
	// DefaultMaxKept bounds the tunnels kept open through the API.
	DefaultMaxKept = 32
)

// maxUnixPath is the shortest sun_path of the systems we run on (macOS and
// the BSDs: 104 bytes with the NUL; Linux has 108).
const maxUnixPath = 103

// NewCookie returns a fresh random cookie, hex.
func NewCookie() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// unixAddr is a Unix socket address that prints the way AddrFile holds
// it, so that ControlAddr().String() can be handed to a Client.
type unixAddr string

func (a unixAddr) Network() string { return "unix" }
func (a unixAddr) String() string  { return UnixPrefix + string(a) }

// unixListener removes its socket file when closed (once).
type unixListener struct {
	net.Listener
	path string
}

func (l *unixListener) Addr() net.Addr { return unixAddr(l.path) }

func (l *unixListener) Close() error {
	err := l.Listener.Close()
	os.Remove(l.path)
	return err
}

// listenUnix binds a Unix socket at path that only this user can connect
// to. The socket is bound inside a fresh 0700 directory, set to 0600 and
// only then moved into place, so no one else can connect in between. A
// socket left by a node that died is replaced; one that answers is not.
func listenUnix(path string) (net.Listener, error) {
	path, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	if len(dir)+len("/.ctl0000000000/s") > maxUnixPath || len(path) > maxUnixPath {
		return nil, fmt.Errorf("control: socket path %s is too long for a Unix socket (at most about %d bytes with room to bind it safely): use a shorter node.data_dir, or node.control = \"127.0.0.1:0\" (TCP with a cookie)", path, maxUnixPath-17)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("control: %s exists and is not a socket; move it away", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("control: another process answers on %s (is this node already running?)", path)
		}
		os.Remove(path) // stale: its node is gone
	}
	tmp, err := os.MkdirTemp(dir, ".ctl")
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	defer os.RemoveAll(tmp)
	bind := filepath.Join(tmp, "s")
	ln, err := net.Listen("unix", bind)
	if err != nil {
		return nil, fmt.Errorf("control: listening on %s: %w", path, err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(bind, 0o600); err == nil {
		err = os.Rename(bind, path)
	}
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("control: placing socket %s: %w", path, err)
	}
	return &unixListener{Listener: ln, path: path}, nil
}

// guard refuses what only a web page or another user would send: any
// Origin header (a browser's cross-site request; no legitimate client
// sends one), a Host that is not loopback or this listener (DNS
// rebinding), and, on TCP, a missing or wrong cookie.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o := r.Header.Get("Origin"); o != "" {
			s.refused.Add(1)
			writeErr(w, http.StatusForbidden, fmt.Errorf("refused: a request with an Origin header (%q); the control API does not serve web pages", o))
			return
		}
		if !s.hostAllowed(r.Host) {
			s.refused.Add(1)
			writeErr(w, http.StatusForbidden, fmt.Errorf("refused: Host %q is neither localhost nor this API's address (DNS rebinding?)", r.Host))
			return
		}
		if s.Cookie != "" && subtle.ConstantTimeCompare([]byte(r.Header.Get(CookieHeader)), []byte(s.Cookie)) != 1 {
			s.refused.Add(1)
			writeErr(w, http.StatusUnauthorized, fmt.Errorf("refused: missing or wrong %s header: send the contents of the node's %s", CookieHeader, CookieFile))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// hostAllowed accepts "localhost", a loopback address and the listener's
// own address, with or without a port.
func (s *Server) hostAllowed(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(h)
	if err != nil {
		return false
	}
	if a.Unmap().IsLoopback() {
		return true
	}
	if tcp, ok := s.ln.Addr().(*net.TCPAddr); ok {
		return tcp.AddrPort().Addr().Unmap() == a.Unmap()
	}
	return false
}

// ErrNotRunning: the data directory holds no control address.
var ErrNotRunning = errors.New("no control address recorded (is the node running?)")

// ClientForDir returns a client of the node whose data directory is dir,
// from its AddrFile and, for TCP, its CookieFile. hc, if not nil, makes
// the TCP requests (e.g. dialling inside a network namespace).
func ClientForDir(dir string, hc *http.Client) (*Client, error) {
	b, err := os.ReadFile(filepath.Join(dir, AddrFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, AddrFile), ErrNotRunning)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the control address: %w (only the node's user may use its control API)", err)
	}
	c := &Client{Addr: strings.TrimSpace(string(b)), HTTP: hc}
	if strings.HasPrefix(c.Addr, UnixPrefix) {
		return c, nil
	}
	ck, err := os.ReadFile(filepath.Join(dir, CookieFile))
	if err != nil {
		return nil, fmt.Errorf("reading the control cookie: %w (only the node's user may use its control API)", err)
	}
	c.Cookie = strings.TrimSpace(string(ck))
	return c, nil
}
