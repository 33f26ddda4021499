package sidebyside

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"
)

// TorControl is a minimal client of Tor's control protocol (control-spec):
// cookie authentication, GETINFO, and timing circuit builds.
type TorControl struct {
	c net.Conn
	r *bufio.Reader
}

// DialTorControl connects to a control port and authenticates with the
// cookie file.
func DialTorControl(ctx context.Context, addr netip.AddrPort, cookieFile string) (*TorControl, error) {
	cookie, err := os.ReadFile(cookieFile)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return nil, err
	}
	tc := &TorControl{c: c, r: bufio.NewReader(quickAckReader{c})}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if _, err := tc.Do("AUTHENTICATE " + hex.EncodeToString(cookie)); err != nil {
		c.Close()
		return nil, fmt.Errorf("tor control %s: %w", addr, err)
	}
	return tc, nil
}

// quickAckReader acknowledges every read at once. tor does not set
// TCP_NODELAY on its control connections, so without this an event
// written while tor's previous write is still unacknowledged waits for
// our delayed ACK (40 ms on Linux): a circuit's BUILT event arrived
// ~40 ms after tor sent it, which inflated every circuit setup time.
type quickAckReader struct{ c net.Conn }

func (q quickAckReader) Read(b []byte) (int, error) {
	quickAck(q.c)
	return q.c.Read(b)
}

// Close closes the connection.
func (tc *TorControl) Close() error { return tc.c.Close() }

// readReply reads one reply (skipping asynchronous 650 events, which it
// hands to events if not nil) and returns its lines without the status
// prefix; a status other than 250 is an error.
func (tc *TorControl) readReply(events func(string)) ([]string, error) {
	var lines []string
	for {
		l, err := tc.r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		l = strings.TrimRight(l, "\r\n")
		if len(l) < 4 {
			return nil, fmt.Errorf("short control reply line %q", l)
		}
		code, sep, text := l[:3], l[3], l[4:]
		if code == "650" {
			if sep == '+' { // data event: skip to "."
				for l != "." {
					if l, err = tc.r.ReadString('\n'); err != nil {
						return nil, err
					}
					l = strings.TrimRight(l, "\r\n")
				}
			} else if events != nil {
				events(text)
			}
			continue
		}
		if code != "250" {
			return nil, fmt.Errorf("tor control: %s %s", code, text)
		}
		lines = append(lines, text)
		if sep == '+' {
			for {
				d, err := tc.r.ReadString('\n')
				if err != nil {
					return nil, err
				}
				if d = strings.TrimRight(d, "\r\n"); d == "." {
					break
				}
				lines = append(lines, d)
			}
		}
		if sep == ' ' {
			return lines, nil
		}
	}
}

// Do sends one command and reads its reply.
func (tc *TorControl) Do(cmd string) ([]string, error) {
	return tc.do(cmd, nil)
}

func (tc *TorControl) do(cmd string, events func(string)) ([]string, error) {
	if _, err := fmt.Fprintf(tc.c, "%s\r\n", cmd); err != nil {
		return nil, err
	}
	return tc.readReply(events)
}

// GetInfo returns the value of one GETINFO key.
func (tc *TorControl) GetInfo(key string) (string, error) {
	lines, err := tc.Do("GETINFO " + key)
	if err != nil {
		return "", err
	}
	for _, l := range lines {
		if v, ok := strings.CutPrefix(l, key+"="); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("GETINFO %s: no value in %q", key, lines)
}

// BuildCircuit asks tor for a new general-purpose circuit of its own
// choosing (EXTENDCIRCUIT 0), waits for it to be BUILT, closes it, and
// returns how long it took from the command to the BUILT event.
func (tc *TorControl) BuildCircuit(ctx context.Context) (time.Duration, error) {
	if dl, ok := ctx.Deadline(); ok {
		tc.c.SetDeadline(dl)
	}
	if _, err := tc.Do("SETEVENTS CIRC"); err != nil {
		return 0, err
	}
	defer tc.Do("SETEVENTS")
	var seen []string // CIRC events before the reply names the circuit
	start := time.Now()
	lines, err := tc.do("EXTENDCIRCUIT 0", func(e string) { seen = append(seen, e) })
	if err != nil {
		return 0, err
	}
	id, ok := strings.CutPrefix(lines[0], "EXTENDED ")
	if !ok {
		return 0, fmt.Errorf("EXTENDCIRCUIT 0: unexpected reply %q", lines[0])
	}
	id = strings.Fields(id)[0]
	for {
		for _, e := range seen {
			f := strings.Fields(e)
			if len(f) < 3 || f[0] != "CIRC" || f[1] != id {
				continue
			}
			switch f[2] {
			case "BUILT":
				took := time.Since(start)
				tc.Do("CLOSECIRCUIT " + id)
				return took, nil
			case "FAILED", "CLOSED":
				return 0, fmt.Errorf("circuit %s: %s", id, e)
			}
		}
		seen = seen[:0]
		l, err := tc.r.ReadString('\n')
		if err != nil {
			return 0, fmt.Errorf("waiting for circuit %s: %w", id, err)
		}
		if t, ok := strings.CutPrefix(strings.TrimRight(l, "\r\n"), "650 "); ok {
			seen = append(seen, t)
		}
	}
}
