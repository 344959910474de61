package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"strings"
)

// The report scenario reads result lines (the -json output of the other
// scenarios, one JSON object a line, any number of files) and writes a
// markdown table that sets each Meteor figure beside the Nchan figure of
// the same scenario and parameters, with their ratio, and an SVG chart of
// those ratios. Lines that are not results are skipped.

// anyResult holds the fields of every scenario's result that the report
// uses; a field a scenario does not have stays zero.
type anyResult struct {
	label
	Subscribers int     `json:"subscribers"`
	Failed      int     `json:"failed"`
	Size        int     `json:"size"`
	PSSKiB      float64 `json:"pss_kib_per_subscriber"`
	RSSKiB      float64 `json:"kib_per_subscriber"`
	IdleCPU     float64 `json:"cpu_percent"`
	ServerCPU   float64 `json:"server_cpu_percent"`
	Procs       int     `json:"server_procs"`

	PublishRate  float64 `json:"publish_rate"`
	WantedRate   float64 `json:"wanted_rate"`
	Expected     int64   `json:"expected"`
	Delivered    int64   `json:"delivered"`
	DeliveryRate float64 `json:"delivery_rate"`
	Lost         int64   `json:"lost"`
	Dups         int64   `json:"dups"`
	LatencyP50us int64   `json:"latency_p50_us"`
	LatencyP99us int64   `json:"latency_p99_us"`
	LatencyMaxus int64   `json:"latency_max_us"`

	LastP50us int64 `json:"last_p50_us"`
	LastMaxus int64 `json:"last_max_us"`

	Churn *churnResult `json:"churn"`

	Conns    int     `json:"conns"`
	Pipeline int     `json:"pipeline"`
	Rate     float64 `json:"rate"`
}

// key groups results that are comparable across targets.
func (r *anyResult) key() string {
	n := r.Subscribers + r.Failed
	switch r.Scenario {
	case "idle":
		return fmt.Sprintf("idle, %d subscribers, %s", n, r.Transport)
	case "fanout":
		return fmt.Sprintf("fanout, %d subscribers, %g msg/s x %d B, %s", n, r.WantedRate, r.Size, r.Transport)
	case "churn":
		return fmt.Sprintf("churn, %d steady, %g msg/s, %s", n, r.WantedRate, r.Transport)
	case "burst":
		return fmt.Sprintf("burst, %d subscribers, %s", n, r.Transport)
	case "publish":
		return fmt.Sprintf("publish, %d conns, HTTP", r.Conns)
	}
	return r.Scenario
}

// metric is one figure of a result. better says which way is good: +1
// higher, -1 lower.
type metric struct {
	name   string
	better int
	unit   string
	get    func(*anyResult) (float64, bool)
}

func ms(us int64) float64 { return float64(us) / 1000 }

var metrics = map[string][]metric{
	"idle": {
		{"memory per subscriber (PSS)", -1, "KiB", func(r *anyResult) (float64, bool) { return r.PSSKiB, r.PSSKiB > 0 }},
		{"server CPU while idle", -1, "% of a core", func(r *anyResult) (float64, bool) { return r.IdleCPU, true }},
	},
	"fanout": {
		{"deliveries/s", +1, "", func(r *anyResult) (float64, bool) { return r.DeliveryRate, true }},
		{"latency p50", -1, "ms", func(r *anyResult) (float64, bool) { return ms(r.LatencyP50us), true }},
		{"latency p99", -1, "ms", func(r *anyResult) (float64, bool) { return ms(r.LatencyP99us), true }},
		{"latency max", -1, "ms", func(r *anyResult) (float64, bool) { return ms(r.LatencyMaxus), true }},
		{"lost + duplicated", -1, "", func(r *anyResult) (float64, bool) { return float64(r.Lost + r.Dups), true }},
		{"server CPU", -1, "% of a core", func(r *anyResult) (float64, bool) { return r.ServerCPU, r.ServerCPU > 0 }},
	},
	"churn": {
		{"connects/s", +1, "", func(r *anyResult) (float64, bool) {
			if r.Churn == nil {
				return 0, false
			}
			return r.Churn.ConnectRate, true
		}},
		{"connect p99", -1, "ms", func(r *anyResult) (float64, bool) {
			if r.Churn == nil {
				return 0, false
			}
			return ms(r.Churn.ConnectP99us), true
		}},
		{"steady latency p99", -1, "ms", func(r *anyResult) (float64, bool) { return ms(r.LatencyP99us), true }},
		{"steady lost + duplicated", -1, "", func(r *anyResult) (float64, bool) { return float64(r.Lost + r.Dups), true }},
	},
	"burst": {
		{"last delivery, median burst", -1, "ms", func(r *anyResult) (float64, bool) { return ms(r.LastP50us), true }},
		{"last delivery, worst burst", -1, "ms", func(r *anyResult) (float64, bool) { return ms(r.LastMaxus), true }},
		{"lost + duplicated", -1, "", func(r *anyResult) (float64, bool) { return float64(r.Lost + r.Dups), true }},
	},
	"publish": {
		{"messages/s", +1, "", func(r *anyResult) (float64, bool) { return r.Rate, true }},
	},
}

