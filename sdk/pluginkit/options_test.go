package pluginkit

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var testSchema = Schema{Name: "demo", Options: []Option{
	{Name: "n", Type: TypeInt, Min: "1", Max: "10", Default: "5", Help: "a count"},
	{Name: "rate", Type: TypeFloat, Min: "0", Help: "a rate"},
	{Name: "wait", Type: TypeDuration, Min: "1ms", Help: "a wait"},
	{Name: "on", Type: TypeBool, Help: "a flag"},
	{Name: "peers", Type: TypeAddrPort, List: true, Help: "peers"},
	{Name: "bind", Type: TypeAddr, AllowEmpty: true, Help: "an address, \"\" for any"},
	{Name: "net", Type: TypePrefix, Help: "a prefix"},
	{Name: "mode", Type: TypeString, Values: []string{"a", "b"}, Help: "a mode"},
	{Name: "file", Type: TypeFile, Help: "a file"},
	{Name: "prog", Type: TypeCommand, Help: "a program"},
	{Name: "key", Type: TypeString, Required: true, Help: "the key"},
}}

func TestSchemaProblems(t *testing.T) {
	if err := testSchema.Valid(); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, nil, 0o600)
	good := map[string]string{"n": " 10 ", "rate": "0", "wait": "1ms", "on": "true", "peers": "127.0.0.1:1, [::1]:2",
		"bind": "", "net": "10.0.0.0/8", "mode": "b", "file": file, "prog": "sh", "key": "k"}
	if p := testSchema.Problems(good); len(p) != 0 {
		t.Errorf("good options: %v", p)
	}
	bad := map[string]string{"n": "11", "rate": "-1", "wait": "0s", "on": "maybe", "peers": "127.0.0.1:1,nope",
		"bind": "x", "net": "10.0.0.0", "mode": "c", "file": file + ".missing", "prog": "no-such-program-here", "extra": "1"}
	want := []string{
		`option bind: "x" is not an IP address`,
		`option extra: unknown option; demo takes bind, file, key, mode, n, net, on, peers, prog, rate, wait`,
		`option file: file ` + file + `.missing: no such file or directory`,
		`option key: is required: the key`,
		`option mode: "c" is not one of a, b`,
		`option n: 11 is out of range 1..10`,
		`option net: "10.0.0.0" is not an IP prefix such as 10.0.0.0/8`,
		`option on: "maybe" is not true or false`,
		`option peers: element 2: "nope" is not an IP:port address`,
		`option prog: program "no-such-program-here" not found`,
		`option rate: -1 is below 0`,
		`option wait: 0s is below 1ms`,
	}
	got := testSchema.Problems(bad)
	if len(got) != len(want) {
		t.Fatalf("problems %v, want %d", got, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i].Error(), w) {
			t.Errorf("%q, want %q", got[i].Error(), w)
		}
	}
	if err := testSchema.Check(map[string]string{"key": "k", "n": "0"}); err == nil || err.Error() != "demo: option n: 0 is out of range 1..10" {
		t.Errorf("Check: %v", err)
	}
}

func TestSchemaValid(t *testing.T) {
	for _, s := range []Schema{
		{},
		{Name: "x", Options: []Option{{Name: "a", Type: TypeInt}, {Name: "a", Type: TypeInt}}},
		{Name: "x", Options: []Option{{Name: "a", Type: "number"}}},
		{Name: "x", Options: []Option{{Name: "a", Type: TypeInt, Min: "one"}}},
		{Name: "x", Options: []Option{{Name: "a", Type: TypeInt, Max: "3", Default: "4"}}},
	} {
		if s.Valid() == nil {
			t.Errorf("%+v is valid", s)
		}
	}
}

// The description round-trips through JSON with the declared schema.
func TestWriteDescription(t *testing.T) {
	Declare(testSchema)
	defer func() { declared.schema = nil }()
	var b bytes.Buffer
	if err := WriteDescription(&b, "transport", []int{1}); err != nil {
		t.Fatal(err)
	}
	var d Description
	if err := json.Unmarshal(b.Bytes(), &d); err != nil {
		t.Fatal(err)
	}
	if d.Format != DescribeFormat || d.Kind != "transport" || d.Schema == nil || d.Schema.Lookup("n").Max != "10" || !d.Schema.Lookup("key").Required {
		t.Errorf("description %s", b.String())
	}
}
