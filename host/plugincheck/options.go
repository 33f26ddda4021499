package plugincheck

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/internal/version"
	"github.com/tarzan-net/tarzan/plugins/builtin"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
)

// DescribeTimeout bounds a describe request: a plugin answers it before
// doing anything else, so this is generous.
const DescribeTimeout = 10 * time.Second

// maxDescription bounds what a describe request may print.
const maxDescription = 1 << 20

// Describe runs the plugin executable at path with pluginkit.DescribeEnv
// set (no go-plugin handshake, no data channel, no network) and reads the
// Description it prints. The caller checks the pin first. A binary built
// with an SDK that predates describe requests exits non-zero without a
// description: the error says so.
func Describe(path string, timeout time.Duration) (*pluginkit.Description, error) {
	// exec evaluates a relative path against cmd.Dir, set below.
	path, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// Transports and adapters refuse to start without a data channel
	// (fd 3), before they reach pluginkit.Serve: hand them one, unused.
	parent, child, err := dataPair()
	if err != nil {
		return nil, fmt.Errorf("making the plugin's data channel: %w", err)
	}
	defer parent.Close()
	defer child.Close()
	cmd := exec.CommandContext(ctx, path)
	cmd.Env = []string{pluginkit.DescribeEnv + "=1", dataChanEnv}
	cmd.ExtraFiles = []*os.File{child}
	cmd.Dir = filepath.Dir(path)
	cmd.WaitDelay = time.Second // a grandchild holding stdout does not hold us
	var out, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &limitedWriter{w: &out.buf, n: maxDescription}, &stderr
	err = cmd.Run()
	switch {
	case ctx.Err() != nil:
		return nil, fmt.Errorf("no description within %s", timeout)
	case err != nil:
		return nil, fmt.Errorf("it did not describe itself (%v; built with an SDK older than describe requests?)%s", err, stderrTail(&stderr))
	}
	var d pluginkit.Description
	dec := json.NewDecoder(bytes.NewReader(out.buf.Bytes()))
	if err := dec.Decode(&d); err != nil || d.Format < 1 {
		return nil, fmt.Errorf("its description is not valid JSON of a Tarzan plugin: %v", err)
	}
	if d.Schema != nil {
		if err := d.Schema.Valid(); err != nil {
			return nil, fmt.Errorf("it describes an invalid schema: %v", err)
		}
	}
	return &d, nil
}

// limitedWriter keeps the first n bytes and discards the rest.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n <= 0 {
		return len(p), nil
	}
	q := p
	if len(q) > l.n {
		q = q[:l.n]
	}
	l.n -= len(q)
	l.w.Write(q)
	return len(p), nil
}

// Inspector returns config.CheckPlugins's inspect for this binary:
// shipped plugins are looked up in plugins/builtin; an external one's
// file is checked against its pin and, only if it matches, asked to
// describe itself (its kind, name and options). describe=false skips
// running external binaries: their options are then not checked.
func Inspector(describe bool, timeout time.Duration) func(sec string, p config.Plugin) config.PluginInfo {
	return func(sec string, p config.Plugin) config.PluginInfo {
		kind := sec
		switch sec {
		case "exit":
			kind = builtin.KindAdapter
		case "transport.extra":
			kind = builtin.KindTransport
		}
		if p.Path == "" {
			if s := builtin.Schema(kind, p.Name); s != nil {
				return config.PluginInfo{Schema: s}
			}
			msg := fmt.Sprintf("%q is not a shipped %s plugin (shipped: %s)", p.Name, kind, strings.Join(builtin.Names(kind), ", "))
			if sec != "transport.extra" {
				msg += fmt.Sprintf("; an external plugin needs %s.path and %s.sha256", sec, sec)
			}
			return config.PluginInfo{Problem: msg}
		}
		return inspectExternal(sec, kind, p, describe, timeout)
	}
}

func inspectExternal(sec, kind string, p config.Plugin, describe bool, timeout time.Duration) config.PluginInfo {
	fi, err := os.Stat(p.Path)
	switch {
	case err != nil:
		return config.PluginInfo{Key: "path", Problem: fmt.Sprintf("plugin %s: %v", p.Path, unwrap(err))}
	case !fi.Mode().IsRegular():
		return config.PluginInfo{Key: "path", Problem: fmt.Sprintf("plugin %s is not a regular file", p.Path)}
	case fi.Mode().Perm()&0o111 == 0:
		return config.PluginInfo{Key: "path", Problem: fmt.Sprintf("plugin %s is not executable (chmod +x it)", p.Path)}
	}
	sum, err := FileSHA256(p.Path)
	if err != nil {
		return config.PluginInfo{Key: "path", Problem: fmt.Sprintf("plugin %s: %v", p.Path, err)}
	}
	if !strings.EqualFold(sum, p.SHA256) {
		return config.PluginInfo{Key: "sha256", Problem: fmt.Sprintf("does not match %s (have %s): the node would not run it, and neither does validate. Re-pin (sha256sum %s) if the binary was upgraded on purpose", p.Path, sum, p.Path)}
	}
	if !describe {
		return config.PluginInfo{Key: "path", Note: "options not checked (-describe=false)"}
	}
	d, err := Describe(p.Path, timeout)
	if err != nil {
		return config.PluginInfo{Key: "path", Note: fmt.Sprintf("options not checked: plugin %s: %v", p.Path, err)}
	}
	switch {
	case d.Kind != kind:
		return config.PluginInfo{Key: "path", Problem: fmt.Sprintf("%s is a %s plugin, not a %s plugin", p.Path, d.Kind, kind)}
	case d.Schema == nil:
		return config.PluginInfo{Key: "path", Note: fmt.Sprintf("options not checked: %s declares none (pluginkit.Declare)", p.Path)}
	case d.Schema.Name != p.Name:
		return config.PluginInfo{Problem: fmt.Sprintf("%q, but the plugin at %s calls itself %q (its Name()): use that name", p.Name, p.Path, d.Schema.Name)}
	}
	return config.PluginInfo{Schema: d.Schema}
}

