package config

import (
	"errors"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/tarzan-net/tarzan/core/loopcover"
	"github.com/tarzan-net/tarzan/core/node"
)

func TestDefault(t *testing.T) {
	c, err := Parse("node.toml", nil)
	if err != nil {
		t.Fatalf("empty file: %v", err)
	}
	want := Default()
	want.File = "node.toml"
	if !reflect.DeepEqual(c, want) {
		t.Errorf("empty file gives\n%+v\nwant the defaults\n%+v", c, want)
	}
	if err := Default().Validate(); err != nil {
		t.Errorf("Default().Validate() = %v", err)
	}
	d := Default()
	if d.Mimics.Count != 6 || d.Mimics.Epoch != 24*time.Hour || d.Tunnels.Hops != 3 ||
		d.Transport.Name != "udp" || d.Transport.Listen.String() != "0.0.0.0:7700" ||
		d.Discovery.Name != "static" || d.Cover.Name != "none" || d.Node.Control != ControlUnix {
		t.Errorf("Default() = %+v", d)
	}
}

const sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		toml string
		line int
		key  string
		msg  string // substring of Msg
	}{
		{"listen port", "[transport]\nlisten = \"127.0.0.1:99999\"", 2, "transport.listen", `"127.0.0.1:99999" is not a valid address:port`},
		{"listen hostname", "[transport]\n\nlisten = \"localhost:7700\"", 3, "transport.listen", "not a valid address:port"},
		{"listen type", "[transport]\nlisten = 7700", 2, "transport.listen", "must be an \"address:port\" string, not the integer 7700"},
		{"control invalid", "[node]\ncontrol = \"127.0.0.1\"", 2, "node.control", "not a valid address:port"},
		{"control remote", "[node]\ncontrol = \"0.0.0.0:8080\"", 2, "node.control", "allow_remote_control"},
		{"log level", "[node]\nlog_level = \"loud\"", 2, "node.log_level", `"loud" is not one of`},
		{"quoted key", "[node]\n\"log_level\" = \"loud\"", 2, "node.log_level", "not one of"},
		{"exit type", "[node]\nexit = \"yes\"", 2, "node.exit", "must be true or false"},
		{"count zero", "[mimics]\ncount = 0", 2, "mimics.count", "out of range 1..32"},
		{"count big", "[mimics]\ncount = 33", 2, "mimics.count", "out of range 1..32"},
		{"count huge", "[mimics]\ncount = 9223372036854775807", 2, "mimics.count", "out of range"},
		{"count type", "[mimics]\ncount = \"six\"", 2, "mimics.count", "must be an integer"},
		{"epoch short", "[mimics]\nepoch = \"500ms\"", 2, "mimics.epoch", "shorter than 1s"},
		{"epoch garbage", "[mimics]\nepoch = \"soon\"", 2, "mimics.epoch", `"soon" is not a duration`},
		{"epoch integer", "[mimics]\nepoch = 86400", 2, "mimics.epoch", "must be a duration string"},
		{"hops", "[tunnels]\nhops = 5", 2, "tunnels.hops", "out of range 1..4"},
		{"idle", "[tunnels]\nidle_timeout = \"0s\"", 2, "tunnels.idle_timeout", "greater than zero"},
		{"transport name", "[transport]\nname = \"\"", 2, "transport.name", "not a plugin name"},
		{"advertise unspecified", "[transport]\nadvertise = [\"192.0.2.1:7700\", \"0.0.0.0:7700\"]", 2, "transport.advertise", "element 2 (0.0.0.0:7700) is unspecified"},
		{"advertise port 0", "[transport]\nadvertise = [\"192.0.2.1:0\"]", 2, "transport.advertise", "port 0"},
		{"advertise bad", "[transport]\nadvertise = [\"192.0.2.1\"]", 2, "transport.advertise", "element 1: \"192.0.2.1\" is not a valid"},
		{"advertise type", "[transport]\nadvertise = \"192.0.2.1:7700\"", 2, "transport.advertise", "must be an array"},
		{"path without sha256", "[discovery]\nname = \"x\"\npath = \"bin/x\"", 3, "discovery.sha256", "required with discovery.path"},
		{"sha256 not hex", "[cover]\npath = \"c\"\nsha256 = \"abc\"", 3, "cover.sha256", "64 hex digits"},
		{"sha256 without path", "[cover]\nsha256 = \"" + sha + "\"", 2, "cover.sha256", "path is empty"},
		{"inprocess external", "[transport]\npath = \"t\"\nsha256 = \"" + sha + "\"\ninprocess = true", 4, "transport.inprocess", "cannot run the external plugin"},
		{"loop timeout zero", "[cover]\nloop_timeout = \"0s\"", 2, "cover.loop_timeout", "0s must be greater than zero"},
		{"loop timeout negative", "[cover]\nname = \"poisson\"\nloop_timeout = \"-1s\"", 3, "cover.loop_timeout", "greater than zero"},
		{"loop timeout garbage", "[cover]\nloop_timeout = \"soon\"", 2, "cover.loop_timeout", `"soon" is not a duration`},
		{"loop timeout integer", "[cover]\nloop_timeout = 5", 2, "cover.loop_timeout", "must be a duration string"},
		{"loop tunnels zero", "[cover]\nloop_tunnels = 0", 2, "cover.loop_tunnels", "0 is out of range 1..16"},
		{"loop tunnels big", "[cover]\nloop_tunnels = 17", 2, "cover.loop_tunnels", "17 is out of range 1..16"},
		{"loop tunnels type", "[cover]\nloop_tunnels = \"2\"", 2, "cover.loop_tunnels", "must be an integer"},
		{"loop window zero", "[cover]\nloop_window = 0", 2, "cover.loop_window", "0 is out of range 1..10000"},
		{"loop window big", "[cover]\nloop_window = 10001", 2, "cover.loop_window", "out of range 1..10000"},
		{"loop window float", "[cover]\nloop_window = 20.5", 2, "cover.loop_window", "must be an integer, not a float"},
		{"loop alert zero", "[cover]\nloop_alert_loss = 0.0", 2, "cover.loop_alert_loss", "0 is out of range"},
		{"loop alert integer zero", "[cover]\nloop_alert_loss = 0", 2, "cover.loop_alert_loss", "greater than 0 and at most 1"},
		{"loop alert negative", "[cover]\nloop_alert_loss = -0.5", 2, "cover.loop_alert_loss", "-0.5 is out of range"},
		{"loop alert above one", "[cover]\n\nloop_alert_loss = 1.5", 3, "cover.loop_alert_loss", "1.5 is out of range"},
		{"loop alert nan", "[cover]\nloop_alert_loss = nan", 2, "cover.loop_alert_loss", "NaN is out of range"},
		{"loop alert inf", "[cover]\nloop_alert_loss = inf", 2, "cover.loop_alert_loss", "out of range"},
		{"loop alert string", "[cover]\nloop_alert_loss = \"0.5\"", 2, "cover.loop_alert_loss", "must be a number such as 0.5, not the string"},
		{"loop key misspelt", "[cover]\nloop_timout = \"5s\"", 2, "cover.loop_timout", "unknown key; [cover] takes name, inprocess, path, sha256, options, loop_timeout, loop_tunnels, loop_window, loop_alert_loss"},
		{"aes type", "[node]\nallow_variable_time_aes = \"yes\"", 2, "node.allow_variable_time_aes", "must be true or false"},
		{"aes integer", "[node]\nallow_variable_time_aes = 1", 2, "node.allow_variable_time_aes", "must be true or false, not the integer 1"},
		{"circuits per link zero", "[limits]\ncircuits_per_link = 0", 2, "limits.circuits_per_link", "0 is out of range 1..1048576"},
		{"circuits per link negative", "[limits]\ncircuits_per_link = -1", 2, "limits.circuits_per_link", "-1 is out of range 1..1048576"},
		{"circuits per link big", "[limits]\ncircuits = 1048576\ncircuits_per_link = 1048577", 3, "limits.circuits_per_link", "1048577 is out of range 1..1048576"},
		{"circuits per link type", "[limits]\ncircuits_per_link = \"1024\"", 2, "limits.circuits_per_link", "must be an integer"},
		{"circuits per link above circuits", "[limits]\n\ncircuits_per_link = 20000", 3, "limits.circuits", "16384 is below limits.circuits_per_link (20000)"},
		{"circuits below per link", "[limits]\ncircuits_per_link = 100\ncircuits = 50", 3, "limits.circuits", "50 is below limits.circuits_per_link (100)"},
		{"circuits zero", "[limits]\ncircuits = 0", 2, "limits.circuits", "0 is out of range 1..1048576"},
		{"circuits big", "[limits]\ncircuits = 1048577", 2, "limits.circuits", "1048577 is out of range 1..1048576"},
		{"circuits float", "[limits]\ncircuits = 1e4", 2, "limits.circuits", "must be an integer, not a float"},
		{"create rate zero", "[limits]\ncreate_rate = 0", 2, "limits.create_rate", "0 is out of range: want CREATEs per second greater than 0 and at most 1000000"},
		{"create rate off", "[limits]\ncreate_rate = -1.0", 2, "limits.create_rate", "-1 is out of range"},
		{"create rate big", "[limits]\ncreate_rate = 1e7", 2, "limits.create_rate", "1e+07 is out of range"},
		{"create rate nan", "[limits]\ncreate_rate = nan", 2, "limits.create_rate", "NaN is out of range"},
		{"create rate string", "[limits]\ncreate_rate = \"64\"", 2, "limits.create_rate", "must be a number"},
		{"probe rate zero", "[limits]\nprobe_rate = 0.0", 2, "limits.probe_rate", "0 is not a rate: want one greater than 0, or a negative one (-1.0) to switch the limit off"},
		{"probe rate nan", "[limits]\nprobe_rate = nan", 2, "limits.probe_rate", "NaN is not a rate"},
		{"probe rate inf", "[limits]\nprobe_rate = inf", 2, "limits.probe_rate", "+Inf is not a rate"},
		{"probe rate -inf", "[limits]\nprobe_rate = -inf", 2, "limits.probe_rate", "-Inf is not a rate"},
		{"probe rate string", "[limits]\nprobe_rate = \"off\"", 2, "limits.probe_rate", "must be a number such as 0.5, not the string \"off\""},
		{"probe burst zero", "[limits]\nprobe_burst = 0", 2, "limits.probe_burst", "0 is below 1; a burst of 0 would refuse everything (switch the limit off with a negative limits.probe_rate instead)"},
		{"probe burst negative", "[limits]\nprobe_rate = -1.0\nprobe_burst = -1", 3, "limits.probe_burst", "-1 is below 1"},
		{"probe burst float", "[limits]\nprobe_burst = 8.5", 2, "limits.probe_burst", "must be an integer"},
		{"probe global rate zero", "[limits]\nprobe_global_rate = 0", 2, "limits.probe_global_rate", "0 is not a rate"},
		{"probe global rate inf", "[limits]\nprobe_global_rate = inf", 2, "limits.probe_global_rate", "is not a rate"},
		{"probe global burst zero", "[limits]\nprobe_global_burst = 0", 2, "limits.probe_global_burst", "negative limits.probe_global_rate"},
		{"handshake rate zero", "[limits]\nhandshake_rate = 0", 2, "limits.handshake_rate", "0 is not a rate"},
		{"handshake rate nan", "[limits]\nhandshake_rate = nan", 2, "limits.handshake_rate", "NaN is not a rate"},
		{"handshake burst zero", "[limits]\nhandshake_burst = 0", 2, "limits.handshake_burst", "negative limits.handshake_rate"},
		{"handshake burst huge", "[limits]\nhandshake_burst = 9223372036854775807", 2, "limits.handshake_burst", "out of range"},
		{"limiter sources zero", "[limits]\nlimiter_sources = 0", 2, "limits.limiter_sources", "0 is below 1"},
		{"limiter sources negative", "[limits]\nlimiter_sources = -4096", 2, "limits.limiter_sources", "-4096 is below 1"},
		{"peer silence zero", "[limits]\npeer_silence = \"0s\"", 2, "limits.peer_silence", "0s is not allowed: want at least 1s, or a negative duration (\"-1s\") to switch eviction off"},
		{"peer silence short", "[limits]\npeer_silence = \"999ms\"", 2, "limits.peer_silence", "999ms is shorter than 1s"},
		{"peer silence garbage", "[limits]\npeer_silence = \"never\"", 2, "limits.peer_silence", `"never" is not a duration`},
		{"peer silence integer", "[limits]\npeer_silence = 600", 2, "limits.peer_silence", "must be a duration string"},
		{"limits key misspelt", "[limits]\ncircuit = 5", 2, "limits.circuit", "unknown key; [limits] takes circuits_per_link, circuits, create_rate, probe_rate, probe_burst, probe_global_rate, probe_global_burst, handshake_rate, handshake_burst, limiter_sources, peer_silence"},
		{"limits not table", "limits = 5", 1, "limits", "must be a table"},
		{"option integer", "[transport.options]\nbatch = 64", 2, "transport.options.batch", "quote the value"},
		{"option array element", "[discovery.options]\npeers = [\"a:1\", 2]", 2, "discovery.options.peers", "element 2"},
		{"option comma", "[discovery.options]\npeers = [\"a:1,b:2\"]", 2, "discovery.options.peers", `contains ","`},
		{"option table", "[discovery.options]\n[discovery.options.x]\ny = \"z\"", 2, "discovery.options.x", "not a table"},
		{"options not table", "[cover]\noptions = \"rate=1\"", 2, "cover.options", "must be a table"},
		{"unknown key", "[node]\nexit = true\nidentiy = \"k\"", 3, "node.identiy", "unknown key; [node] takes identity, data_dir"},
		{"unknown section", "[mimics]\ncount = 2\n\n[nodes]\nexit = true", 4, "nodes", "unknown section"},
		{"unknown top-level key", "verbose = true", 1, "verbose", "unknown section"},
		{"unknown dotted key", "[transport]\nlisten = \"127.0.0.1:1\"\nopts.sndbuf = \"1\"", 3, "transport.opts.sndbuf", "unknown key"},
		{"section not table", "node = 5", 1, "node", "must be a table"},
		{"inline table", "transport = { name = \"udp\", listen = \"x\" }", 1, "transport.listen", "not a valid address:port"},
		{"after multi-line values", `[discovery.options]
peers = [
  "a:1", # [node] in a comment
  "b:2",
]
note = """
[tunnels]
hops = 1
"""
[tunnels]
hops = 9`, 11, "tunnels.hops", "out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("node.toml", []byte(tc.toml))
			if err == nil {
				t.Fatalf("no error for\n%s", tc.toml)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%v does not wrap ErrInvalid", err)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("%v is not an *Error", err)
			}
			if e.File != "node.toml" || e.Line != tc.line || e.Key != tc.key || !strings.Contains(e.Msg, tc.msg) {
				t.Errorf("got %q (line %d, key %q)\nwant node.toml:%d: %s: ...%s...", err, e.Line, e.Key, tc.line, tc.key, tc.msg)
			}
		})
	}
}

