// Package builtin is the registry of the plugins shipped inside the tarzan
// binary. The same factories serve both ways of running them: called
// directly for `inprocess = true`, or inside a child started as
// `tarzan plugin serve KIND NAME`.
package builtin

import (
	"sort"

	"github.com/tarzan-net/tarzan/plugins/adapter/pnat"
	"github.com/tarzan-net/tarzan/plugins/adapter/socks"
	"github.com/tarzan-net/tarzan/plugins/adapter/tun"
	"github.com/tarzan-net/tarzan/plugins/cover/balanced"
	"github.com/tarzan-net/tarzan/plugins/cover/constant"
	"github.com/tarzan-net/tarzan/plugins/cover/none"
	"github.com/tarzan-net/tarzan/plugins/cover/poisson"
	"github.com/tarzan-net/tarzan/plugins/discovery/gossip"
	"github.com/tarzan-net/tarzan/plugins/discovery/static"
	"github.com/tarzan-net/tarzan/plugins/transport/dtls"
	"github.com/tarzan-net/tarzan/plugins/transport/kcp"
	"github.com/tarzan-net/tarzan/plugins/transport/pt"
	"github.com/tarzan-net/tarzan/plugins/transport/udp"
	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/cover"
	"github.com/tarzan-net/tarzan/sdk/discovery"
	"github.com/tarzan-net/tarzan/sdk/transport"
)

// Plugin kinds, as used on the command line and in node.toml sections.
const (
	KindTransport = "transport"
	KindDiscovery = "discovery"
	KindCover     = "cover"
	KindAdapter   = "adapter"
)

// Transports are the shipped transports by name.
var Transports = map[string]transport.Factory{
	"udp":  udp.New,
	"dtls": dtls.New,
	"kcp":  kcp.New,
	"pt":   pt.New,
}

// Discoveries are the shipped discovery backends by name.
var Discoveries = map[string]discovery.Factory{
	"static": static.New,
	"gossip": gossip.New,
}

// Covers are the shipped cover policies by name.
var Covers = map[string]cover.Factory{
	none.Name:     none.New,
	constant.Name: constant.New,
	balanced.Name: balanced.New,
	poisson.Name:  poisson.New,
}

// Adapters are the shipped IP adapters by name: client (socks, tun) and
// exit (pnat).
var Adapters = map[string]adapter.Factory{
	"socks": socks.New,
	"tun":   tun.New,
	"pnat":  pnat.New,
}

// Names lists the shipped plugin names of a kind, sorted.
func Names(kind string) []string {
	var out []string
	switch kind {
	case KindTransport:
		for k := range Transports {
			out = append(out, k)
		}
	case KindDiscovery:
		for k := range Discoveries {
			out = append(out, k)
		}
	case KindCover:
		for k := range Covers {
			out = append(out, k)
		}
	case KindAdapter:
		for k := range Adapters {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
