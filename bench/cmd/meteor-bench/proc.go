package main

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// clockTicks is the unit of utime and stime in /proc/<pid>/stat
// (sysconf(_SC_CLK_TCK)); it is 100 on every Linux configuration that Go
// supports, and reading it needs cgo.
const clockTicks = 100

// procSample is what /proc tells of a process at one instant.
type procSample struct {
	RSS     int64 // VmRSS, bytes
	RSSAnon int64 // RssAnon, bytes: heap and stacks, not the mapped binary
	CPU     int64 // utime + stime, clock ticks
	Threads int
	FDs     int   // -1 when /proc/<pid>/fd cannot be read
	PSS     int64 // proportional set size, bytes (readTree only)
	Procs   int   // child processes summed in (readTree only)
}

// readProc samples process pid.
func readProc(pid int) (procSample, error) {
	var s procSample
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for line := range bytes.SplitSeq(status, []byte("\n")) {
		key, val, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		switch string(key) {
		case "VmRSS":
			s.RSS = kib(val)
		case "RssAnon":
			s.RSSAnon = kib(val)
		case "Threads":
			s.Threads, _ = strconv.Atoi(string(bytes.TrimSpace(val)))
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	if s.CPU, err = parseStatCPU(stat); err != nil {
		return s, err
	}
	s.FDs = -1
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		s.FDs = len(ents)
	}
	return s, nil
}

// kib parses "   1234 kB" into bytes.
func kib(v []byte) int64 {
	f := bytes.Fields(v)
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.ParseInt(string(f[0]), 10, 64)
	return n * 1024
}

// parseStatCPU returns utime+stime from the text of /proc/<pid>/stat. The
// command name, in parentheses, may hold spaces and parentheses: fields are
// counted from the last ')'.
func parseStatCPU(stat []byte) (int64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc stat: no command name")
	}
	f := bytes.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat: %d fields", len(f)+2)
	}
	u, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	s, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc stat: bad utime/stime %q %q", f[11], f[12])
	}
	return u + s, nil
}

// rssStats summarises several samples.
type rssStats struct {
	Median, Min, Max int64
	AnonMedian       int64
	PSSMedian        int64
}

func summarise(samples []procSample) rssStats {
	if len(samples) == 0 {
		return rssStats{}
	}
	rss := make([]int64, len(samples))
	anon := make([]int64, len(samples))
	pss := make([]int64, len(samples))
	for i, s := range samples {
		rss[i], anon[i], pss[i] = s.RSS, s.RSSAnon, s.PSS
	}
	slices.Sort(rss)
	slices.Sort(anon)
	slices.Sort(pss)
	return rssStats{Median: rss[len(rss)/2], Min: rss[0], Max: rss[len(rss)-1], AnonMedian: anon[len(anon)/2], PSSMedian: pss[len(pss)/2]}
}

// readTree samples process pid and its descendants (nginx's workers under
// its master; Pushpin's condure, zurl, pushpin-proxy and pushpin-handler
// under its runner) and sums them. PSS shares each page among the
// processes that map it, so the sum counts shared memory (Nchan's shared
// zone) once; RSS sums count it in every process.
func readTree(pid int) (procSample, error) {
	s, err := readProc(pid)
	if err != nil {
		return s, err
	}
	s.PSS = readPSS(pid)
	for _, child := range descendantsOf(pid) {
		c, err := readProc(child)
		if err != nil {
			continue // it ended between the listing and the read
		}
		s.RSS += c.RSS
		s.RSSAnon += c.RSSAnon
		s.PSS += readPSS(child)
		s.CPU += c.CPU
		s.Threads += c.Threads
		if c.FDs >= 0 && s.FDs >= 0 {
			s.FDs += c.FDs
		}
		s.Procs++
	}
	return s, nil
}

// readPSS returns the Pss line of /proc/<pid>/smaps_rollup in bytes, 0 if
// it cannot be read.
func readPSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("Pss:")); ok {
			return kib(v)
		}
	}
	return 0
}

// descendantsOf lists pid's children, their children, and so on.
func descendantsOf(pid int) []int {
	children := map[int][]int{}
	for _, p := range processes() {
		children[p.ppid] = append(children[p.ppid], p.pid)
	}
	var out []int
	for next := []int{pid}; len(next) > 0; {
		p := next[0]
		next = next[1:]
		for _, c := range children[p] {
			if c != pid && !slices.Contains(out, c) {
				out = append(out, c)
				next = append(next, c)
			}
		}
	}
	return out
}

type procParent struct{ pid, ppid int }

// processes lists every process with its parent.
func processes() []procParent {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []procParent
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(stat[i+1:])
		if len(f) > 1 {
			if pp, err := strconv.Atoi(string(f[1])); err == nil {
				out = append(out, procParent{p, pp})
			}
		}
	}
	return out
}

// pidList is the -pid flag: one or more server processes, comma-separated
// (several meteord nodes and their Redis), whose trees are summed.
type pidList []int

func (l *pidList) String() string {
	parts := make([]string, len(*l))
	for i, p := range *l {
		parts[i] = strconv.Itoa(p)
	}
	return strings.Join(parts, ",")
}

func (l *pidList) Set(s string) error {
	*l = (*l)[:0]
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		p, err := strconv.Atoi(part)
		if err != nil || p <= 0 {
			return fmt.Errorf("process id %q", part)
		}
		*l = append(*l, p)
	}
	return nil
}

// readTrees samples every process of pids with its descendants (readTree)
// and sums them; Procs counts every process but the first.
func readTrees(pids []int) (procSample, error) {
	var sum procSample
	for i, pid := range pids {
		s, err := readTree(pid)
		if err != nil {
			return sum, err
		}
		sum.RSS += s.RSS
		sum.RSSAnon += s.RSSAnon
		sum.PSS += s.PSS
		sum.CPU += s.CPU
		sum.Threads += s.Threads
		if s.FDs >= 0 && sum.FDs >= 0 {
			sum.FDs += s.FDs
		} else {
			sum.FDs = -1
		}
		sum.Procs += s.Procs
		if i > 0 {
			sum.Procs++
		}
	}
	return sum, nil
}
