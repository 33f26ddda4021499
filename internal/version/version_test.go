package version

import (
	"strings"
	"testing"

	"github.com/tarzan-net/tarzan/core/link"
)

func TestProtocolFromPrologue(t *testing.T) {
	if got, want := Protocol(), "v4"; link.Prologue == "tarzan-link-v4" && got != want {
		t.Fatalf("Protocol() = %q, want %q", got, want)
	}
	if !strings.HasSuffix(link.Prologue, "-"+Protocol()) {
		t.Fatalf("Protocol() = %q is not the suffix of %q", Protocol(), link.Prologue)
	}
}

func TestStringNamesEverything(t *testing.T) {
	in := Info{Release: "v1.2.3", Commit: "abc", Go: "go1.26", Platform: "linux/amd64", Protocol: "v4", PluginProtocol: 1}
	s := in.String()
	for _, want := range []string{"v1.2.3", "abc", "go1.26", "linux/amd64", "protocol v4", "plugin protocol 1"} {
		if !strings.Contains(s, want) {
			t.Errorf("%q lacks %q", s, want)
		}
	}
}
