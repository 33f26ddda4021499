package simplot

import (
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// keyGap is the space between a plot's axes and its key.
const keyGap = 4 * vg.Millimeter

// Key is a plot's legend kept apart from the plot (its own Legend stays
// empty), to be drawn beside the data rather than over it (DrawWithKey).
type Key struct {
	L     plot.Legend
	n     int
	names []string
}

// NewKey returns an empty key (9-point text).
func NewKey() *Key {
	k := &Key{L: plot.NewLegend()}
	k.L.TextStyle.Font.Size = vg.Points(9)
	return k
}

// Add adds an entry, as plot.Legend.Add does.
func (k *Key) Add(name string, thumbs ...plot.Thumbnailer) {
	k.L.Add(name, thumbs...)
	k.n++
	k.names = append(k.names, name)
}

// Names are the entries' names, in order.
func (k *Key) Names() []string { return k.names }

// Len is the number of entries.
func (k *Key) Len() int { return k.n }

// Width is the width DrawWithKey gives the key in a canvas like c
// (0 for an empty key).
func (k *Key) Width(c draw.Canvas) vg.Length {
	if k == nil || k.n == 0 {
		return 0
	}
	return k.L.Rectangle(c).Size().X + keyGap
}

// DrawWithKey draws p into c with key in a column to the right of p's
// axes, top-aligned with the data area, so that the key covers no data.
// It returns the data area and the key's rectangle (empty for no key).
func DrawWithKey(c draw.Canvas, p *plot.Plot, key *Key) (data, keyRect vg.Rectangle) {
	return DrawWithKeyWidth(c, p, key, key.Width(c))
}

// DrawWithKeyWidth is DrawWithKey with a key column w wide (at least
// key.Width(c)), so that panels stacked with the same w align. A key
// wider than maxKeyShare of c (long policy names) goes in a strip below
// the axes instead, left-aligned with the data area.
func DrawWithKeyWidth(c draw.Canvas, p *plot.Plot, key *Key, w vg.Length) (data, keyRect vg.Rectangle) {
	if key == nil || key.n == 0 {
		pc := draw.Crop(c, 0, -w, 0, 0) // aligned with its neighbours' keys
		p.Draw(pc)
		return p.DataCanvas(pc).Rectangle, vg.Rectangle{}
	}
	w = max(w, key.Width(c))
	key.L.Top, key.L.Left = true, true
	key.L.XOffs, key.L.YOffs = 0, 0
	if w > c.Size().X*maxKeyShare {
		h := key.L.Rectangle(c).Size().Y + keyGap
		pc := draw.Crop(c, 0, 0, h, 0)
		p.Draw(pc)
		data = p.DataCanvas(pc).Rectangle
		kc := draw.Crop(c, data.Min.X-c.Min.X, 0, 0, -(c.Size().Y - h + keyGap))
		key.L.Draw(kc)
		return data, key.L.Rectangle(kc)
	}
	pc := draw.Crop(c, 0, -w, 0, 0)
	p.Draw(pc)
	data = p.DataCanvas(pc).Rectangle
	kc := draw.Crop(c, c.Size().X-w+keyGap, 0, data.Min.Y-c.Min.Y, data.Max.Y-c.Max.Y)
	key.L.Draw(kc)
	return data, key.L.Rectangle(kc)
}

// maxKeyShare is the widest a key beside the axes may be, as a share of
// the canvas width.
const maxKeyShare = 0.3
