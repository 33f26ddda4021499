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
	L plot.Legend
	n int
}

// NewKey returns an empty key.
func NewKey() *Key {
	return &Key{L: plot.NewLegend()}
}

// Add adds an entry, as plot.Legend.Add does.
func (k *Key) Add(name string, thumbs ...plot.Thumbnailer) {
	k.L.Add(name, thumbs...)
	k.n++
}

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
// key.Width(c)), so that panels stacked with the same w align.
func DrawWithKeyWidth(c draw.Canvas, p *plot.Plot, key *Key, w vg.Length) (data, keyRect vg.Rectangle) {
	w = max(w, key.Width(c))
	pc := draw.Crop(c, 0, -w, 0, 0)
	p.Draw(pc)
	data = p.DataCanvas(pc).Rectangle
	if key == nil || key.n == 0 {
		return data, vg.Rectangle{}
	}
	kc := draw.Crop(c, c.Size().X-w+keyGap, 0, data.Min.Y-c.Min.Y, data.Max.Y-c.Max.Y)
	key.L.Top, key.L.Left = true, true
	key.L.XOffs, key.L.YOffs = 0, 0
	key.L.Draw(kc)
	return data, key.L.Rectangle(kc)
}
