package adapterplugin

import (
	"fmt"
	"net/netip"

	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/adapter/adapterplugin/internal/adapterpb"
	"github.com/tarzan-net/tarzan/sdk/exitpolicy"
)

// openRequest is cfg on the wire. The exit policy crosses as its rules in
// the policy syntax, one per element, and is parsed once on the plugin's
// side (configOf): the rules are what the core enforces, not the shorter
// summary its descriptor publishes.
func openRequest(cfg adapter.Config) *adapterpb.OpenRequest {
	req := &adapterpb.OpenRequest{Mtu: int32(cfg.MTU), Options: cfg.Options}
	for _, p := range cfg.Addresses {
		req.Addresses = append(req.Addresses, p.String())
	}
	for _, p := range cfg.Exclude {
		req.Exclude = append(req.Exclude, p.String())
	}
	for _, a := range cfg.DNS {
		req.Dns = append(req.Dns, a.String())
	}
	if cfg.ExitPolicy != nil {
		req.HasExitPolicy = true
		for _, r := range cfg.ExitPolicy.Rules {
			req.ExitPolicy = append(req.ExitPolicy, r.String())
		}
	}
	return req
}

// configOf reads an OpenRequest back into the Config the host opened with.
func configOf(req *adapterpb.OpenRequest) (adapter.Config, error) {
	cfg := adapter.Config{MTU: int(req.GetMtu()), Options: req.GetOptions()}
	var err error
	if cfg.Addresses, err = prefixes(req.GetAddresses()); err != nil {
		return cfg, err
	}
	if cfg.Exclude, err = prefixes(req.GetExclude()); err != nil {
		return cfg, err
	}
	for _, s := range req.GetDns() {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return cfg, fmt.Errorf("adapterplugin: bad DNS address: %w", err)
		}
		cfg.DNS = append(cfg.DNS, a)
	}
	if req.GetHasExitPolicy() {
		if cfg.ExitPolicy, err = exitpolicy.Parse(req.GetExitPolicy()); err != nil {
			return cfg, fmt.Errorf("adapterplugin: exit policy: %w", err)
		}
	}
	return cfg, nil
}

func prefixes(ss []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("adapterplugin: bad prefix: %w", err)
		}
		out = append(out, p)
	}
	return out, nil
}
