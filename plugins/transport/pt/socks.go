package pt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"
)

// splitArgs splits an SMETHOD ARGS value (k=v,k=v; ',' '=' and '\' escaped
// with '\') into its unescaped pairs.
func splitArgs(s string) ([][2]string, error) {
	var out [][2]string
	var key, cur strings.Builder
	inVal := false
	flush := func() error {
		if !inVal {
			if cur.Len() == 0 && key.Len() == 0 {
				return nil
			}
			return fmt.Errorf("argument %q has no '='", cur.String())
		}
		out = append(out, [2]string{key.String(), cur.String()})
		key.Reset()
		cur.Reset()
		inVal = false
		return nil
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			i++
			if i == len(s) {
				return nil, errors.New("arguments end in a lone '\\'")
			}
			cur.WriteByte(s[i])
		case c == '=' && !inVal:
			key.WriteString(cur.String())
			cur.Reset()
			inVal = true
		case c == ',':
			if err := flush(); err != nil {
				return nil, err
			}
		default:
			cur.WriteByte(c)
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

// socksArgs is the per-connection argument string a PT client reads from
// the SOCKS5 username and password: k=v;k=v with '\', '=' and ';' escaped.
func socksArgs(pairs [][2]string) string {
	esc := strings.NewReplacer(`\`, `\\`, `=`, `\=`, `;`, `\;`)
	var parts []string
	for _, kv := range pairs {
		parts = append(parts, esc.Replace(kv[0])+"="+esc.Replace(kv[1]))
	}
	return strings.Join(parts, ";")
}

// socksDial connects to dst through the PT client's SOCKS5 port, passing
// args as the username (and password, past 255 bytes) as pt-spec asks.
func socksDial(proxy, dst netip.AddrPort, args string, timeout time.Duration) (net.Conn, error) {
	if len(args) > 2*255 {
		return nil, fmt.Errorf("PT arguments are %d bytes; SOCKS5 carries at most 510", len(args))
	}
	c, err := net.DialTimeout("tcp", proxy.String(), timeout)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(timeout))
	if err := socksHandshake(c, dst, args); err != nil {
		c.Close()
		return nil, fmt.Errorf("socks5 via %v to %v: %w", proxy, dst, err)
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

func socksHandshake(c net.Conn, dst netip.AddrPort, args string) error {
	method := byte(0x00)
	if args != "" {
		method = 0x02
	}
	if _, err := c.Write([]byte{5, 1, method}); err != nil {
		return err
	}
	var rep [2]byte
	if _, err := io.ReadFull(c, rep[:]); err != nil {
		return err
	}
	if rep[0] != 5 || rep[1] != method {
		return fmt.Errorf("proxy chose method %#x; want %#x", rep[1], method)
	}
	if args != "" {
		user, pass := args, "\x00"
		if len(args) > 255 {
			user, pass = args[:255], args[255:]
		}
		req := []byte{1, byte(len(user))}
		req = append(req, user...)
		req = append(req, byte(len(pass)))
		req = append(req, pass...)
		if _, err := c.Write(req); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, rep[:]); err != nil {
			return err
		}
		if rep[1] != 0 {
			return fmt.Errorf("proxy refused the PT arguments (status %d)", rep[1])
		}
	}
	req := []byte{5, 1, 0}
	ip := dst.Addr().Unmap()
	if ip.Is4() {
		req = append(req, 1)
	} else {
		req = append(req, 4)
	}
	req = append(req, ip.AsSlice()...)
	req = binary.BigEndian.AppendUint16(req, dst.Port())
	if _, err := c.Write(req); err != nil {
		return err
	}
	var head [4]byte
	if _, err := io.ReadFull(c, head[:]); err != nil {
		return err
	}
	if head[1] != 0 {
		return fmt.Errorf("connect refused (SOCKS reply %d)", head[1])
	}
	skip := 0
	switch head[3] {
	case 1:
		skip = 4 + 2
	case 4:
		skip = 16 + 2
	case 3:
		var l [1]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return err
		}
		skip = int(l[0]) + 2
	default:
		return fmt.Errorf("bad SOCKS address type %d", head[3])
	}
	_, err := io.ReadFull(c, make([]byte, skip))
	return err
}