// unwrap is the innermost error ("no such file or directory").
func unwrap(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

// ValidateHelp is `tarzan validate -h`'s text after the synopsis.
const ValidateHelp = `Checks node.toml offline, as the node would at start, and reports every
problem as FILE:LINE: KEY: message:
  - every key, type and value of the core's sections;
  - each plugin the file makes the node run: a shipped plugin's name, or an
    external plugin's path and SHA-256 pin; the plugin's kind against its
    section, and its name (its Name()) against the section's name;
  - each plugin's options against the options the plugin declares: unknown
    keys, values of the wrong type or out of range, files that are not there
    (relative paths in options are relative to the working directory);
  - the identity key file.
To learn an external plugin's options, validate runs its binary once with
TARZAN_PLUGIN_DESCRIBE=1 (it prints its options and exits; no network, no
handshake), and only after the file matched its pinned SHA-256;
-describe=false never runs it. Warnings (options that could not be checked)
go to stderr. 'tarzan plugin list -v' shows the shipped plugins' options.`

// Validate is `tarzan validate`: it loads the file at path and checks it
// and its plugins (Check) and the identity file. It returns a one-line
// summary, and warnings.
func Validate(path string, describe bool) (summary string, notes []string, err error) {
	cfg, err := config.Load(path)
	if err != nil {
		return "", nil, err
	}
	if notes, err = Check(cfg, describe); err != nil {
		return "", notes, err
	}
	if _, err := os.Stat(cfg.Node.Identity); err != nil {
		return "", notes, fmt.Errorf("%s: node.identity: %v (create one with 'tarzan init')", path, err)
	}
	return fmt.Sprintf("%s: ok (transport %s on %v, discovery %s, cover %s, %d mimics, %d hops)",
		path, cfg.Transport.Name, cfg.Transport.Listen, cfg.Discovery.Name, cfg.Cover.Name, cfg.Mimics.Count, cfg.Tunnels.Hops), notes, nil
}

// Check is `tarzan validate`'s plugin step on a loaded cfg: every
// plugin's name, file and options, with file, line and key. The notes
// are warnings.
func Check(cfg *config.Config, describe bool) (notes []string, err error) {
	return cfg.CheckPlugins(Inspector(describe, DescribeTimeout))
}

// CheckShipped is Check for `tarzan node` at start: the shipped plugins'
// names and options only. External plugins are left to the launcher,
// whose pin check (pluginkit.ErrChecksum) runs before every start anyway.
func CheckShipped(cfg *config.Config) error {
	inspect := Inspector(false, 0)
	_, err := cfg.CheckPlugins(func(sec string, p config.Plugin) config.PluginInfo {
		if p.Path != "" {
			return config.PluginInfo{}
		}
		return inspect(sec, p)
	})
	return err
}

// WriteShipped writes `tarzan plugin list`'s table of the shipped
// plugins, with their option names; verbose adds each option's type,
// default and help.
func WriteShipped(out io.Writer, verbose bool) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "KIND\tNAME\tSOURCE\tVERSION\tPROTOCOL\tOPTIONS")
	kinds := []string{builtin.KindTransport, builtin.KindDiscovery, builtin.KindCover, builtin.KindAdapter}
	for _, kind := range kinds {
		for _, n := range builtin.Names(kind) {
			opts := strings.Join(builtin.Schema(kind, n).Names(), ",")
			if opts == "" {
				opts = "-"
			}
			fmt.Fprintf(w, "%s\t%s\tbuiltin\ttarzan %s\t%d\t%s\n", kind, n, version.Release, pluginkit.ProtocolVersion, opts)
		}
	}
	w.Flush()
	if !verbose {
		return
	}
	for _, kind := range kinds {
		for _, n := range builtin.Names(kind) {
			fmt.Fprintf(out, "\n%s %s\n", kind, n)
			WriteSchema(out, builtin.Schema(kind, n))
		}
	}
}

// WriteSchema writes one plugin's options as a table: option, type,
// default, help.
func WriteSchema(out io.Writer, s *pluginkit.Schema) {
	if len(s.Options) == 0 {
		fmt.Fprintln(out, "  (no options)")
		return
	}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	defer w.Flush()
	fmt.Fprintln(w, "  OPTION\tTYPE\tDEFAULT\tHELP")
	for _, o := range s.Options {
		typ := string(o.Type)
		if o.List {
			typ = "list of " + typ
		}
		if o.Min != "" || o.Max != "" {
			typ += " " + o.Min + ".." + o.Max
		}
		if len(o.Values) > 0 {
			typ += " (" + strings.Join(o.Values, "|") + ")"
		}
		def := o.Default
		switch {
		case o.Required:
			def = "(required)"
		case def == "":
			def = "-"
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\n", o.Name, typ, def, o.Help)
	}
}
