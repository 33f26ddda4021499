package descriptor

import (
	"errors"
	"testing"
	"time"
)

// TestAttackTenYearDescriptor: a Sybil that signs a descriptor valid for
// ten years must not get it accepted (a departed Sybil would otherwise
// stay in views for that long). Sign refuses it, and so does Parse when
// the Sybil encodes it by hand.
func TestAttackTenYearDescriptor(t *testing.T) {
	id := testIdentity(t, 1)
	d := sample()
	d.Expires = d.Published.Add(10 * 365 * 24 * time.Hour)
	if _, err := d.Sign(id); !errors.Is(err, ErrLifetime) {
		t.Fatalf("Sign of a ten-year descriptor: %v, want ErrLifetime", err)
	}
	// By hand: a good encoding with the expiry field replaced.
	good := signed(t, sample(), id)
	fields := fieldsOf(good)
	for i, f := range fields {
		if f.Type == typeExpires {
			v, _ := unixSeconds(d.Expires, "expires")
			fields[i].Value = v
		}
	}
	if _, err := Parse(rebuild(t, id, fields...), t0); !errors.Is(err, ErrLifetime) {
		t.Fatalf("ATTACK SUCCEEDED: Parse of a ten-year descriptor: %v, want ErrLifetime", err)
	}
}

// TestLifetimeBoundary: exactly MaxLifetime is fine, a second more is not.
func TestLifetimeBoundary(t *testing.T) {
	id := testIdentity(t, 1)
	d := sample()
	d.Expires = d.Published.Add(MaxLifetime)
	b, err := d.Sign(id)
	if err != nil {
		t.Fatalf("Sign at MaxLifetime: %v", err)
	}
	if _, err := Parse(b, t0); err != nil {
		t.Fatalf("Parse at MaxLifetime: %v", err)
	}
	d.Expires = d.Expires.Add(time.Second)
	if _, err := d.Sign(id); !errors.Is(err, ErrLifetime) {
		t.Fatalf("Sign at MaxLifetime + 1 s: %v, want ErrLifetime", err)
	}
}