func TestCoverLoopKeys(t *testing.T) {
	c, err := Parse("node.toml", []byte(`[cover]
name = "poisson"
loop_timeout = "2500ms"
loop_tunnels = 4
loop_window = 50
loop_alert_loss = 0.25
[cover.options]
loop_rate = "10"
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Cover; got.Name != "poisson" || got.Options["loop_rate"] != "10" ||
		got.LoopTimeout != 2500*time.Millisecond || got.LoopTunnels != 4 || got.LoopWindow != 50 || got.LoopAlertLoss != 0.25 {
		t.Errorf("cover = %+v", got)
	}

	// The bounds are inclusive; an integer 1 is a share too.
	c, err = Parse("node.toml", []byte("[cover]\nloop_timeout = \"1ns\"\nloop_tunnels = 16\nloop_window = 10000\nloop_alert_loss = 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Cover; got.LoopTimeout != 1 || got.LoopTunnels != 16 || got.LoopWindow != 10000 || got.LoopAlertLoss != 1 {
		t.Errorf("cover at the bounds = %+v", got)
	}
	c, err = Parse("node.toml", []byte("[cover]\nloop_window = 1\nloop_alert_loss = 1e-3\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Cover.LoopWindow != 1 || c.Cover.LoopAlertLoss != 0.001 {
		t.Errorf("cover = %+v", c.Cover)
	}

	// Absent keys are core/node's defaults, whatever else [cover] sets.
	c, err = Parse("node.toml", []byte("[cover]\nname = \"poisson\"\n[cover.options]\nloop_rate = \"2\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Cover; got.LoopTimeout != 5*time.Second || got.LoopTunnels != 2 || got.LoopWindow != 20 || got.LoopAlertLoss != 0.5 {
		t.Errorf("defaults: cover = %+v, want 5s, 2, 20, 0.5", got)
	}
	if d := Default().Cover; d.LoopTimeout != loopcover.DefaultTimeout || d.LoopTunnels != loopcover.DefaultTunnels ||
		d.LoopWindow != loopcover.DefaultWindow || d.LoopAlertLoss != loopcover.DefaultAlertLoss {
		t.Errorf("Default().Cover = %+v, want core/node's defaults", d)
	}
}

func TestValidateCoverLoopWithoutFile(t *testing.T) {
	c := Default()
	c.Cover.LoopTunnels = 0
	c.Cover.LoopAlertLoss = 2
	err := c.Validate()
	want := "cover.loop_tunnels: 0 is out of range 1..16\ncover.loop_alert_loss: 2 is out of range: want a share of the window greater than 0 and at most 1"
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

// [limits] and node.allow_variable_time_aes default to core/node's own
// defaults, so a file that leaves them out runs the node as core/node
// would run it with zero options.
func TestConfigLimitsDefaults(t *testing.T) {
	want := Limits{
		CircuitsPerLink:  node.DefaultMaxCircuitsPerLink,
		Circuits:         node.DefaultMaxCircuits,
		CreateRate:       node.DefaultCreateRate,
		ProbeRate:        node.DefaultProbeRate,
		ProbeBurst:       node.DefaultProbeBurst,
		ProbeGlobalRate:  node.DefaultProbeGlobalRate,
		ProbeGlobalBurst: node.DefaultProbeGlobalBurst,
		HandshakeRate:    node.DefaultHandshakeRate,
		HandshakeBurst:   node.DefaultHandshakeBurst,
		LimiterSources:   node.DefaultLimiterSources,
		PeerSilence:      node.DefaultPeerSilence,
		OrphanGrace:      node.DefaultOrphanGrace,
	}
	if got := Default().Limits; got != want {
		t.Errorf("Default().Limits = %+v\nwant core/node's defaults %+v", got, want)
	}
	if Default().Node.AllowVariableTimeAES {
		t.Error("Default() allows variable-time AES")
	}
	// An empty [limits], or one that sets a single key, leaves the rest
	// at the defaults.
	for _, text := range []string{"", "[limits]\n", "[limits]\nprobe_rate = 2\n"} {
		c, err := Parse("node.toml", []byte(text))
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		if c.Limits != want || c.Node.AllowVariableTimeAES {
			t.Errorf("%q: limits %+v, aes %v; want the defaults", text, c.Limits, c.Node.AllowVariableTimeAES)
		}
	}
}

func TestConfigLimitsKeys(t *testing.T) {
	for _, tc := range []struct {
		name, toml string
		want       Limits
	}{
		{"set", `[limits]
circuits_per_link = 64
circuits = 4096
create_rate = 16.5
probe_rate = 0.5
probe_burst = 4
probe_global_rate = 50
probe_global_burst = 100
handshake_rate = 1.0
handshake_burst = 2
limiter_sources = 128
peer_silence = "30m"
orphan_grace = "1m"
`, Limits{64, 4096, 16.5, 0.5, 4, 50, 100, 1, 2, 128, 30 * time.Minute, time.Minute}},
		{"lower bounds", `[limits]
circuits_per_link = 1
circuits = 1
create_rate = 1e-3
probe_rate = 1e-9
probe_burst = 1
probe_global_rate = 1e-9
probe_global_burst = 1
handshake_rate = 1e-9
handshake_burst = 1
limiter_sources = 1
peer_silence = "1s"
`, Limits{1, 1, 0.001, 1e-9, 1, 1e-9, 1, 1e-9, 1, 1, time.Second, 30 * time.Second}},
		{"upper bounds", `[limits]
circuits_per_link = 1048576
circuits = 1048576
create_rate = 1000000
probe_burst = 2147483647
`, Limits{1 << 20, 1 << 20, 1e6, 2, 2147483647, 200, 400, 4, 16, 4096, 10 * time.Minute, 30 * time.Second}},
		{"switched off", `[limits]
probe_rate = -1.0
probe_global_rate = -1
handshake_rate = -0.5
peer_silence = "-1s"
orphan_grace = "-1s"
`, Limits{1024, 16384, 64, -1, 8, -1, 400, -0.5, 16, 4096, -time.Second, -time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("node.toml", []byte(tc.toml))
			if err != nil {
				t.Fatal(err)
			}
			if c.Limits != tc.want {
				t.Errorf("limits = %+v\nwant %+v", c.Limits, tc.want)
			}
			// What parses survives Write and Load.
			path := filepath.Join(t.TempDir(), "node.toml")
			if err := Write(path, c); err != nil {
				t.Fatal(err)
			}
			again, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if again.Limits != tc.want {
				t.Errorf("after Write and Load: limits = %+v\nwant %+v", again.Limits, tc.want)
			}
		})
	}
	c, err := Parse("node.toml", []byte("[node]\nallow_variable_time_aes = true\n"))
	if err != nil || !c.Node.AllowVariableTimeAES {
		t.Errorf("allow_variable_time_aes = true: %+v, %v", c.Node, err)
	}
}

func TestValidateLimitsWithoutFile(t *testing.T) {
	c := Default()
	c.Limits.Circuits = 10
	c.Limits.HandshakeRate = 0
	c.Limits.PeerSilence = time.Millisecond
	err := c.Validate()
	want := "limits.circuits: 10 is below limits.circuits_per_link (1024): raise it or lower that\n" +
		"limits.handshake_rate: 0 is not a rate: want one greater than 0, or a negative one (-1.0) to switch the limit off\n" +
		"limits.peer_silence: 1ms is shorter than 1s"
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

func TestFormatFloat(t *testing.T) {
	for f, want := range map[float64]string{0.5: "0.5", 1: "1.0", 0.001: "0.001", 1e-7: "1e-07", 1e21: "1e+21", math.NaN(): "nan", math.Inf(1): "inf", math.Inf(-1): "-inf"} {
		got := formatFloat(f)
		if got != want {
			t.Errorf("formatFloat(%v) = %q, want %q", f, got, want)
		}
		var v struct{ X float64 }
		if _, err := toml.Decode("X = "+got, &v); err != nil || !(v.X == f || math.IsNaN(f) && math.IsNaN(v.X)) {
			t.Errorf("%q reads back as %v (%v)", got, v.X, err)
		}
	}
}

func TestErrorFormat(t *testing.T) {
	_, err := Parse("node.toml", []byte("# comment\n\n[transport]\nname = \"udp\"\nlisten = \"127.0.0.1:99999\"\n"))
	want := `node.toml:5: transport.listen: "127.0.0.1:99999" is not a valid address:port`
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

func TestSyntaxErrors(t *testing.T) {
	for _, tc := range []struct {
		name, toml string
		line       int
	}{
		{"unclosed header", "[node]\nexit = false\n[mimics\ncount = 2", 3},
		{"double equals", "[mimics]\n\ncount = = 2", 3},
		{"duplicate key", "[mimics]\ncount = 2\ncount = 3", 3},
		{"unterminated string", "[node]\nidentity = \"x", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("node.toml", []byte(tc.toml))
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want an *Error wrapping ErrInvalid", err)
			}
			var pe toml.ParseError
			if !errors.As(err, &pe) {
				t.Errorf("%v does not wrap the toml.ParseError", err)
			}
			prefix := "node.toml:" + strconv.Itoa(tc.line) + ": "
			if !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("got %q, want prefix %q", err, prefix)
			}
		})
	}
}

func TestAllErrorsReported(t *testing.T) {
	_, err := Parse("node.toml", []byte("[tunnels]\nhops = 0\n[mimics]\ncount = 0\n[node]\nbogus = 1\n"))
	if err == nil {
		t.Fatal("no error")
	}
	// Unknown keys and type errors are reported together; value checks
	// only run once those are fixed.
	if got := err.Error(); got != "node.toml:6: node.bogus: unknown key; [node] takes identity, data_dir, control, allow_remote_control, log_level, exit, allow_variable_time_aes, log_format, pprof" {
		t.Errorf("got %q", got)
	}
	_, err = Parse("node.toml", []byte("[tunnels]\nhops = 0\n[mimics]\ncount = 0\n"))
	want := "node.toml:2: tunnels.hops: 0 is out of range 1..4\nnode.toml:4: mimics.count: 0 is out of range 1..32"
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

func TestValidateWithoutFile(t *testing.T) {
	c := Default()
	c.Discovery.Path = "/usr/lib/tarzan/disc"
	err := c.Validate()
	if err == nil || err.Error() != "discovery.sha256: is required with discovery.path: the node runs an external plugin only if its SHA-256 matches" {
		t.Errorf("got %v", err)
	}
}

func TestOptions(t *testing.T) {
	c, err := Parse("node.toml", []byte(`[discovery.options]
peers = ["127.1.0.1:7700", "127.2.0.1:7700"]
"odd key" = "v"
empty = []
[transport.options]
sndbuf = "1048576"
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"peers": "127.1.0.1:7700,127.2.0.1:7700", "odd key": "v", "empty": ""}
	if !reflect.DeepEqual(c.Discovery.Options, want) {
		t.Errorf("discovery options %q, want %q", c.Discovery.Options, want)
	}
	if c.Transport.Options["sndbuf"] != "1048576" {
		t.Errorf("transport options %q", c.Transport.Options)
	}
}

func TestRelativePaths(t *testing.T) {
	dir := t.TempDir()
	abs := filepath.Join(dir, "elsewhere", "id.key")
	file := filepath.Join(dir, "etc", "node.toml")
	writeFile(t, file, `[node]
identity = "keys/id.key"
data_dir = "../var"
[transport]
path = "plugins/tarzan-transport-x"
sha256 = "`+sha+`"
[cover]
path = "`+filepath.ToSlash(abs)+`"
sha256 = "`+sha+`"
`)
	c, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	etc := filepath.Join(dir, "etc")
	for _, tc := range []struct{ name, got, want string }{
		{"node.identity", c.Node.Identity, filepath.Join(etc, "keys", "id.key")},
		{"node.data_dir", c.Node.DataDir, filepath.Join(dir, "var")},
		{"transport.path", c.Transport.Path, filepath.Join(etc, "plugins", "tarzan-transport-x")},
		{"cover.path", c.Cover.Path, abs},
		{"discovery.path", c.Discovery.Path, ""},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.name, tc.got, tc.want)
		}
	}
	if c.File != file {
		t.Errorf("File = %q, want %q", c.File, file)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.toml"))
	if !errors.Is(err, os.ErrNotExist) || errors.Is(err, ErrInvalid) {
		t.Errorf("got %v, want a not-exist error", err)
	}
}

func TestWriteLoadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	c := Default()
	c.Node = Node{Identity: "id \"quoted\".key", DataDir: "state", Control: "[::1]:9090", LogLevel: "debug", Exit: true}
	c.Mimics = Mimics{Count: 32, Epoch: 90 * time.Minute}
	c.Tunnels = Tunnels{Hops: 4, IdleTimeout: 1500 * time.Millisecond, Quiet: 750 * time.Millisecond, CheckTimeout: 3 * time.Second,
		DNS: []netip.Addr{netip.MustParseAddr("fd00::53"), netip.MustParseAddr("100.64.1.53")}}
	c.Transport.Listen = netip.MustParseAddrPort("[::]:7701")
	c.Transport.Advertise = []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:7701"), netip.MustParseAddrPort("[2001:db8::1]:7701")}
	c.Transport.InProcess = true
	c.Transport.Options = map[string]string{"batch": "32", "odd key\t\"x\"": "ünïcode\\ \x01"}
	c.Discovery = Plugin{Name: "gossip", Path: "/opt/gossip", SHA256: sha, Options: map[string]string{"peers": "127.1.0.1:7700,127.2.0.1:7700"}}
	c.Cover = Cover{Plugin: Plugin{Name: "poisson", Options: map[string]string{"loop_rate": "2"}},
		LoopTimeout: 2500 * time.Millisecond, LoopTunnels: 16, LoopWindow: 10000, LoopAlertLoss: 1}
	c.Node.AllowVariableTimeAES = true
	c.Limits = Limits{CircuitsPerLink: 7, Circuits: 700, CreateRate: 0.25, ProbeRate: -1, ProbeBurst: 1,
		ProbeGlobalRate: 1e5, ProbeGlobalBurst: 1 << 20, HandshakeRate: -2.5, HandshakeBurst: 3,
		LimiterSources: 65536, PeerSilence: -time.Hour, OrphanGrace: 90 * time.Second}

	path := filepath.Join(dir, "node.toml")
	if err := Write(path, c); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v (%v), want 0644", fi.Mode().Perm(), err)
	}
	got, err := Load(path)
	if err != nil {
		data, _ := os.ReadFile(path)
		t.Fatalf("Load after Write: %v\n%s", err, data)
	}
	want := *c
	want.File = path
	want.resolve(dir)
	if !reflect.DeepEqual(got, &want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, &want)
	}

	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("Write left %d files behind, want only node.toml", len(entries))
	}
	c.Tunnels.Hops = 0
	if err := Write(path, c); !errors.Is(err, ErrInvalid) {
		t.Errorf("Write of an invalid config: %v, want ErrInvalid", err)
	}
}

