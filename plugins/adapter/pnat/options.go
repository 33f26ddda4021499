package pnat

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/exitpolicy"
)

// Option keys (the [adapter.options] table) and their defaults.
const (
	OptIdleTimeout    = "idle_timeout"         // UDP, ICMP, DNS and idle mappings; default 2m
	OptTCPIdleTimeout = "tcp_idle_timeout"     // TCP with no data either way; default 10m
	OptMaxFlows       = "max_flows_per_tunnel" // open flows per tunnel; default 256
	OptAllowLoopback  = "allow_loopback"       // "true" lifts the local-destination guard (tests only)
	OptDialTimeout    = "dial_timeout"         // outbound TCP connect timeout; default 10s
	OptBind           = "bind"                 // local address for outgoing connections; default any
	OptAlias          = "alias"                // "A=B,...": dial B for connections to A (test networks; see dialer.go)

	// Deprecated: the core hands its exit policy and DNS addresses to
	// Open (adapter.Config.ExitPolicy, DNS); node.toml sets them as
	// exit.policy and tunnels.dns. Still read for one version, with a
	// warning at Open, and then they win over what the core sent (as
	// before, the node's effective policy is the core's and this one
	// together: the core checks its own before the packet gets here).
	OptPolicy  = "policy"   // exit policy rules separated by ";"
	OptDNSAddr = "dns_addr" // comma-separated resolver addresses; "none" disables
)

// DefaultDNSAddrs are the resolver addresses the client side hands out
// when the core gives none (adapter.DefaultDNS).
var DefaultDNSAddrs = adapter.DefaultDNS()

type config struct {
	idle, tcpIdle, dialTimeout time.Duration
	maxFlows                   int
	policy                     *exitpolicy.Policy // nil until Open, unless OptPolicy set it
	allowLoopback              bool
	dnsAddrs                   []netip.Addr
	policySet                  bool // OptPolicy given: a reload cannot change the policy (reload.go)
	dnsSet                     bool // OptDNSAddr given (dnsAddrs may then be empty: "none")
	bind                       netip.Addr
	alias                      map[netip.Addr]netip.Addr
}

func parseOptions(opts map[string]string) (config, error) {
	c := config{
		idle:        2 * time.Minute,
		tcpIdle:     10 * time.Minute,
		dialTimeout: 10 * time.Second,
		maxFlows:    256,
		dnsAddrs:    DefaultDNSAddrs,
	}
	for k, v := range opts {
		var err error
		switch k {
		case OptIdleTimeout:
			c.idle, err = positiveDuration(v)
		case OptTCPIdleTimeout:
			c.tcpIdle, err = positiveDuration(v)
		case OptDialTimeout:
			c.dialTimeout, err = positiveDuration(v)
		case OptMaxFlows:
			c.maxFlows, err = strconv.Atoi(v)
			if err == nil && c.maxFlows < 1 {
				err = fmt.Errorf("must be at least 1")
			}
		case OptPolicy:
			c.policy, err = ParsePolicyOption(v)
			c.policySet = true
		case OptAllowLoopback:
			c.allowLoopback, err = strconv.ParseBool(v)
		case OptDNSAddr:
			c.dnsAddrs, err = ParseDNSOption(v)
			c.dnsSet = true
		case OptBind:
			c.bind, err = netip.ParseAddr(strings.TrimSpace(v))
		case OptAlias:
			c.alias, err = parseAlias(v)
		default:
			return c, fmt.Errorf("pnat: unknown option %q", k)
		}
		if err != nil {
			return c, fmt.Errorf("pnat: option %s=%q: %w", k, v, err)
		}
	}
	return c, nil
}

func positiveDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err == nil && d <= 0 {
		err = fmt.Errorf("must be positive")
	}
	return d, err
}

// ParsePolicyOption reads the deprecated OptPolicy value; package config
// uses it to name node.toml's line when the value is bad.
func ParsePolicyOption(v string) (*exitpolicy.Policy, error) {
	return exitpolicy.Parse(strings.Split(v, ";"))
}

// fromCore takes the node's exit policy and DNS addresses from what the
// core opened the adapter with, unless a deprecated option set them, and
// says which deprecated options were used.
func (c *config) fromCore(cfg adapter.Config) (deprecated []string) {
	if c.policy != nil {
		deprecated = append(deprecated, OptPolicy)
	} else if c.policy = cfg.ExitPolicy; c.policy == nil {
		c.policy = exitpolicy.Default()
	}
	if c.dnsSet {
		deprecated = append(deprecated, OptDNSAddr)
	} else if len(cfg.DNS) > 0 {
		c.dnsAddrs = make([]netip.Addr, len(cfg.DNS))
		for i, a := range cfg.DNS {
			c.dnsAddrs[i] = a.Unmap()
		}
	}
	return deprecated
}

// ParseDNSOption reads the deprecated OptDNSAddr value (see
// ParsePolicyOption).
func ParseDNSOption(v string) ([]netip.Addr, error) {
	if strings.TrimSpace(v) == "none" {
		return nil, nil
	}
	var out []netip.Addr
	for _, s := range strings.Split(v, ",") {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return nil, err
		}
		out = append(out, a.Unmap())
	}
	return out, nil
}
