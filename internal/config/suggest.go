package config

import (
	"net/url"
	"strings"
)

// suggest returns the name of the parameter that name (an unknown one, as
// written, without dash or .mode) most likely meant, or "": the nearest of
// those it starts with and those it is the start of, else the nearest within
// a small edit distance for its length; the first in the table on a tie. inFile
// leaves out the parameters that only the command line may set.
func suggest(name string, inFile bool) string {
	low := toLowerASCII(name)
	best, bestScore := "", 0
	for i := range params {
		p := &params[i]
		if inFile && p.cmdOnly {
			continue
		}
		pl := toLowerASCII(p.name)
		var score int
		switch {
		case len(low) >= 3 && strings.HasPrefix(low, pl):
			score = len(low) - len(pl)
		case len(low) >= 3 && strings.HasPrefix(pl, low):
			score = len(pl) - len(low)
		default:
			d := editDistance(low, pl)
			if d > max(1, len(low)/4) {
				continue
			}
			score = 1000 + d // a prefix fits better
		}
		if best == "" || score < bestScore {
			best, bestScore = p.name, score
		}
	}
	return best
}

// editDistance returns the Levenshtein distance between a and b, counting
// the swap of two neighbouring bytes as one edit.
func editDistance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// unknownDetail is the detail of an ErrUnknownParameter for name: a hint
// when name looks like "Name=value", else a "did you mean" when a parameter
// is near. dash is "-" on the command line and "" in a file.
func unknownDetail(name, dash string, inFile bool) string {
	if k, v, ok := strings.Cut(name, "="); ok {
		form := "Name value"
		if dash != "" {
			form = "-Name value"
		}
		hint := "settings are `" + form + "`, not `" + dash + "Name=value`"
		if p := lookupFile(k); p != nil {
			hint += ": write `" + dash + p.name + " " + v + "`"
		}
		return hint
	}
	if s := suggest(name, inFile); s != "" {
		return "did you mean " + dash + s + "?"
	}
	return ""
}

// corsOrigins accepts a CORSOrigins list: "*", "null", or origins written
// scheme://host[:port], an optional final slash aside. An entry with a path
// is refused: a browser's Origin header never carries one, so it would
// never match.
func corsOrigins(field func(*Config, *Mode) *string) func(*Config, *Mode, string) error {
	return func(c *Config, m *Mode, v string) error {
		for _, o := range strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' }) {
			if o == "*" || o == "null" {
				continue
			}
			u, err := url.Parse(o)
			if err != nil || u.Scheme == "" || u.Host == "" || u.Opaque != "" || u.User != nil {
				return invalid("%q is no origin: want scheme://host[:port], such as https://www.example.com", o)
			}
			if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(o, "?") || strings.HasSuffix(o, "#") {
				return invalid("%q has a path, which a browser's Origin header never carries: write %s://%s", o, u.Scheme, u.Host)
			}
		}
		*field(c, m) = v
		return nil
	}
}
