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
	"slices"
	"strings"
)

// The report scenario reads result lines (the -json output of the other
// scenarios, one JSON object a line, any number of files) and writes a
// markdown table that sets each Meteor figure beside the Nchan figure (or,
// with -versus pushpin, the Pushpin figure) of the same scenario and
// parameters, with their ratio, and an SVG chart of those ratios. Lines that are not results are skipped. Repeated runs of
// the same scenario and parameters are summarised: each figure's median,
// and its minimum and maximum in parentheses; ratios are of the medians.
// A fan-out or churn group in which any run published below 95 % of the
// asked rate is marked "not valid" and has no verdict and no bar.

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
	Valid        *bool   `json:"valid"` // fan-out and churn; absent in older results
	AckP50us     int64   `json:"ack_p50_us"`
	AckP99us     int64   `json:"ack_p99_us"`
	GenCPU       float64 `json:"generator_cpu_percent"`
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

// key groups results that are comparable across targets: the scenario's
// key, and for a cluster its engine and node count.
func (r *anyResult) key() string {
	k := r.scenarioKey()
	if r.Engine != "" && r.Engine != "memory" || r.Nodes > 1 {
		k += fmt.Sprintf(", %s engine, %d node(s)", r.Engine, max(r.Nodes, 1))
	}
	return k
}

