package builtin

import (
	"slices"
	"testing"
	"time"
)

// Every shipped cover policy is listed, and each registered name is the
// name its policy reports, with default options accepted.
func TestCovers(t *testing.T) {
	want := []string{"balanced", "constant", "none", "poisson"}
	if got := Names(KindCover); !slices.Equal(got, want) {
		t.Fatalf("Names(cover) = %v, want %v", got, want)
	}
	for name, factory := range Covers {
		p, err := factory(nil)
		if err != nil {
			t.Errorf("%s with default options: %v", name, err)
			continue
		}
		if p.Name() != name {
			t.Errorf("policy registered as %q calls itself %q", name, p.Name())
		}
		if _, err := p.Tick(time.Now(), nil); err != nil {
			t.Errorf("%s: Tick with no links: %v", name, err)
		}
		p.Close()
	}
}
