package netstack

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/tarzan-net/tarzan/sdk/adapter"
)

// options are the parsed adapter options.
type options struct {
	addresses  []netip.Addr // inner addresses of every group's stack
	addressSet bool         // "address" given: Config.Addresses does not override it
	dns        []netip.Addr
	dnsSet     bool // "dns" given: Config.DNS does not override it
	mtu        int
	mtuSet     bool
}

var knownOptions = []string{"address", "dns", "mtu"}

func parseOptions(m map[string]string) (options, error) {
	o := options{
		addresses: []netip.Addr{adapter.ClientPrefix4.Addr(), adapter.ClientPrefix6.Addr()},
		dns:       adapter.DefaultDNS(),
		mtu:       adapter.InnerMTU,
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
		case "address":
			o.addresses, err = parseAddrList(v)
			o.addressSet = true
		case "dns":
			o.dns, err = parseAddrList(v)
			o.dnsSet = true
		case "mtu":
			o.mtu, err = strconv.Atoi(v)
			if err == nil && (o.mtu < 1280 || o.mtu > 65535) {
				err = fmt.Errorf("must be in 1280..65535 (IPv6 needs 1280)")
			}
			o.mtuSet = true
		default:
			return options{}, fmt.Errorf("netstack: unknown option %q (known: %s)", k, strings.Join(knownOptions, ", "))
		}
		if err != nil {
			return options{}, fmt.Errorf("netstack: option %s = %q: %w", k, v, err)
		}
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
			out = append(out, p.Addr().Unmap())
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
