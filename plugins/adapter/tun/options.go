package tun

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/tarzan-net/tarzan/sdk/adapter"
)

const (
	defaultName     = "tarzan0"
	defaultRoutes   = "0.0.0.0/0,::/0"
	defaultMTU      = adapter.InnerMTU
	defaultStateDir = "/run/tarzan"
)

// The address defaults are the SDK's (sdk/adapter facts.go).
var (
	defaultAddress  = adapter.ClientPrefix4.String()
	defaultAddress6 = adapter.ClientPrefix6.String()
	defaultDNS      = adapter.DNSv4.String()
)

type options struct {
	name     string
	addrs    []netip.Prefix // the TUN's addresses (IPv4 and/or IPv6)
	addrsSet bool           // "address" or "address6" given: Config.Addresses does not override
	dns      []netip.Addr
	dnsSet   bool           // "dns" given: Config.DNS does not override it
	routes   []netip.Prefix // as configured; /0 is split in two /1 when installed
	mtu      int
	mtuSet   bool
	stateDir string
}

var knownOptions = []string{"address", "address6", "dns", "mtu", "name", "routes", "state_dir"}

func parseOptions(m map[string]string) (options, error) {
	o := options{name: defaultName, mtu: defaultMTU, stateDir: defaultStateDir}
	addr4, addr6 := defaultAddress, defaultAddress6
	routes, dns := defaultRoutes, defaultDNS
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := strings.TrimSpace(m[k])
		var err error
		switch k {
		case "name":
			if v == "" || len(v) >= 16 || strings.ContainsAny(v, "/ \t\n:") {
				err = fmt.Errorf("want an interface name of 1..15 characters without '/', ':' or spaces")
			}
			o.name = v
		case "address":
			addr4, o.addrsSet = v, true
		case "address6":
			addr6, o.addrsSet = v, true
		case "dns":
			dns, o.dnsSet = v, true
		case "routes":
			routes = v
		case "mtu":
			o.mtu, err = strconv.Atoi(v)
			if err == nil && (o.mtu < adapter.InnerMTU || o.mtu > 65535) {
				err = fmt.Errorf("must be in %d..65535 (a tunnel's packets must fit)", adapter.InnerMTU)
			}
			o.mtuSet = true
		case "state_dir":
			if v == "" {
				err = fmt.Errorf("must not be empty")
			}
			o.stateDir = v
		default:
			return options{}, fmt.Errorf("tun: unknown option %q (known: %s)", k, strings.Join(knownOptions, ", "))
		}
		if err != nil {
			return options{}, fmt.Errorf("tun: option %s = %q: %w", k, v, err)
		}
	}
	for _, f := range []struct {
		key, val string
		is4      bool
	}{{"address", addr4, true}, {"address6", addr6, false}} {
		if f.val == "" {
			continue // "" turns a family off
		}
		p, err := netip.ParsePrefix(f.val)
		if err != nil || p.Addr().Is4() != f.is4 || p.Addr().Zone() != "" {
			return options{}, fmt.Errorf("tun: option %s = %q: want an IPv%s address with prefix length", f.key, f.val, map[bool]string{true: "4", false: "6"}[f.is4])
		}
		o.addrs = append(o.addrs, p)
	}
	if len(o.addrs) == 0 {
		return options{}, fmt.Errorf("tun: options address and address6 are both empty")
	}
	var err error
	if o.routes, err = parsePrefixes(routes); err != nil {
		return options{}, fmt.Errorf("tun: option routes = %q: %w", routes, err)
	}
	for _, d := range strings.Split(dns, ",") {
		if d = strings.TrimSpace(d); d == "" {
			continue
		}
		a, err := netip.ParseAddr(d)
		if err != nil {
			return options{}, fmt.Errorf("tun: option dns = %q: %w", dns, err)
		}
		o.dns = append(o.dns, a)
	}
	return o, nil
}

func parsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// tunnelRoutes expands the configured routes for installation: a default
// route becomes two /1 halves, which win over the system's default route
// by length without replacing it, so it is still there for the node's own
// links and comes back untouched when the adapter goes. Families the TUN
// has no address for are left out.
func tunnelRoutes(routes, addrs []netip.Prefix) []netip.Prefix {
	has4, has6 := false, false
	for _, a := range addrs {
		has4 = has4 || a.Addr().Is4()
		has6 = has6 || a.Addr().Is6()
	}
	var out []netip.Prefix
	for _, r := range routes {
		if (r.Addr().Is4() && !has4) || (r.Addr().Is6() && !has6) {
			continue
		}
		switch {
		case r.Bits() == 0 && r.Addr().Is4():
			out = append(out, netip.MustParsePrefix("0.0.0.0/1"), netip.MustParsePrefix("128.0.0.0/1"))
		case r.Bits() == 0:
			out = append(out, netip.MustParsePrefix("::/1"), netip.MustParsePrefix("8000::/1"))
		default:
			out = append(out, r)
		}
	}
	return out
}
