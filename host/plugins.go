package host

import (
	"fmt"
	"net/netip"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/control"
	"github.com/tarzan-net/tarzan/core/node"
	"github.com/tarzan-net/tarzan/plugins/builtin"
	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/adapter/adapterplugin"
	"github.com/tarzan-net/tarzan/sdk/cover"
	"github.com/tarzan-net/tarzan/sdk/cover/coverplugin"
	"github.com/tarzan-net/tarzan/sdk/discovery"
	"github.com/tarzan-net/tarzan/sdk/discovery/discoveryplugin"
	"github.com/tarzan-net/tarzan/sdk/transport/transportplugin"
)

// plugins are the plugins a configuration selects, opened. Until the node
// takes them over (node.New succeeded: node.Close closes what it was
// given) the host closes them itself, in reverse order of opening.
type plugins struct {
	transports []node.TransportSpec // the main transport first, then [[transport.extra]]
	discovery  discovery.Discovery
	cover      cover.Policy
	client     adapter.Adapter // nil: no client adapter
	exit       adapter.Adapter // nil: not an exit
	running    []running       // what the control API reports, in start order
	closers    []interface{ Close() error }
}

// running is one opened plugin as the control API lists it.
type running struct {
	kind, name string
	v          any
}

func (p *plugins) add(kind, name string, v interface{ Close() error }) {
	p.running = append(p.running, running{kind, name, v})
	p.closers = append(p.closers, v)
}

// close closes every opened plugin, last opened first.
func (p *plugins) close() {
	for i := len(p.closers) - 1; i >= 0; i-- {
		p.closers[i].Close()
	}
	p.closers = nil
}

// openPlugins opens cfg's plugins in the order a node uses them; clients
// are the caller's in-process client adapters (Options.Clients). On error
// it closes what it opened and returns an error naming the plugin.
func openPlugins(c catalog, cfg *config.Config, clients []adapter.Adapter) (_ *plugins, err error) {
	p := &plugins{}
	// The caller's adapters are ours from now on: close them, last, on error.
	for _, a := range clients {
		p.closers = append(p.closers, a)
	}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	if err := p.openTransports(c, cfg); err != nil {
		return nil, err
	}
	if p.discovery, err = open(c, builtin.KindDiscovery, cfg.Discovery, builtin.Discoveries, discoveryplugin.Launch); err != nil {
		return nil, fmt.Errorf("discovery %q: %w", cfg.Discovery.Name, err)
	}
	p.add(builtin.KindDiscovery, cfg.Discovery.Name, p.discovery)
	if p.cover, err = openCover(c, cfg); err != nil {
		return nil, err
	}
	p.cover = newSwapCover(p.cover)
	p.add(builtin.KindCover, cfg.Cover.Name, p.cover)
	if err := p.openClient(c, cfg, clients); err != nil {
		return nil, err
	}
	if err := p.openExit(c, cfg); err != nil {
		return nil, err
	}
	return p, nil
}

// openCover opens cfg's cover policy (at start, and again on a reload
// that changed it).
func openCover(c catalog, cfg *config.Config) (cover.Policy, error) {
	pol, err := open(c, builtin.KindCover, cfg.Cover.Plugin, builtin.Covers, coverplugin.Launch)
	if err != nil {
		return nil, fmt.Errorf("cover %q: %w", cfg.Cover.Name, err)
	}
	return pol, nil
}

func (p *plugins) openTransports(c catalog, cfg *config.Config) error {
	tr, err := open(c, builtin.KindTransport, cfg.Transport.Plugin, builtin.Transports, transportplugin.Launch)
	if err != nil {
		return fmt.Errorf("transport %q: %w", cfg.Transport.Name, err)
	}
	p.add(builtin.KindTransport, cfg.Transport.Name, tr)
	p.transports = []node.TransportSpec{{Transport: tr, Listen: cfg.Transport.Listen, Advertise: cfg.Transport.Advertise}}
	for _, e := range cfg.Transport.Extra {
		t, err := open(c, builtin.KindTransport, config.Plugin{Name: e.Name, Options: map[string]string{}}, builtin.Transports, transportplugin.Launch)
		if err != nil {
			return fmt.Errorf("transport.extra %q: %w", e.Name, err)
		}
		p.add(builtin.KindTransport, e.Name, t)
		spec := node.TransportSpec{Transport: t, Listen: e.Listen}
		if e.Advertise.IsValid() {
			spec.Advertise = []netip.AddrPort{e.Advertise}
		}
		p.transports = append(p.transports, spec)
	}
	return nil
}

// openClient opens cfg's client adapter or takes the caller's. The core
// runs one client adapter today (node.Options.ClientAdapter), so a config
// that names one and Options.Clients together are refused.
func (p *plugins) openClient(c catalog, cfg *config.Config, clients []adapter.Adapter) error {
	configured := cfg.Adapter.Name != "" || cfg.Adapter.Path != ""
	switch {
	case len(clients) > 1:
		return fmt.Errorf("%d client adapters in Options.Clients: the node runs at most one", len(clients))
	case len(clients) == 1 && configured:
		return fmt.Errorf("%s: [adapter] %q and Options.Clients both give a client adapter: the node runs at most one", cfg.File, cfg.Adapter.Name)
	case len(clients) == 1:
		p.client = clients[0]
		p.running = append(p.running, running{builtin.KindAdapter, p.client.Name(), p.client})
	case configured:
		a, err := open(c, builtin.KindAdapter, cfg.Adapter, builtin.Adapters, adapterplugin.Launch)
		if err != nil {
			return fmt.Errorf("adapter %q: %w", cfg.Adapter.Name, err)
		}
		p.client = a
		p.add(builtin.KindAdapter, cfg.Adapter.Name, a)
	}
	return nil
}

// openExit opens the exit adapter of an exit node.
func (p *plugins) openExit(c catalog, cfg *config.Config) error {
	if !cfg.Node.Exit {
		return nil
	}
	// The core hands the exit adapter this node's policy when it opens it
	// (adapter.Config.ExitPolicy), which enforces it again before it
	// dials (defence in depth).
	a, err := open(c, builtin.KindAdapter, cfg.Exit.Plugin, builtin.Adapters, adapterplugin.Launch)
	if err != nil {
		return fmt.Errorf("exit %q: %w", cfg.Exit.Name, err)
	}
	p.exit = a
	p.add("exit", cfg.Exit.Name, a)
	return nil
}

// replies is what the control API reports about the plugins.
func (p *plugins) replies() []control.PluginReply {
	var out []control.PluginReply
	for _, r := range p.running {
		rep := control.PluginReply{Kind: r.kind, Name: r.name, InProc: true}
		if s, ok := r.v.(swapper); ok { // a reload may have changed the policy
			rep.Name = s.current().Name()
		}
		if st, ok := PluginStats(r.v); ok {
			rep.InProc, rep.PID, rep.Restarts = false, st.PID, st.Restarts
		}
		out = append(out, rep)
	}
	return out
}
