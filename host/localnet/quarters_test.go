package localnet

import (
	"io"
	"slices"
	"testing"
)

// The demo's fetch progress reports each quarter once, when it is reached,
// and the last at the full size.
func TestQuartersReportEachQuarterOnce(t *testing.T) {
	var got []int64
	q := &quarters{w: io.Discard, total: 100, report: func(done, total int64) { got = append(got, done) }}
	for _, n := range []int{10, 20, 30, 40} {
		q.Write(make([]byte, n))
	}
	if want := []int64{30, 60, 100, 100}; !slices.Equal(got, want) {
		t.Fatalf("reports at %v, want %v", got, want)
	}
}