// The annotated example at the repository root must load and set every
// key the schema knows.
func TestRepoNodeToml(t *testing.T) {
	const path = "../node.toml"
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	if c.Discovery.Options["peers"] == "" {
		t.Errorf("%s: discovery.options.peers is empty", path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	md, err := toml.Decode(string(data), &raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, sec := range schema {
		for _, f := range sec.fields {
			if !md.IsDefined(strings.Split(f.key, ".")...) {
				t.Errorf("%s does not show %s", path, f.key)
			}
		}
	}
}

// The example node.toml survives Write and Load unchanged, and what
// Write makes of it validates: it is what `tarzan init` writes.
func TestRepoNodeTomlRoundTrip(t *testing.T) {
	c, err := Load("../node.toml")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "node.toml")
	if err := Write(path, c); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		data, _ := os.ReadFile(path)
		t.Fatalf("Load after Write: %v\n%s", err, data)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Validate after the round trip: %v", err)
	}
	// Paths were resolved against the example's directory, then kept
	// (they are absolute by then).
	got.File = c.File
	if !reflect.DeepEqual(got, c) {
		t.Errorf("round trip of the example:\n got %+v\nwant %+v", got, c)
	}
	// The example shows the defaults of the keys added for protocol v2.
	if c.Limits != Default().Limits || c.Node.AllowVariableTimeAES {
		t.Errorf("example node.toml: limits %+v, allow_variable_time_aes %v; want the defaults", c.Limits, c.Node.AllowVariableTimeAES)
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
