package host

import (
	"context"
	"fmt"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/ipservice"
	"github.com/tarzan-net/tarzan/core/loopcover"
	"github.com/tarzan-net/tarzan/core/node"
	"github.com/tarzan-net/tarzan/core/onion"
	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/exitpolicy"
)

// startCore, nodeOptions and serviceOptions are the one place that turns
// a configuration and opened plugins into a running core: the engine
// (core/node), the IP service on it (core/ipservice) and loop cover
// (core/loopcover), in that order of construction, started together.
//
// It hands p to the core: from node.New on, node.Close closes the
// transports, discovery and cover, and the IP service closes the adapters
// when the node stops. Until the node runs, the host still closes them.
func (h *Host) startCore(ctx context.Context, p *plugins) error {
	h.push(func() error { p.close(); return nil })
	ipo, lo := serviceOptions(h.cfg)
	ipo.ClientAdapter, ipo.ExitAdapter, lo.Cover = p.client, p.exit, p.cover
	svc, err := ipservice.New(ipo)
	if err != nil {
		return err
	}
	loops, err := loopcover.New(lo)
	if err != nil {
		return err
	}
	opts := nodeOptions(h.cfg)
	opts.Identity = h.id
	opts.Transports = p.transports
	opts.Discovery = p.discovery
	opts.Cover = p.cover
	opts.ExitHandler = svc.ExitHandler()
	opts.ExitPolicy = h.policy
	opts.Logger = h.log
	n, err := node.New(opts)
	if err != nil {
		return err
	}
	running := false
	h.undo[len(h.undo)-1] = func() error {
		n.Close()
		n.Wait()
		if !running { // the service's closer never ran: close its adapters here
			for _, a := range []adapter.Adapter{p.client, p.exit} {
				if a != nil {
					a.Close()
				}
			}
		}
		return nil
	}
	h.node, h.ip, h.loops = n, svc, loops
	if err := svc.Start(n); err != nil {
		return err
	}
	loops.Start(n)
	if err := n.Start(ctx); err != nil {
		return err
	}
	running = true
	return nil
}

// serviceOptions are the IP service's and loop cover's options cfg's
// plain values set; startCore adds the adapters and the cover policy.
func serviceOptions(cfg *config.Config) (ipservice.Options, loopcover.Options) {
	return ipservice.Options{TunnelHops: cfg.Tunnels.Hops, DNSAddrs: cfg.Tunnels.DNS}, loopcover.Options{
		Timeout: cfg.Cover.LoopTimeout, Tunnels: cfg.Cover.LoopTunnels, Window: cfg.Cover.LoopWindow,
		AlertLoss: cfg.Cover.LoopAlertLoss, TunnelHops: cfg.Tunnels.Hops,
	}
}

// nodeOptions are the node options cfg's plain values set; startCore adds
// the identity, the plugins, the exit policy and the logger.
func nodeOptions(cfg *config.Config) node.Options {
	return node.Options{
		TunnelIdleTimeout:  cfg.Tunnels.IdleTimeout,
		TunnelQuiet:        cfg.Tunnels.Quiet,
		TunnelCheckTimeout: cfg.Tunnels.CheckTimeout,
		MimicCount:         cfg.Mimics.Count,
		EpochLength:        cfg.Mimics.Epoch,
		Exit:               cfg.Node.Exit,

		AllowVariableTimeAES: cfg.Node.AllowVariableTimeAES,
		MaxCircuitsPerLink:   cfg.Limits.CircuitsPerLink,
		MaxCircuits:          cfg.Limits.Circuits,
		CreateRate:           cfg.Limits.CreateRate,
		AdmissionLimits: node.AdmissionLimits{
			ProbeRate:        cfg.Limits.ProbeRate,
			ProbeBurst:       cfg.Limits.ProbeBurst,
			ProbeGlobalRate:  cfg.Limits.ProbeGlobalRate,
			ProbeGlobalBurst: cfg.Limits.ProbeGlobalBurst,
			HandshakeRate:    cfg.Limits.HandshakeRate,
			HandshakeBurst:   cfg.Limits.HandshakeBurst,
			LimiterSources:   cfg.Limits.LimiterSources,
			PeerSilence:      cfg.Limits.PeerSilence,
		},
		OrphanGrace: cfg.Limits.OrphanGrace,
	}
}

// prepare refuses what would fail later, before any plugin starts, and
// reads what startCore hands the core: the identity key and the exit
// policy (parsed once).
func (h *Host) prepare(o Options) (err error) {
	cfg := h.cfg
	if err := checkAES(cfg); err != nil {
		return err
	}
	if h.id, err = identity.Load(cfg.Node.Identity); err != nil {
		return fmt.Errorf("loading identity key (create one with 'tarzan init'): %w", err)
	}
	if cfg.Node.Exit && len(cfg.Exit.Policy) > 0 {
		if h.policy, err = exitpolicy.Parse(cfg.Exit.Policy); err != nil {
			return fmt.Errorf("%s: exit.policy: %w", cfg.File, err)
		}
	}
	if o.NoControl {
		return nil
	}
	return checkControl(cfg)
}

// checkAES refuses, before any plugin starts and naming the key, what
// node.New would refuse later: a CPU without AES instructions when
// node.allow_variable_time_aes is off.
func checkAES(cfg *config.Config) error {
	return checkAESOn(cfg, onion.HardwareAES())
}

func checkAESOn(cfg *config.Config, hardware bool) error {
	if hardware || cfg.Node.AllowVariableTimeAES {
		return nil
	}
	return fmt.Errorf("%s: this CPU has no AES instructions, so onion cells would be encrypted in variable time, "+
		"a timing side channel on the keys; node.allow_variable_time_aes = true starts anyway, for such CPUs only", cfg.File)
}
