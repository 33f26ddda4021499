package initcfg

import (
	"flag"
	"fmt"
	"strings"
)

// Usage is `tarzan init`'s help text.
const Usage = `init [-dir DIR] [-listen IP:PORT] [-socks [IP:PORT] | -tun] [-exit]
            [-bootstrap IP:PORT,... | -peers IP:PORT,...]

Writes DIR/node.toml and an identity key for one of the common roles.

A 3-hop tunnel needs at least FOUR nodes in four distinct /16 domains
(a client plus three others; a tunnel never uses two hops of one /16, and
the client is not one of its own hops). With fewer, tunnels fail with
"no tunnel: not enough nodes" in the client's log. To try it on one
machine, give each node its own 127.N.0.1 (README "Your first network").
`

// SOCKSFlag is -socks with an optional address: "-socks" alone listens
// on DefaultSOCKS.
type SOCKSFlag struct{ Addr *string }

func (s SOCKSFlag) String() string {
	if s.Addr == nil {
		return ""
	}
	return *s.Addr
}

// IsBoolFlag lets "-socks" stand alone.
func (s SOCKSFlag) IsBoolFlag() bool { return true }

// Set takes "true" (the flag alone) as DefaultSOCKS.
func (s SOCKSFlag) Set(v string) error {
	if v == "true" {
		v = DefaultSOCKS
	}
	if v != "false" {
		*s.Addr = v
	}
	return nil
}

// Parse parses args with fs (parse is the caller's fs.Parse wrapper),
// taking "-socks IP:PORT" (the flag followed by its optional address) as
// "-socks=IP:PORT".
func (r *Roles) Parse(fs *flag.FlagSet, parse func(*flag.FlagSet, []string) error, args []string) error {
	for {
		if err := parse(fs, args); err != nil {
			return err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return nil
		}
		done := len(args) - len(rest)
		if done == 0 || strings.TrimLeft(args[done-1], "-") != "socks" {
			return fmt.Errorf("unexpected argument %q", rest[0])
		}
		r.SOCKS, args = rest[0], rest[1:]
	}
}
