package config

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Write validates c and writes it to path as an annotated node.toml: each
// key with a comment saying what it is for, its allowed values and its
// default. The file is replaced atomically and has mode 0644.
func Write(path string, c *Config) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("config: not writing %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("config: writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if _, err := tmp.Write(marshal(c)); err != nil {
		tmp.Close()
		return fmt.Errorf("config: writing %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("config: writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("config: writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("config: writing %s: %w", path, err)
	}
	return nil
}

const header = `# Tarzan node configuration.
#
# Every key is listed with what it is for, its allowed values and its
# default. Relative paths are resolved against the directory of this file.
# Unknown keys are an error, reported with their line.
`

func marshal(c *Config) []byte {
	def := Default()
	var b strings.Builder
	b.WriteString(header)
	for _, sec := range schema {
		fmt.Fprintf(&b, "\n%s[%s]\n", comment(sec.doc), sec.name)
		var tables []field
		for _, f := range sec.fields {
			if f.table {
				tables = append(tables, f)
				continue
			}
			fmt.Fprintf(&b, "\n%s# Default: %s\n%s = %s\n",
				comment(f.doc), f.encode(def), strings.TrimPrefix(f.key, sec.name+"."), f.encode(c))
		}
		for _, f := range tables {
			fmt.Fprintf(&b, "\n%s[%s]\n", comment(f.doc), f.key)
			p := optionsOf(c, f.key)
			keys := make([]string, 0, len(p))
			for k := range p {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(&b, "%s = %s\n", bareOrQuoted(k), listOrQuoted(k, p[k]))
			}
		}
	}
	return []byte(b.String())
}

// optionsOf returns the options of the plugin section that key belongs to.
func optionsOf(c *Config, key string) map[string]string {
	switch strings.TrimSuffix(key, ".options") {
	case "transport":
		return c.Transport.Options
	case "discovery":
		return c.Discovery.Options
	case "cover":
		return c.Cover.Options
	case "adapter":
		return c.Adapter.Options
	case "exit":
		return c.Exit.Options
	}
	panic("config: no plugin section for " + key)
}

func comment(doc string) string {
	return "# " + strings.ReplaceAll(doc, "\n", "\n# ") + "\n"
}

var bareKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func bareOrQuoted(k string) string {
	if bareKey.MatchString(k) {
		return k
	}
	return quote(k)
}

// quote writes s as a TOML basic string. (Go's strconv.Quote is close but
// emits \x and \a escapes TOML lacks.)
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u%04X`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}
