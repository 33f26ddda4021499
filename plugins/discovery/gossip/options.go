package gossip

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/tarzan-net/tarzan/sdk/discovery"
)

// Defaults of the options.
const (
	DefaultInterval = time.Second
	DefaultFanout   = 3
	DefaultMaxBytes = 16 << 10
	DefaultExpiry   = time.Duration(0)
)

type options struct {
	bootstrap []netip.AddrPort
	interval  time.Duration
	fanout    int
	maxBytes  int
	expiry    time.Duration
}

func parseOptions(in map[string]string) (options, error) {
	o := options{interval: DefaultInterval, fanout: DefaultFanout, maxBytes: DefaultMaxBytes, expiry: DefaultExpiry}
	for key, value := range in {
		value = strings.TrimSpace(value)
		switch key {
		case "bootstrap":
			for entry := range strings.SplitSeq(value, ",") {
				entry = strings.TrimSpace(entry)
				if entry == "" {
					continue
				}
				ap, err := netip.ParseAddrPort(entry)
				if err != nil {
					return o, fmt.Errorf("gossip discovery: option \"bootstrap\": %q: want an IP literal host:port: %w", entry, err)
				}
				if ap.Port() == 0 || ap.Addr().IsUnspecified() || ap.Addr().IsMulticast() {
					return o, fmt.Errorf("gossip discovery: option \"bootstrap\": %q cannot be contacted", entry)
				}
				o.bootstrap = append(o.bootstrap, ap)
			}
		case "interval", "expiry":
			d, err := time.ParseDuration(value)
			if err != nil {
				return o, fmt.Errorf("gossip discovery: option %q: %w", key, err)
			}
			if key == "interval" {
				if d <= 0 {
					return o, fmt.Errorf("gossip discovery: option \"interval\": %s is not positive", value)
				}
				o.interval = d
			} else {
				if d < 0 {
					return o, fmt.Errorf("gossip discovery: option \"expiry\": %s is negative", value)
				}
				o.expiry = d
			}
		case "fanout", "max_bytes":
			n, err := strconv.Atoi(value)
			if err != nil {
				return o, fmt.Errorf("gossip discovery: option %q: %w", key, err)
			}
			if key == "fanout" {
				if n < 1 || n > 64 {
					return o, fmt.Errorf("gossip discovery: option \"fanout\": %d, want 1..64", n)
				}
				o.fanout = n
			} else {
				// A round must fit at least one full message.
				if n < discovery.MaxMessage {
					return o, fmt.Errorf("gossip discovery: option \"max_bytes\": %d, want at least %d", n, discovery.MaxMessage)
				}
				o.maxBytes = n
			}
		default:
			return o, fmt.Errorf("gossip discovery: unknown option %q (want bootstrap, interval, fanout, max_bytes, expiry)", key)
		}
	}
	return o, nil
}
