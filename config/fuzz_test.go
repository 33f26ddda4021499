package config

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// FuzzParse checks that Parse never panics, that the line scanner finds a
// line for every key the TOML parser saw, and that a config that parses
// survives marshal and Parse unchanged.
func FuzzParse(f *testing.F) {
	if data, err := os.ReadFile("../node.toml"); err == nil {
		f.Add(data)
	}
	f.Add(marshal(Default()))
	f.Add([]byte("[discovery.options]\npeers = [\n \"a:1\", # ]\n]\nx = '''\n[node]'''\n[tunnels]\nhops = 2\n"))
	f.Add([]byte("transport = { name = \"udp\", options = { a = \"b\" } }\n\"node\".'exit' = true\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("node.toml", data)

		var raw map[string]any
		if md, derr := toml.Decode(string(data), &raw); derr == nil {
			lines := scanKeyLines(data)
			n := strings.Count(string(data), "\n") + 1
			for _, k := range md.Keys() {
				if l := lines.find(k.String()); l < 1 || l > n {
					t.Fatalf("key %s: line %d of %d", k, l, n)
				}
			}
		}
		if err != nil {
			return
		}
		again, err := Parse("node.toml", marshal(c))
		if err != nil {
			t.Fatalf("marshal of a parsed config does not parse: %v\n%s", err, marshal(c))
		}
		if !reflect.DeepEqual(c, again) {
			t.Fatalf("round trip changed the config:\n%+v\n%+v", c, again)
		}
	})
}

func TestScanKeyLines(t *testing.T) {
	doc := `# header
top = 1
[a]
b = "x # not a comment [c]"
"q.k" = 'lit'
d.e = [
  1, """
f = 2
""", [3],
]
g = { h = 1 }
[ a . 'i' ]
j = """ok\""""
k = 3
`
	want := map[string]int{"top": 2, "a": 3, "a.b": 4, `a."q.k"`: 5, "a.d": 6, "a.d.e": 6,
		"a.g": 11, "a.g.h": 11, "a.i": 12, "a.i.j": 13, "a.i.k": 14}
	l := scanKeyLines([]byte(doc))
	for k, line := range want {
		if got := l.find(k); got != line {
			t.Errorf("find(%s) = %d, want %d", k, got, line)
		}
	}
	if got := l.find("a.f"); got != 3 {
		t.Errorf("find(a.f) = %d, want 3 (the [a] header: f is inside a string)", got)
	}
}
