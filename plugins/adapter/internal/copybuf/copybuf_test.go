package copybuf

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"
)

// sizes records the buffer size of every Read and answers each with
// fill(len(p)) bytes.
type sizes struct {
	asked []int
	left  int
	fill  func(n int) int
}

func (s *sizes) Read(p []byte) (int, error) {
	s.asked = append(s.asked, len(p))
	if s.left == 0 {
		return 0, io.EOF
	}
	n := min(s.fill(len(p)), s.left)
	s.left -= n
	return n, nil
}

// A busy stream (reads that fill the buffer) moves to large reads; a
// quiet one (short reads) stays on, or returns to, the small buffer.
func TestCopyBuffers(t *testing.T) {
	busy := &sizes{left: 4 * Large, fill: func(n int) int { return n }}
	if _, err := Copy(io.Discard, busy); err != nil {
		t.Fatal(err)
	}
	if busy.asked[0] != Small || busy.asked[1] != Large || busy.asked[2] != Large {
		t.Fatalf("busy stream read sizes %v; want %d then %d", busy.asked[:3], Small, Large)
	}
	quiet := &sizes{left: 10_000, fill: func(int) int { return 100 }}
	if _, err := Copy(io.Discard, quiet); err != nil {
		t.Fatal(err)
	}
	for _, n := range quiet.asked {
		if n != Small {
			t.Fatalf("quiet stream read %d at once; want %d", n, Small)
		}
	}
	calls := 0
	mixed := &sizes{left: 2 * Large, fill: func(n int) int {
		calls++
		if calls == 3 {
			return 10 // the stream pauses: back to small
		}
		return n
	}}
	if _, err := Copy(io.Discard, mixed); err != nil {
		t.Fatal(err)
	}
	if got := mixed.asked[:4]; got[2] != Large || got[3] != Small {
		t.Fatalf("read sizes %v; want the 4th small after a short 3rd", got)
	}
}

func TestCopyIsExact(t *testing.T) {
	src := bytes.Repeat([]byte("tarzan"), 300_000)
	var dst bytes.Buffer
	n, err := Copy(&dst, iotest.HalfReader(bytes.NewReader(src)))
	if err != nil || n != int64(len(src)) || !bytes.Equal(dst.Bytes(), src) {
		t.Fatalf("Copy = %d, %v; equal %v", n, err, bytes.Equal(dst.Bytes(), src))
	}
	if _, err := Copy(&dst, iotest.ErrReader(io.ErrUnexpectedEOF)); err != io.ErrUnexpectedEOF {
		t.Fatalf("error from src = %v", err)
	}
}
