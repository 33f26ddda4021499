package config

// BurntSushi/toml v1.6 records where each key is defined but does not
// export it (MetaData.keyInfo is private; only a ParseError carries a
// Position). So for errors found after parsing, a small scanner finds each
// key's line itself. It runs only on text the TOML parser has accepted,
// so it need not diagnose anything: it tracks the current [table], dotted
// and quoted keys, strings (so that '#', '[' or '=' inside them are not
// misread) and values that span lines (multi-line strings and arrays).

import (
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// keyLines maps a key, as toml.Key.String prints it, to the 1-based line
// that defines it (the first line, for a table defined implicitly).
type keyLines map[string]int

// find returns the line of key or, if the file does not set it, of its
// nearest ancestor that it does set; 0 if none.
func (l keyLines) find(key string) int {
	parts, rest, ok := parseKey(key)
	if !ok || rest != "" {
		return 0
	}
	for n := len(parts); n > 0; n-- {
		if line, ok := l[toml.Key(parts[:n]).String()]; ok {
			return line
		}
	}
	return 0
}

// add records parts and each of its prefixes at line, first definition wins.
func (l keyLines) add(parts []string, line int) {
	for n := 1; n <= len(parts); n++ {
		k := toml.Key(parts[:n]).String()
		if _, ok := l[k]; !ok {
			l[k] = line
		}
	}
}

func scanKeyLines(data []byte) keyLines {
	l := keyLines{}
	var table []string
	depth, open := 0, "" // unclosed [ or { and unclosed multi-line string of a value
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		if depth > 0 || open != "" {
			depth, open = scanValue(line, depth, open)
			continue
		}
		t := strings.TrimSpace(line)
		switch {
		case t == "" || t[0] == '#':
		case t[0] == '[': // [table] or [[array of tables]]
			parts, _, ok := parseKey(strings.TrimLeft(t, "["))
			if ok {
				table = parts
				l.add(table, n)
			}
		default:
			parts, rest, ok := parseKey(t)
			rest = strings.TrimSpace(rest)
			if !ok || !strings.HasPrefix(rest, "=") {
				continue
			}
			l.add(append(table[:len(table):len(table)], parts...), n)
			depth, open = scanValue(rest[1:], 0, "")
		}
	}
	return l
}

// parseKey reads a dotted key (bare, "basic" or 'literal' parts) from the
// start of s and returns its parts and what follows it.
func parseKey(s string) (parts []string, rest string, ok bool) {
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return nil, "", false
		}
		var part string
		switch s[0] {
		case '"':
			end := endOfString(s, 1, '"')
			if end < 0 {
				return nil, "", false
			}
			part, s = unescape(s[1:end-1]), s[end:]
		case '\'':
			end := strings.IndexByte(s[1:], '\'')
			if end < 0 {
				return nil, "", false
			}
			part, s = s[1:1+end], s[2+end:]
		default:
			end := strings.IndexFunc(s, func(r rune) bool {
				return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
			})
			if end < 0 {
				end = len(s)
			}
			if end == 0 {
				return nil, "", false
			}
			part, s = s[:end], s[end:]
		}
		parts = append(parts, part)
		s = strings.TrimLeft(s, " \t")
		if !strings.HasPrefix(s, ".") {
			return parts, s, true
		}
		s = s[1:]
	}
}

// scanValue walks one line of a value, starting inside depth unclosed
// brackets and the multi-line string opened by open ("" if none), and
// returns the state at the end of the line.
func scanValue(s string, depth int, open string) (int, string) {
	i := 0
	for i < len(s) {
		if open != "" {
			end := endOfMultiline(s, i, open)
			if end < 0 {
				return depth, open
			}
			i, open = end, ""
			continue
		}
		switch c := s[i]; c {
		case '#':
			return depth, ""
		case '"', '\'':
			if triple := strings.Repeat(string(c), 3); strings.HasPrefix(s[i:], triple) {
				i, open = i+3, triple
				continue
			}
			end := endOfString(s, i+1, c)
			if end < 0 {
				return depth, ""
			}
			i = end
			continue
		case '[', '{':
			depth++
		case ']', '}':
			depth--
		}
		i++
	}
	return depth, open
}

// endOfString returns the index just past the quote closing a one-line
// string whose contents start at s[i], or -1.
func endOfString(s string, i int, quote byte) int {
	for ; i < len(s); i++ {
		switch {
		case s[i] == '\\' && quote == '"':
			i++
		case s[i] == quote:
			return i + 1
		}
	}
	return -1
}

// endOfMultiline returns the index just past the delimiter closing a
// multi-line string, searching from s[i], or -1. Up to two quotes may
// precede the delimiter as content (`""""` ends a string with a quote).
func endOfMultiline(s string, i int, delim string) int {
	for ; i < len(s); i++ {
		if s[i] == '\\' && delim[0] == '"' {
			i++
			continue
		}
		if strings.HasPrefix(s[i:], delim) {
			end := i + 3
			for extra := 0; extra < 2 && end < len(s) && s[end] == delim[0]; extra++ {
				end++
			}
			return end
		}
	}
	return -1
}

// unescape decodes the escapes of a TOML basic string (TOML 1.1, which
// BurntSushi/toml v1.6 accepts: \e and \xHH included).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		hex := 0
		switch s[i] {
		case 'b':
			b.WriteByte('\b')
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'f':
			b.WriteByte('\f')
		case 'r':
			b.WriteByte('\r')
		case 'e':
			b.WriteByte(0x1b)
		case 'x':
			hex = 2
		case 'u':
			hex = 4
		case 'U':
			hex = 8
		default: // \" and \\
			b.WriteByte(s[i])
		}
		if hex > 0 && i+hex < len(s) {
			if r, err := strconv.ParseUint(s[i+1:i+1+hex], 16, 32); err == nil {
				b.WriteRune(rune(r))
				i += hex
			}
		}
	}
	return b.String()
}
