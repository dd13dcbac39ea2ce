// Command chart draws the benchmark chart of sievefs's harness (../): one
// panel per lower filesystem, one group of horizontal bars per workload, one
// bar per configuration, each the ratio of its median to native's.
//
// It is a module of its own so that the sievefs module does not depend on
// gonum.org/v1/plot. The harness runs it as
//
//	go run . -in chart.json -out ../../docs/benchmarks.png
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"image/color"
	"math"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// input is written by the harness (bench/report.go, chartInput).
type input struct {
	Title    string   `json:"title"`
	Subtitle string   `json:"subtitle"`
	Series   []string `json:"series"`
	Panels   []struct {
		Title  string      `json:"title"`
		Rows   []string    `json:"rows"`
		Values [][]float64 `json:"values"` // [series][row]; negative: missing
	} `json:"panels"`
}

var palette = []color.Color{
	color.RGBA{0x1f, 0x77, 0xb4, 0xff}, // blue
	color.RGBA{0xff, 0x7f, 0x0e, 0xff}, // orange
	color.RGBA{0x2c, 0xa0, 0x2c, 0xff}, // green
	color.RGBA{0x7f, 0x7f, 0x7f, 0xff}, // grey
	color.RGBA{0x94, 0x67, 0xbd, 0xff}, // purple
}

func main() {
	in := flag.String("in", "", "chart input (JSON) written by the harness")
	out := flag.String("out", "benchmarks.png", "PNG to write")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "chart:", err)
		os.Exit(1)
	}
}

func run(inPath, outPath string) error {
	b, err := os.ReadFile(inPath)
	if err != nil {
		return err
	}
	var in input
	if err := json.Unmarshal(b, &in); err != nil {
		return fmt.Errorf("%s: %v", inPath, err)
	}
	if len(in.Panels) == 0 || len(in.Series) == 0 {
		return fmt.Errorf("%s: nothing to draw", inPath)
	}
	nrows := 0
	maxv := 1.0
	for _, p := range in.Panels {
		nrows = max(nrows, len(p.Rows))
		for _, s := range p.Values {
			for _, v := range s {
				maxv = math.Max(maxv, v)
			}
		}
	}
	nser := len(in.Series)
	// Sizes in points; 1 pt = 1/72 in, drawn at 96 dpi.
	barW := vg.Length(7)
	groupH := barW*vg.Length(nser) + 8
	panelH := groupH*vg.Length(nrows) + 90
	panelW := vg.Length(560)
	header := vg.Length(62)
	W := panelW * vg.Length(len(in.Panels))
	H := panelH + header

	// At most 2: a bar beyond is cut, its label still says how far it goes.
	xmax := math.Min(2, math.Max(1.4, maxv*1.12))
	var plots []*plot.Plot
	for _, panel := range in.Panels {
		p := plot.New()
		p.Title.Text = panel.Title
		p.Title.TextStyle.Font.Size = 13
		p.X.Label.Text = "speed ÷ native (higher is better)"
		p.X.Min, p.X.Max = 0, xmax
		p.X.Tick.Marker = ticks(xmax)
		p.Y.Min, p.Y.Max = -0.6, float64(len(panel.Rows))-0.4
		n := len(panel.Rows)
		// First row at the top.
		labels := make([]string, n)
		for i, r := range panel.Rows {
			labels[n-1-i] = r
		}
		p.NominalY(labels...)
		p.Y.Tick.Label.Font.Size = 10
		p.Add(plotter.NewGrid())
		for s := range panel.Values {
			vals := make(plotter.Values, n)
			var xys plotter.XYLabels
			for i, v := range panel.Values[s] {
				y := n - 1 - i
				if v < 0 {
					vals[y] = 0
					xys.XYs = append(xys.XYs, plotter.XY{X: 0, Y: float64(y)})
					xys.Labels = append(xys.Labels, "n/a")
					continue
				}
				vals[y] = math.Min(v, xmax)
				xys.XYs = append(xys.XYs, plotter.XY{X: math.Min(v, xmax), Y: float64(y)})
				xys.Labels = append(xys.Labels, fmt.Sprintf("%.2f", v))
			}
			bars, err := plotter.NewBarChart(vals, barW)
			if err != nil {
				return err
			}
			bars.Horizontal = true
			bars.Color = palette[s%len(palette)]
			bars.LineStyle.Width = 0
			off := (vg.Length(nser-1)/2 - vg.Length(s)) * barW
			bars.Offset = off
			p.Add(bars)
			lab, err := plotter.NewLabels(xys)
			if err != nil {
				return err
			}
			for i := range lab.TextStyle {
				lab.TextStyle[i].Font.Size = 7
				lab.TextStyle[i].YAlign = draw.YCenter
			}
			lab.Offset = vg.Point{X: 2, Y: off}
			p.Add(lab)
		}
		ref, err := plotter.NewLine(plotter.XYs{{X: 1, Y: -0.6}, {X: 1, Y: float64(n) - 0.4}})
		if err != nil {
			return err
		}
		ref.LineStyle.Width = vg.Points(1)
		ref.LineStyle.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		ref.LineStyle.Color = color.Black
		p.Add(ref)
		plots = append(plots, p)
	}

	img := vgimg.NewWith(vgimg.UseWH(W, H), vgimg.UseDPI(96))
	dc := draw.New(img)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	sty := text.Style{
		Color:   color.Black,
		Font:    font.From(plot.DefaultFont, 15),
		Handler: plot.DefaultTextHandler,
		XAlign:  draw.XCenter,
		YAlign:  draw.YTop,
	}
	dc.FillText(sty, vg.Point{X: W / 2, Y: H - 8}, in.Title)
	sty.Font = font.From(plot.DefaultFont, 10)
	dc.FillText(sty, vg.Point{X: W / 2, Y: H - 28}, in.Subtitle)
	// The legend, on one line under the titles.
	sty.XAlign, sty.YAlign = draw.XLeft, draw.YCenter
	sty.Font = font.From(plot.DefaultFont, 11)
	var legendW vg.Length
	for _, name := range in.Series {
		legendW += 14 + sty.Width(name) + 18
	}
	x, y := W/2-legendW/2, H-header+6
	for s, name := range in.Series {
		dc.SetColor(palette[s%len(palette)])
		dc.Fill(vg.Rectangle{Min: vg.Point{X: x, Y: y - 5}, Max: vg.Point{X: x + 10, Y: y + 5}}.Path())
		dc.FillText(sty, vg.Point{X: x + 14, Y: y}, name)
		x += 14 + sty.Width(name) + 18
	}
	body := draw.Crop(dc, 0, 0, 0, -header)
	tiles := draw.Tiles{Rows: 1, Cols: len(plots), PadTop: 4, PadBottom: 6, PadLeft: 6, PadRight: 14, PadX: 24}
	canvases := plot.Align([][]*plot.Plot{plots}, tiles, body)
	for i, p := range plots {
		p.Draw(canvases[0][i])
	}
	f, err := os.Create(outPath)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ticks marks the ratio axis every 0.2, labelled every 0.4 and at 1.
func ticks(xmax float64) plot.ConstantTicks {
	var t []plot.Tick
	for i := 0; float64(i)*0.2 <= xmax+1e-9; i++ {
		v := float64(i) * 0.2
		label := ""
		if i%2 == 0 || i == 5 {
			label = fmt.Sprintf("%.1f", v)
		}
		t = append(t, plot.Tick{Value: v, Label: label})
	}
	return t
}
