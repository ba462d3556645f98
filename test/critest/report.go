// Package critest runs cri-tools' validation suite (critest) against the real daemon, with
// every image it pulls built here and served from an in-process registry, and fails on any
// failed spec that known-failures.txt does not list.
//
// It needs root, $CRITEST_BINARY (bin/critest, which `make critest` builds from hack/tools)
// and the daemon ($CRI_RUNTIME_BINARY, or a fresh build). $CRITEST_ARGS adds flags to critest,
// e.g. CRITEST_ARGS='-ginkgo.focus=Networking'; CRITEST_VERBOSE=1 streams critest's output;
// CRITEST_ARTIFACTS=<dir> keeps its output and JSON report there.
package critest

// This file reads what critest reports: Ginkgo's JSON report, known-failures.txt and
// the summary the test prints.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// report is the part of Ginkgo's JSON report (types.Report) the test reads.
type report struct {
	SuiteDescription string
	SpecReports      []specReport
}

type specReport struct {
	ContainerHierarchyTexts []string
	LeafNodeType            string
	LeafNodeText            string
	State                   string
	RunTime                 time.Duration
	Failure                 *specFailure
}

type specFailure struct {
	Message  string
	Location struct {
		FileName   string
		LineNumber int
	}
}

func (s specReport) name() string {
	return strings.Join(append(slices.Clone(s.ContainerHierarchyTexts), s.LeafNodeText), " ")
}

func readReport(path string) ([]specReport, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var reports []report
	if err := json.Unmarshal(b, &reports); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	var specs []specReport
	for _, r := range reports {
		specs = append(specs, r.SpecReports...)
	}
	return specs, nil
}

// knownFailure is one line of known-failures.txt.
type knownFailure struct {
	spec, reason string
}

// readKnownFailures reads lines of "<spec name, or part of it>  # <reason>"; blank lines and
// lines starting with # are ignored. Every entry needs its reason.
func readKnownFailures(path string) ([]knownFailure, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var known []knownFailure
	s := bufio.NewScanner(f)
	for n := 1; s.Scan(); n++ {
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		spec, reason, ok := strings.Cut(line, "#")
		spec, reason = strings.TrimSpace(spec), strings.TrimSpace(reason)
		if !ok || reason == "" || spec == "" {
			return nil, fmt.Errorf("%s:%d: want `<spec> # <reason>`, got %q", path, n, line)
		}
		known = append(known, knownFailure{spec: spec, reason: reason})
	}
	return known, s.Err()
}

func (k knownFailure) matches(name string) bool { return strings.Contains(name, k.spec) }

// summary is critest's outcome, spec by spec.
type summary struct {
	specs                           []specReport
	passed, failed, skipped, others int
	unexpected, knownFailed         []specReport
	knownPassed                     []string
	skipReasons                     map[string][]string
}

// failedStates are Ginkgo's states of a spec that did not pass (types.SpecState).
var failedStates = []string{"failed", "panicked", "timedout", "interrupted", "aborted"}

func summarize(specs []specReport, known []knownFailure) summary {
	s := summary{skipReasons: map[string][]string{}}
	for _, r := range specs {
		// BeforeSuite and the like appear only when they fail.
		if r.LeafNodeType != "It" && !slices.Contains(failedStates, r.State) {
			continue
		}
		s.specs = append(s.specs, r)
		name := r.name()
		i := slices.IndexFunc(known, func(k knownFailure) bool { return k.matches(name) })
		switch {
		case r.State == "passed":
			s.passed++
			if i >= 0 {
				s.knownPassed = append(s.knownPassed, name)
			}
		case r.State == "skipped" || r.State == "pending":
			s.skipped++
			reason := "(no reason: filtered out by -ginkgo.focus/skip; critest always skips its benchmarks)"
			if r.Failure != nil && r.Failure.Message != "" {
				reason = firstLine(r.Failure.Message)
			}
			s.skipReasons[reason] = append(s.skipReasons[reason], name)
		case slices.Contains(failedStates, r.State):
			s.failed++
			if i >= 0 {
				s.knownFailed = append(s.knownFailed, r)
			} else {
				s.unexpected = append(s.unexpected, r)
			}
		default:
			s.others++
		}
	}
	return s
}

func (s summary) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "critest: %d specs reported: %d passed, %d failed (%d of them known limits), %d skipped",
		len(s.specs), s.passed, s.failed, len(s.knownFailed), s.skipped)
	if s.others > 0 {
		fmt.Fprintf(&b, ", %d in other states", s.others)
	}
	b.WriteString("\n")
	write := func(title string, rs []specReport) {
		if len(rs) == 0 {
			return
		}
		sort.Slice(rs, func(i, j int) bool { return rs[i].name() < rs[j].name() })
		fmt.Fprintf(&b, "%s (%d):\n", title, len(rs))
		for _, r := range rs {
			fmt.Fprintf(&b, "  [%s] %s\n", r.State, r.name())
			if r.Failure != nil {
				fmt.Fprintf(&b, "      %s (%s:%d)\n", firstLine(r.Failure.Message),
					filepath.Base(r.Failure.Location.FileName), r.Failure.Location.LineNumber)
			}
		}
	}
	write("failed", s.unexpected)
	write("failed, known limits of the harness", s.knownFailed)
	if len(s.skipReasons) > 0 {
		fmt.Fprintf(&b, "skipped (%d):\n", s.skipped)
		reasons := make([]string, 0, len(s.skipReasons))
		for r := range s.skipReasons {
			reasons = append(reasons, r)
		}
		sort.Strings(reasons)
		for _, r := range reasons {
			fmt.Fprintf(&b, "  %d × %s\n", len(s.skipReasons[r]), r)
		}
	}
	return b.String()
}

// firstLine shortens a Ginkgo failure message to one line: its first line, then the gRPC
// error in it when there is one (gomega prints it after the error's type and address), else
// the following lines.
func firstLine(msg string) string {
	var lines []string
	for _, l := range strings.Split(msg, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return ""
	}
	out := lines[0]
	if i := strings.Index(msg, "rpc error: "); i >= 0 {
		rpc, _, _ := strings.Cut(msg[i:], "\n")
		if !strings.Contains(out, rpc) {
			out += ": " + rpc
		}
	} else {
		for i := 1; i < len(lines) && i < 4 && len(out) < 200; i++ {
			out += " " + lines[i]
		}
	}
	if len(out) > 400 {
		out = out[:400] + "…"
	}
	return out
}

// critestTally returns Ginkgo's closing "N Passed | N Failed | ..." line from critest's output.
func critestTally(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(string(b), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], " Passed | ") {
			return strings.TrimSpace(lines[i])
		}
	}
	return ""
}
