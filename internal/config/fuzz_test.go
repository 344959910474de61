package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseFile loads arbitrary files. It must never panic; a file is either
// refused with an *Error that wraps a sentinel, or gives a configuration
// that keeps every invariant, the same each time it is loaded.
// The seed corpus is in testdata/fuzz/FuzzParseFile.
func FuzzParseFile(f *testing.F) {
	f.Add([]byte(builtinModes))
	f.Fuzz(func(t *testing.T, data []byte) {
		read := func(string) ([]byte, error) { return data, nil }
		c, action, err := Load(nil, read)
		if err != nil {
			checkRefusal(t, err)
			return
		}
		if action != ActionRun {
			t.Fatalf("action %v from a file", action)
		}
		checkInvariants(t, c)
		again, _, err := Load(nil, read)
		if err != nil || !reflect.DeepEqual(c, again) {
			t.Fatalf("second load differs: %v", err)
		}
		// Reading the same file again with SIGHUP gives the same result.
		re, err := c.Reload(read)
		if err != nil || !reflect.DeepEqual(c, re) {
			t.Fatalf("Reload differs: %v", err)
		}
	})
}

// FuzzParseArgs loads arbitrary command lines, one argument per line of the
// input, with a configuration file that exists only at the default place.
func FuzzParseArgs(f *testing.F) {
	f.Add("-d")
	f.Add("-MaxTime.iframe\n30\n-PingMessage\n--x")
	f.Fuzz(func(t *testing.T, s string) {
		args := strings.Split(s, "\n")
		c, action, err := Load(args, files{DefaultConfigFile: "MaxTime 5\n[mine]\nPersist 1\n"}.read)
		switch {
		case err != nil:
			var e *Error
			if !errors.As(err, &e) {
				// Only a missing -ConfigFileLocation file may fail otherwise.
				if !strings.Contains(err.Error(), "configuration file") {
					t.Fatalf("error %v (%T) is no *Error", err, err)
				}
				return
			}
			checkRefusal(t, err)
		case action != ActionRun:
			if c != nil {
				t.Fatalf("configuration with action %v", action)
			}
		default:
			checkInvariants(t, c)
			if c.Modes["mine"] == nil && c.ConfigFileLocation == DefaultConfigFile {
				t.Fatalf("mode from the file missing")
			}
		}
	})
}

// checkRefusal fails unless err is an *Error wrapping one sentinel.
func checkRefusal(t *testing.T, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is no *Error", err, err)
	}
	n := 0
	for _, s := range sentinels {
		if errors.Is(err, s) {
			n++
		}
	}
	if n != 1 || e.Where == "" || e.Error() == "" {
		t.Fatalf("error %q wraps %d sentinels, Where %q", err, n, e.Where)
	}
}

// TestFileCorpus checks that the seed files of FuzzParseFile do what their
// names say: those named error-* are refused, the others load. The
// entries a fuzzing run found are named fuzz-<hash> or error-fuzz-<hash>
// by what they did when they were committed, so that this test keeps them
// doing it.
func TestFileCorpus(t *testing.T) {
	entries, err := os.ReadDir("testdata/fuzz/FuzzParseFile")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join("testdata/fuzz/FuzzParseFile", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		lit, ok := strings.CutPrefix(string(raw), "go test fuzz v1\n[]byte(")
		lit, ok2 := strings.CutSuffix(lit, ")\n")
		data, err := strconv.Unquote(lit)
		if !ok || !ok2 || err != nil {
			t.Fatalf("%s: not a []byte corpus entry", e.Name())
		}
		_, _, err = loadFile(data)
		if wantErr := strings.HasPrefix(e.Name(), "error-"); (err != nil) != wantErr {
			t.Errorf("%s: error %v", e.Name(), err)
		}
	}
}
