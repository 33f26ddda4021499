package descriptor

import (
	"testing"
	"time"
)

// TestAttackTenYearDescriptor: a Sybil that signs a descriptor valid for
// ten years must not get it accepted (a departed Sybil would otherwise
// stay in views for that long).
func TestAttackTenYearDescriptor(t *testing.T) {
	id := testIdentity(t, 1)
	d := sample()
	d.Expires = d.Published.Add(10 * 365 * 24 * time.Hour)
	if b, err := d.Sign(id); err == nil {
		if _, err := Parse(b, t0); err == nil {
			t.Fatal("ATTACK SUCCEEDED: a descriptor valid for ten years was signed and parsed")
		}
	}
}