// reportRow is one metric of one comparable group.
type reportRow struct {
	group, metric, unit string
	better              int
	meteor, nchan       float64
	hasM, hasN          bool
}

// advantage returns how many times better Meteor's figure is than
// Nchan's (above 1: Meteor better), or false when it cannot be said.
func (r *reportRow) advantage() (float64, bool) {
	if !r.hasM || !r.hasN {
		return 0, false
	}
	a, b := r.meteor, r.nchan
	if r.better < 0 {
		a, b = b, a
	}
	if b == 0 || a == 0 {
		return 0, false
	}
	return a / b, true
}

func buildRows(results []*anyResult) []*reportRow {
	var order []string
	byKey := map[string]map[string]*anyResult{}
	for _, r := range results {
		k := r.key()
		if r.Scenario == "publish" && r.Target == targetMeteor && r.Publish == publishLine {
			k = fmt.Sprintf("publish, %d conns, Meteor line protocol x %d pipelined", r.Conns, r.Pipeline)
		}
		if byKey[k] == nil {
			byKey[k] = map[string]*anyResult{}
			order = append(order, k)
		}
		byKey[k][r.Target] = r // the last run of a key wins
	}
	var rows []*reportRow
	for _, k := range order {
		m, n := byKey[k][targetMeteor], byKey[k][targetNchan]
		some := m
		if some == nil {
			some = n
		}
		for _, mt := range metrics[some.Scenario] {
			row := &reportRow{group: k, metric: mt.name, unit: mt.unit, better: mt.better}
			if m != nil {
				row.meteor, row.hasM = mt.get(m)
			}
			if n != nil {
				row.nchan, row.hasN = mt.get(n)
			}
			if row.hasM || row.hasN {
				rows = append(rows, row)
			}
		}
	}
	return rows
}