func (r *anyResult) scenarioKey() string {
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

// notValid says whether r is a fan-out or churn run that did not publish
// at the asked rate.
func (r *anyResult) notValid() bool { return r.Valid != nil && !*r.Valid }

// metric is one figure of a result. better says which way is good: +1
// higher, -1 lower, 0 neither (no verdict).
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
		{"publish rate achieved", 0, "msg/s", func(r *anyResult) (float64, bool) { return r.PublishRate, r.PublishRate > 0 }},
		{"publish acknowledged, p50", -1, "ms", func(r *anyResult) (float64, bool) { return ms(r.AckP50us), r.AckP50us > 0 }},
		{"publish acknowledged, p99", -1, "ms", func(r *anyResult) (float64, bool) { return ms(r.AckP99us), r.AckP99us > 0 }},
		{"deliveries/s", +1, "", func(r *anyResult) (float64, bool) { return r.DeliveryRate, true }},
		{"latency p50", -1, "ms", func(r *anyResult) (float64, bool) { return ms(r.LatencyP50us), true }},
		{"latency p99", -1, "ms", func(r *anyResult) (float64, bool) { return ms(r.LatencyP99us), true }},
		{"latency max", -1, "ms", func(r *anyResult) (float64, bool) { return ms(r.LatencyMaxus), true }},
		{"lost + duplicated", -1, "", func(r *anyResult) (float64, bool) { return float64(r.Lost + r.Dups), true }},
		{"server CPU", -1, "% of a core", func(r *anyResult) (float64, bool) { return r.ServerCPU, r.ServerCPU > 0 }},
		{"generator CPU", 0, "% of a core", func(r *anyResult) (float64, bool) { return r.GenCPU, r.GenCPU > 0 }},
	},
	"churn": {
		{"publish rate achieved", 0, "msg/s", func(r *anyResult) (float64, bool) { return r.PublishRate, r.PublishRate > 0 }},
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

// reportRow is one metric of one comparable group, over its runs.
type reportRow struct {
	group, metric, unit string
	better              int
	m, n                []float64 // the figure of each run, sorted
	invalid             bool      // some run of the group (either target) is not valid
	text                [2]string // when set: the Meteor and Nchan cells as they are
}

// stat returns the median, minimum and maximum of sorted v.
func stat(v []float64) (med, lo, hi float64, ok bool) {
	if len(v) == 0 {
		return 0, 0, 0, false
	}
	k := len(v)
	med = v[k/2]
	if k%2 == 0 {
		med = (v[k/2-1] + v[k/2]) / 2
	}
	return med, v[0], v[k-1], true
}

// advantage returns how many times better Meteor's median is than
// Nchan's (above 1: Meteor better), or false when it cannot be said.
func (r *reportRow) advantage() (float64, bool) {
	a, _, _, okM := stat(r.m)
	b, _, _, okN := stat(r.n)
	if !okM || !okN || r.better == 0 || r.invalid {
		return 0, false
	}
	if r.better < 0 {
		a, b = b, a
	}
	if b == 0 || a == 0 {
		return 0, false
	}
	return a / b, true
}

// targetName is how the table and the chart name a target.
func targetName(target string) string {
	switch target {
	case targetNchan:
		return "Nchan"
	case targetPushpin:
		return "Pushpin"
	case targetCentrifugo:
		return "Centrifugo"
	case targetMeteor:
		return "Meteor"
	}
	return target
}

// buildRows sets Meteor's results beside other's (targetNchan or
// targetPushpin); results of any third target are left out.
func buildRows(results []*anyResult, other string) []*reportRow {
	var order []string
	byKey := map[string]map[string][]*anyResult{}
	for _, r := range results {
		if r.Target != targetMeteor && r.Target != other {
			continue
		}
		k := r.key()
		if r.Scenario == "publish" && r.Pipeline > 0 {
			// Meteor's line protocol and Nchan's WebSocket publisher are
			// the pipelined methods: one group.
			k = fmt.Sprintf("publish, %d conns x %d pipelined (Meteor line protocol, Nchan WebSocket)", r.Conns, r.Pipeline)
		}
		if byKey[k] == nil {
			byKey[k] = map[string][]*anyResult{}
			order = append(order, k)
		}
		byKey[k][r.Target] = append(byKey[k][r.Target], r)
	}
	var rows []*reportRow
	for _, k := range order {
		m, n := byKey[k][targetMeteor], byKey[k][other]
		some := append(slices.Clone(m), n...)
		scenario := some[0].Scenario
		validM, validN := 0, 0
		for _, r := range m {
			if !r.notValid() {
				validM++
			}
		}
		for _, r := range n {
			if !r.notValid() {
				validN++
			}
		}
		invalid := validM < len(m) || validN < len(n)
		if scenario == "fanout" || scenario == "churn" {
			row := &reportRow{group: k, metric: "valid runs (published ≥ 95 % of the asked rate)", invalid: invalid,
				text: [2]string{"–", "–"}}
			if len(m) > 0 {
				row.text[0] = fmt.Sprintf("%d of %d", validM, len(m))
			}
			if len(n) > 0 {
				row.text[1] = fmt.Sprintf("%d of %d", validN, len(n))
			}
			rows = append(rows, row)
		}
		for _, mt := range metrics[scenario] {
			row := &reportRow{group: k, metric: mt.name, unit: mt.unit, better: mt.better, invalid: invalid}
			for _, r := range m {
				if v, ok := mt.get(r); ok {
					row.m = append(row.m, v)
				}
			}
			for _, r := range n {
				if v, ok := mt.get(r); ok {
					row.n = append(row.n, v)
				}
			}
			slices.Sort(row.m)
			slices.Sort(row.n)
			if len(row.m) > 0 || len(row.n) > 0 {
				rows = append(rows, row)
			}
		}
	}
	return rows
}

// fmtRuns formats sorted figures: the median, and with more than one run
// (min–max).
func fmtRuns(v []float64) string {
	med, lo, hi, ok := stat(v)
	if !ok {
		return "–"
	}
	if len(v) == 1 {
		return fmtFigure(med, true)
	}
	return fmt.Sprintf("%s (%s–%s)", fmtFigure(med, true), fmtFigure(lo, true), fmtFigure(hi, true))
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

// writeTable writes rows as a markdown table; other is the target beside
// Meteor.
func writeTable(w io.Writer, rows []*reportRow, other string) {
	name := targetName(other)
	fmt.Fprintf(w, "| scenario | figure | Meteor | %s | Meteor / %s | better |\n", name, name)
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, r := range rows {
		unit := ""
		if r.unit != "" {
			unit = " (" + r.unit + ")"
		}
		ratio := "–"
		mm, _, _, okM := stat(r.m)
		nm, _, _, okN := stat(r.n)
		if okM && okN && nm != 0 && r.better != 0 {
			ratio = fmt.Sprintf("%.2f", mm/nm)
		}
		better := "–"
		if adv, ok := r.advantage(); ok {
			switch {
			case adv >= 1.05:
				better = fmt.Sprintf("Meteor, %.2f×", adv)
			case adv <= 1/1.05:
				better = fmt.Sprintf("%s, %.2f×", name, 1/adv)
			default:
				better = "even"
			}
		} else if r.invalid {
			better = "**not valid**"
		} else if okM && okN && mm == nm && r.better != 0 {
			better = "even"
		}
		cm, cn := fmtRuns(r.m), fmtRuns(r.n)
		if r.text[0] != "" {
			cm, cn = r.text[0], r.text[1]
		}
		fmt.Fprintf(w, "| %s | %s%s | %s | %s | %s | %s |\n", r.group, r.metric, unit, cm, cn, ratio, better)
	}
}

// writeSVG draws one horizontal bar per row that has both figures: how
// many times better Meteor is (right of the 1× line) or worse (left), on a
// log scale from 1/8× to 8×.
func writeSVG(w io.Writer, rows []*reportRow, title, other string) {
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
	fmt.Fprintf(w, `<text x="10" y="38" fill="#555">bars: how many times better Meteor is than %s (right of 1×) or worse (left); log scale, clipped at 8×</text>`+"\n", targetName(other))
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
	versus := fs.String("versus", targetNchan, "the target set beside Meteor: nchan, pushpin or centrifugo")
	title := fs.String("title", "", "chart title (default: Meteor vs <the -versus target>)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("usage: meteor-bench report [-versus nchan|pushpin|centrifugo] [-o table.md] [-svg chart.svg] <results.jsonl>...: name at least one results file")
	}
	if *versus != targetNchan && *versus != targetPushpin && *versus != targetCentrifugo {
		return fmt.Errorf("-versus %q: nchan, pushpin or centrifugo", *versus)
	}
	if *title == "" {
		*title = "Meteor vs " + targetName(*versus)
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
	rows := buildRows(results, *versus)
	w := stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	writeTable(w, rows, *versus)
	if *svg != "" {
		f, err := os.Create(*svg)
		if err != nil {
			return err
		}
		writeSVG(f, rows, *title, *versus)
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}
