package builtin

import (
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
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
)

// schemas are the shipped plugins' option schemas by kind and name
// (each package's OptionSchema; schema_test.go checks that every
// registered plugin has one and that its factory agrees with it).
var schemas = map[string]map[string]*pluginkit.Schema{
	KindTransport: {"udp": &udp.OptionSchema, "dtls": &dtls.OptionSchema, "kcp": &kcp.OptionSchema, "pt": &pt.OptionSchema},
	KindDiscovery: {"static": &static.OptionSchema, "gossip": &gossip.OptionSchema},
	KindCover: {none.Name: &none.OptionSchema, constant.Name: &constant.OptionSchema,
		balanced.Name: &balanced.OptionSchema, poisson.Name: &poisson.OptionSchema},
	KindAdapter: {"socks": &socks.OptionSchema, "tun": &tun.OptionSchema, "pnat": &pnat.OptionSchema},
}

// Schema returns the option schema of the shipped plugin kind/name, or
// nil if there is no such plugin.
func Schema(kind, name string) *pluginkit.Schema {
	return schemas[kind][name]
}