func fmtFigure(v float64, ok bool) string {
	switch {
	case !ok:
		return "–"
	case v == 0:
		return "0"
	case math.Abs(v) >= 1000:
		return commas(int64(math.Round(v)))
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func commas(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + commas(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// writeTable writes rows as a markdown table.
func writeTable(w io.Writer, rows []*reportRow) {
	fmt.Fprintln(w, "| scenario | figure | Meteor | Nchan | Meteor / Nchan | better |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, r := range rows {
		unit := ""
		if r.unit != "" {
			unit = " (" + r.unit + ")"
		}
		ratio := "–"
		if r.hasM && r.hasN && r.nchan != 0 {
			ratio = fmt.Sprintf("%.2f", r.meteor/r.nchan)
		}
		better := "–"
		if adv, ok := r.advantage(); ok {
			switch {
			case adv >= 1.05:
				better = fmt.Sprintf("Meteor, %.2f×", adv)
			case adv <= 1/1.05:
				better = fmt.Sprintf("Nchan, %.2f×", 1/adv)
			default:
				better = "even"
			}
		} else if r.hasM && r.hasN && r.meteor == r.nchan {
			better = "even"
		}
		fmt.Fprintf(w, "| %s | %s%s | %s | %s | %s | %s |\n", r.group, r.metric, unit,
			fmtFigure(r.meteor, r.hasM), fmtFigure(r.nchan, r.hasN), ratio, better)
	}
}

// writeSVG draws one horizontal bar per row that has both figures: how
// many times better Meteor is (right of the 1× line) or worse (left), on a
// log scale from 1/8× to 8×.
func writeSVG(w io.Writer, rows []*reportRow, title string) {
	type bar struct {
		label string
		adv   float64
	}
	var bars []bar
	for _, r := range rows {
		if adv, ok := r.advantage(); ok {
			bars = append(bars, bar{r.group + ": " + r.metric, adv})
		}
	}
	const (
		labelW = 520
		plotW  = 360
		rowH   = 20
		top    = 50
		span   = 3.0 // log2 of the scale's end: 8×
	)
	height := top + rowH*len(bars) + 40
	width := labelW + plotW + 80
	x := func(adv float64) float64 {
		l := math.Max(-span, math.Min(span, math.Log2(adv)))
		return labelW + (l+span)/(2*span)*plotW
	}
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n",
		width, height, width, height)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(w, `<text x="10" y="20" font-size="14" font-weight="bold">%s</text>`+"\n", html.EscapeString(title))
	fmt.Fprintf(w, `<text x="10" y="38" fill="#555">bars: how many times better Meteor is than Nchan (right of 1×) or worse (left); log scale, clipped at 8×</text>`+"\n")
	for _, t := range []float64{0.125, 0.25, 0.5, 1, 2, 4, 8} {
		stroke := "#ddd"
		if t == 1 {
			stroke = "#333"
		}
		fmt.Fprintf(w, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s"/>`+"\n", x(t), top-4, x(t), top+rowH*len(bars), stroke)
		lbl := fmt.Sprintf("%g×", t)
		if t < 1 {
			lbl = fmt.Sprintf("1/%g×", 1/t)
		}
		fmt.Fprintf(w, `<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%s</text>`+"\n", x(t), top+rowH*len(bars)+14, lbl)
	}
	for i, b := range bars {
		y := top + i*rowH
		fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", labelW-8, y+14, html.EscapeString(b.label))
		x0, x1 := x(1), x(b.adv)
		color := "#2a7ab9"
		if b.adv < 1 {
			color = "#c0504d"
			x0, x1 = x1, x0
		}
		fmt.Fprintf(w, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", x0, y+3, math.Max(x1-x0, 1), rowH-6, color)
		fmt.Fprintf(w, `<text x="%d" y="%d" fill="#333">%.2f×</text>`+"\n", labelW+plotW+6, y+14, b.adv)
	}
	fmt.Fprintln(w, "</svg>")
}

// readResults reads result lines from r, skipping what is not one.
func readResults(r io.Reader) ([]*anyResult, error) {
	var out []*anyResult
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "{") {
			continue
		}
		res := new(anyResult)
		if json.Unmarshal([]byte(line), res) != nil || res.Scenario == "" || res.Target == "" {
			continue
		}
		out = append(out, res)
	}
	return out, sc.Err()
}

func runReport(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "markdown table file (default: standard output)")
	svg := fs.String("svg", "", "SVG chart file (default: none)")
	title := fs.String("title", "Meteor vs Nchan", "chart title")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("usage: meteor-bench report [-o table.md] [-svg chart.svg] results.jsonl...")
	}
	var results []*anyResult
	for _, name := range fs.Args() {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		rs, err := readResults(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		results = append(results, rs...)
	}
	if len(results) == 0 {
		return errors.New("no results in the files given")
	}
	rows := buildRows(results)
	w := stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	writeTable(w, rows)
	if *svg != "" {
		f, err := os.Create(*svg)
		if err != nil {
			return err
		}
		writeSVG(f, rows, *title)
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}
