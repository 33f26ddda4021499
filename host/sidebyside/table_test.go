package sidebyside

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}, {[]float64{7}, 7}} {
		if got := Median(c.in); got != c.want {
			t.Errorf("Median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	if !math.IsNaN(Median(nil)) {
		t.Error("Median(nil) is not NaN")
	}
	in := []float64{3, 1, 2}
	Median(in)
	if in[0] != 3 {
		t.Error("Median sorted its argument in place")
	}
}

func TestTableRatiosAndOutput(t *testing.T) {
	tb := Table{Title: "x", Runs: 3, Command: "tarzan bench compare", Metrics: []Metric{
		{Name: "bulk", Unit: "MB/s", HigherBetter: true, Base: "tor", Test: "tarzan",
			BaseSamples: []float64{6, 7, 8}, TestSamples: []float64{30, 35, 40}, Target: "≥ 5× Tor"},
		{Name: "tun", Unit: "Mbit/s", Base: "tor", Test: "tarzan", TestSamples: []float64{500}},
	}}
	if r := tb.Metrics[0].Ratio(); r != 5 {
		t.Errorf("ratio = %v, want 5", r)
	}
	if r := tb.Metrics[1].Ratio(); !math.IsNaN(r) {
		t.Errorf("ratio without a baseline = %v, want NaN", r)
	}
	var txt bytes.Buffer
	if err := tb.WriteText(&txt); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"tor 7.00", "tarzan 35.0", "5.00", "≥ 5× Tor", "reproduce: tarzan bench compare"} {
		if !strings.Contains(txt.String(), want) {
			t.Errorf("text output lacks %q:\n%s", want, txt.String())
		}
	}
	var js bytes.Buffer
	if err := tb.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Metrics []struct {
			Ratio *float64 `json:"ratio"`
		} `json:"metrics"`
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Metrics[0].Ratio == nil || *back.Metrics[0].Ratio != 5 || back.Metrics[1].Ratio != nil {
		t.Errorf("JSON ratios wrong: %s", js.String())
	}
}
