package host

import (
	"context"
	"fmt"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/core/exitpolicy"
	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/node"
	"github.com/tarzan-net/tarzan/core/onion"
)

// startCore is the one place that turns a configuration and opened
// plugins into a running core (config → node.Options → node.New → Start).
// When core/node is split into the engine, the IP service and loop
// cover, this function is the one that changes.
//
// It hands p to the node: from node.New on, node.Close closes the plugins.
func (h *Host) startCore(ctx context.Context, p *plugins) error {
	cfg := h.cfg
	h.push(func() error { p.close(); return nil })
	id, err := identity.Load(cfg.Node.Identity)
	if err != nil {
		return fmt.Errorf("loading identity key (create one with 'tarzan init'): %w", err)
	}
	opts := node.Options{
		Identity:      id,
		Transports:    p.transports,
		Discovery:     p.discovery,
		Cover:         p.cover,
		ClientAdapter: p.client,
		ExitAdapter:   p.exit,
		ExitPolicy:    h.policy,
		Logger:        h.log,

		TunnelHops:         cfg.Tunnels.Hops,
		TunnelIdleTimeout:  cfg.Tunnels.IdleTimeout,
		TunnelQuiet:        cfg.Tunnels.Quiet,
		TunnelCheckTimeout: cfg.Tunnels.CheckTimeout,
		MimicCount:         cfg.Mimics.Count,
		EpochLength:        cfg.Mimics.Epoch,
		Exit:               cfg.Node.Exit,
		LoopTimeout:        cfg.Cover.LoopTimeout,
		LoopTunnels:        cfg.Cover.LoopTunnels,
		LoopWindow:         cfg.Cover.LoopWindow,
		LoopAlertLoss:      cfg.Cover.LoopAlertLoss,

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
	n, err := node.New(opts)
	if err != nil {
		return err
	}
	// The node owns the plugins now: its Close closes them.
	h.undo[len(h.undo)-1] = func() error { n.Close(); n.Wait(); return nil }
	h.node = n
	return n.Start(ctx)
}

// checkStart refuses what would fail later, before any plugin starts,
// and parses the exit policy (once: startCore hands h.policy to the core).
func (h *Host) checkStart(o Options) (err error) {
	cfg := h.cfg
	if err := checkAES(cfg); err != nil {
		return err
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
