package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/control"
	"github.com/tarzan-net/tarzan/core/exitpolicy"
	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/ipservice"
	"github.com/tarzan-net/tarzan/core/loopcover"
	"github.com/tarzan-net/tarzan/core/node"
	"github.com/tarzan-net/tarzan/core/onion"
	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
)

var errUsage = errors.New("usage")

// controlAddrFile is where a running node writes its control API address,
// inside its data directory, so `tarzan status` and the demo can find it.
const controlAddrFile = "control.addr"

func newFlags(name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: tarzan %s\n\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errUsage
		}
		return errUsage
	}
	return nil
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

func runNode(args []string) error {
	fs := newFlags("node", "node -c node.toml")
	cfgPath := fs.String("c", "node.toml", "configuration file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Node.LogLevel)
	slog.SetDefault(log)
	if err := checkAES(cfg, onion.HardwareAES()); err != nil {
		return err
	}
	if cfg.Node.AllowVariableTimeAES && !onion.HardwareAES() {
		log.Warn("this CPU has no AES instructions: onion cells are encrypted in variable time, which leaks key bits through timing (node.allow_variable_time_aes = true)")
	}
	id, err := identity.Load(cfg.Node.Identity)
	if err != nil {
		return fmt.Errorf("loading identity key (create one with 'tarzan init'): %w", err)
	}
	defer pluginkit.CleanupAll()

	tr, err := openTransport(cfg.Transport.Plugin, log)
	if err != nil {
		return fmt.Errorf("transport %q: %w", cfg.Transport.Name, err)
	}
	disc, err := openDiscovery(cfg.Discovery, log)
	if err != nil {
		tr.Close()
		return fmt.Errorf("discovery %q: %w", cfg.Discovery.Name, err)
	}
	cov, err := openCover(cfg.Cover.Plugin, log)
	if err != nil {
		tr.Close()
		disc.Close()
		return fmt.Errorf("cover %q: %w", cfg.Cover.Name, err)
	}
	closeAll := func(ps ...interface{ Close() error }) {
		for _, p := range ps {
			if p != nil {
				p.Close()
			}
		}
	}
	specs := []node.TransportSpec{{Transport: tr, Listen: cfg.Transport.Listen, Advertise: cfg.Transport.Advertise}}
	for _, e := range cfg.Transport.Extra {
		t, err := openTransport(config.Plugin{Name: e.Name, Options: map[string]string{}}, log)
		if err != nil {
			for _, s := range specs {
				s.Transport.Close()
			}
			closeAll(disc, cov)
			return fmt.Errorf("transport.extra %q: %w", e.Name, err)
		}
		spec := node.TransportSpec{Transport: t, Listen: e.Listen}
		if e.Advertise.IsValid() {
			spec.Advertise = []netip.AddrPort{e.Advertise}
		}
		specs = append(specs, spec)
	}
	closeTransports := func() {
		for _, s := range specs[1:] {
			s.Transport.Close()
		}
	}
	var clientAd, exitAd adapter.Adapter
	if cfg.Adapter.Name != "" || cfg.Adapter.Path != "" {
		if clientAd, err = openAdapter(cfg.Adapter, log); err != nil {
			closeTransports()
			closeAll(tr, disc, cov)
			return fmt.Errorf("adapter %q: %w", cfg.Adapter.Name, err)
		}
	}
	var policy *exitpolicy.Policy
	if cfg.Node.Exit {
		if len(cfg.Exit.Policy) > 0 {
			if policy, err = exitpolicy.Parse(cfg.Exit.Policy); err != nil {
				closeTransports()
				closeAll(tr, disc, cov, clientAd)
				return fmt.Errorf("%s: exit.policy: %w", cfg.File, err)
			}
		}
		// The exit adapter enforces the policy again before it dials
		// (defence in depth): hand it the same rules unless its options
		// name their own.
		exitCfg := cfg.Exit.Plugin
		if len(cfg.Exit.Policy) > 0 && exitCfg.Options["policy"] == "" {
			exitCfg.Options = maps.Clone(exitCfg.Options)
			if exitCfg.Options == nil {
				exitCfg.Options = map[string]string{}
			}
			exitCfg.Options["policy"] = strings.Join(cfg.Exit.Policy, ";")
		}
		if exitAd, err = openAdapter(exitCfg, log); err != nil {
			closeTransports()
			closeAll(tr, disc, cov, clientAd)
			return fmt.Errorf("exit %q: %w", cfg.Exit.Name, err)
		}
	}
	opts := configOptions(cfg)
	ipo, lo := configServices(cfg)
	ipo.ClientAdapter, ipo.ExitAdapter, lo.Cover = clientAd, exitAd, cov
	svc, err := ipservice.New(ipo)
	var loops *loopcover.Prober
	if err == nil {
		loops, err = loopcover.New(lo)
	}
	if err != nil {
		closeTransports()
		closeAll(tr, disc, cov, clientAd, exitAd)
		return err
	}
	opts.ExitHandler = svc.ExitHandler()
	opts.ExitPolicy = policy
	opts.Identity = id
	opts.Transports = specs
	opts.Discovery = disc
	opts.Cover = cov
	opts.Logger = log
	n, err := node.New(opts)
	if err != nil {
		closeTransports()
		closeAll(tr, disc, cov, clientAd, exitAd)
		return err
	}
	if err := svc.Start(n); err != nil {
		n.Close()
		closeAll(clientAd, exitAd)
		return err
	}
	loops.Start(n)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := n.Start(ctx); err != nil {
		n.Close()
		return err
	}
	type running struct {
		kind, name string
		v          any
	}
	plugins := []running{{"transport", cfg.Transport.Name, tr}}
	for i, e := range cfg.Transport.Extra {
		plugins = append(plugins, running{"transport", e.Name, specs[i+1].Transport})
	}
	plugins = append(plugins, running{"discovery", cfg.Discovery.Name, disc}, running{"cover", cfg.Cover.Name, cov})
	if clientAd != nil {
		plugins = append(plugins, running{"adapter", cfg.Adapter.Name, clientAd})
	}
	if exitAd != nil {
		plugins = append(plugins, running{"exit", cfg.Exit.Name, exitAd})
	}
	srv := &control.Server{Node: n, IP: svc, Loops: loops, Plugins: func() []control.PluginReply {
		var out []control.PluginReply
		for _, p := range plugins {
			r := control.PluginReply{Kind: p.kind, Name: p.name, InProc: true}
			if st, ok := pluginStats(p.v); ok {
				r.InProc, r.PID, r.Restarts = false, st.PID, st.Restarts
			}
			out = append(out, r)
		}
		return out
	}}
	if ap, perr := netip.ParseAddrPort(cfg.Node.Control); perr == nil && !ap.Addr().IsLoopback() && !cfg.Node.AllowRemoteControl {
		n.Close()
		return fmt.Errorf("%s: node.control %s is not a loopback address; the control API can build tunnels, so set allow_remote_control = true only if you mean it", cfg.File, cfg.Node.Control)
	}
	addr, err := srv.Listen(cfg.Node.Control)
	if err != nil {
		n.Close()
		return err
	}
	defer srv.Close()
	addrFile := filepath.Join(cfg.Node.DataDir, controlAddrFile)
	// Write then rename, so a reader never sees a half-written file.
	if err := writeFileAtomic(addrFile, []byte(addr.String()+"\n")); err != nil {
		log.Warn("could not record control address", "file", addrFile, "err", err)
	}
	defer os.Remove(addrFile)
	log.Info("control API listening", "addr", addr)
	<-ctx.Done()
	log.Info("shutting down")
	n.Close()
	n.Wait()
	return nil
}

func runValidate(args []string) error {
	fs := newFlags("validate", "validate -c node.toml")
	cfgPath := fs.String("c", "node.toml", "configuration file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	if _, err := os.Stat(cfg.Node.Identity); err != nil {
		return fmt.Errorf("%s: node.identity: %v (create one with 'tarzan init')", *cfgPath, err)
	}
	fmt.Printf("%s: ok (transport %s on %v, discovery %s, cover %s, %d mimics, %d hops)\n",
		*cfgPath, cfg.Transport.Name, cfg.Transport.Listen, cfg.Discovery.Name, cfg.Cover.Name, cfg.Mimics.Count, cfg.Tunnels.Hops)
	return nil
}

// checkAES refuses, before any plugin starts and naming the key, what
// node.New would refuse later: a CPU without AES instructions when
// node.allow_variable_time_aes is off.
func checkAES(cfg *config.Config, hardware bool) error {
	if hardware || cfg.Node.AllowVariableTimeAES {
		return nil
	}
	return fmt.Errorf("%s: this CPU has no AES instructions, so onion cells would be encrypted in variable time, "+
		"a timing side channel on the keys; node.allow_variable_time_aes = true starts anyway, for such CPUs only", cfg.File)
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// configServices are the IP service's and loop cover's options cfg's
// plain values set; runNode adds the adapters and the cover policy.
func configServices(cfg *config.Config) (ipservice.Options, loopcover.Options) {
	return ipservice.Options{TunnelHops: cfg.Tunnels.Hops}, loopcover.Options{
		Timeout: cfg.Cover.LoopTimeout, Tunnels: cfg.Cover.LoopTunnels, Window: cfg.Cover.LoopWindow,
		AlertLoss: cfg.Cover.LoopAlertLoss, TunnelHops: cfg.Tunnels.Hops,
	}
}

// configOptions are the node options cfg's plain values set; runNode adds
// the identity, the plugins it opened, the exit policy and the logger.
func configOptions(cfg *config.Config) node.Options {
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
