package socks

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tarzan-net/tarzan/sdk/adapter"
)

// Defaults for the options (see the package comment).
const (
	defaultListen         = "127.0.0.1:1080"
	defaultMTU            = adapter.InnerMTU
	defaultIdleTimeout    = 10 * time.Minute
	defaultConnectTimeout = 30 * time.Second
)

// options are the parsed plugin options.
type options struct {
	listen         netip.AddrPort
	allowRemote    bool
	allowLoopback  bool         // pass loopback destinations to the exit (demo networks on loopback)
	addresses      []netip.Addr // inner addresses of every group's stack
	addressSet     bool         // "address" given: Config.Addresses does not override it
	dns            []netip.Addr
	dnsSet         bool // "dns" given: Config.DNS does not override it
	isolateDest    bool
	mtu            int
	mtuSet         bool
	idleTimeout    time.Duration
	connectTimeout time.Duration
	optimistic     bool // reply to CONNECT before the tunnelled connection is up (see connect.go)
}

var knownOptions = []string{"address", "allow_loopback", "allow_remote", "connect_timeout", "dns", "idle_timeout", "isolate", "listen", "mtu", "optimistic"}

func parseOptions(m map[string]string) (options, error) {
	o := options{
		listen:         netip.MustParseAddrPort(defaultListen),
		addresses:      []netip.Addr{adapter.ClientPrefix4.Addr(), adapter.ClientPrefix6.Addr()},
		dns:            []netip.Addr{adapter.DNSv4},
		mtu:            defaultMTU,
		idleTimeout:    defaultIdleTimeout,
		connectTimeout: defaultConnectTimeout,
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys) // report the same bad key first every time
	for _, k := range keys {
		v := strings.TrimSpace(m[k])
		var err error
		switch k {
		case "listen":
			o.listen, err = netip.ParseAddrPort(v)
		case "allow_remote":
			o.allowRemote, err = strconv.ParseBool(v)
		case "allow_loopback":
			o.allowLoopback, err = strconv.ParseBool(v)
		case "address":
			o.addresses, err = parseAddrList(v)
			o.addressSet = true
		case "dns":
			o.dns, err = parseAddrList(v)
			o.dnsSet = true
		case "isolate":
			o.isolateDest, err = parseIsolate(v)
		case "mtu":
			o.mtu, err = strconv.Atoi(v)
			if err == nil && (o.mtu < adapter.InnerMTU || o.mtu > 65535) {
				err = fmt.Errorf("must be in %d..65535 (a tunnel's packets must fit)", adapter.InnerMTU)
			}
			o.mtuSet = true
		case "idle_timeout":
			o.idleTimeout, err = parsePositiveDuration(v)
		case "connect_timeout":
			o.connectTimeout, err = parsePositiveDuration(v)
		case "optimistic":
			o.optimistic, err = strconv.ParseBool(v)
		default:
			return options{}, fmt.Errorf("socks: unknown option %q (known: %s)", k, strings.Join(knownOptions, ", "))
		}
		if err != nil {
			return options{}, fmt.Errorf("socks: option %s = %q: %w", k, v, err)
		}
	}
	if !o.listen.Addr().IsLoopback() && !o.allowRemote {
		return options{}, fmt.Errorf("socks: option listen = %s is not a loopback address; set allow_remote = \"true\" to accept other hosts (anyone who reaches the port can use your tunnels)", o.listen)
	}
	return o, nil
}

// parseAddrList reads "a,b,c" as IP addresses (a prefix length is
// accepted and ignored, so "100.64.0.2/10" works too).
func parseAddrList(s string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Addr())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, err
		}
		if a.Zone() != "" {
			return nil, fmt.Errorf("%s: zones are not allowed", a)
		}
		out = append(out, a.Unmap())
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no address")
	}
	return out, nil
}

func parseIsolate(s string) (dest bool, err error) {
	switch strings.ReplaceAll(s, " ", "") {
	case "auth":
		return false, nil
	case "auth,dest", "dest,auth":
		return true, nil
	}
	return false, fmt.Errorf(`want "auth" or "auth,dest"`)
}

func parsePositiveDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err == nil && d <= 0 {
		err = fmt.Errorf("must be positive")
	}
	return d, err
}
