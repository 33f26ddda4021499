package config

import "strings"

// listOptions are plugin options that hold address lists; Write puts them
// as TOML arrays (peers = ["a:1", "b:2"]), which read back as the same
// comma-joined string the plugin gets.
var listOptions = map[string]bool{"peers": true, "bootstrap": true}

// listOrQuoted is an option's value as Write puts it.
func listOrQuoted(key, v string) string {
	if !listOptions[key] || v == "" {
		return quote(v)
	}
	parts := strings.Split(v, ",")
	for i, s := range parts {
		parts[i] = quote(strings.TrimSpace(s))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
