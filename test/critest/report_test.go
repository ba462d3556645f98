package critest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKnownFailuresFile(t *testing.T) {
	known, err := readKnownFailures(knownFailuresFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(known) == 0 || !known[0].matches("[k8s.io] Image Manager public image with digest should be pulled and removed [Conformance]") {
		t.Errorf("the first known limit should be the upstream digest, got %+v", known)
	}
}

func TestReadKnownFailuresNeedsReasons(t *testing.T) {
	path := filepath.Join(t.TempDir(), "known")
	if err := os.WriteFile(path, []byte("# comment\n\nsome spec\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readKnownFailures(path); err == nil || !strings.Contains(err.Error(), ":3:") {
		t.Errorf("an entry without a reason: err %v, want one naming line 3", err)
	}
}

func TestSummarize(t *testing.T) {
	spec := func(leaf, state, msg string) specReport {
		r := specReport{ContainerHierarchyTexts: []string{"[k8s.io] Suite"}, LeafNodeType: "It", LeafNodeText: leaf, State: state}
		if msg != "" {
			r.Failure = &specFailure{Message: msg}
		}
		return r
	}
	specs := []specReport{
		spec("passes", "passed", ""),
		spec("known but passes", "passed", ""),
		spec("fails", "failed", "failed to create PodSandbox\nUnexpected error:\n    <*status.Error | 0x1>: \n    rpc error: code = Unknown desc = boom\n"),
		spec("known and fails", "panicked", "panic"),
		spec("skips", "skipped", "AppArmor is disabled on this host"),
		{LeafNodeType: "BeforeSuite", State: "passed"},
	}
	known := []knownFailure{{spec: "known and fails", reason: "r"}, {spec: "known but passes", reason: "r"}}
	s := summarize(specs, known)
	if s.passed != 2 || s.failed != 2 || s.skipped != 1 || len(s.specs) != 5 {
		t.Errorf("counts: %d passed, %d failed, %d skipped of %d", s.passed, s.failed, s.skipped, len(s.specs))
	}
	if len(s.unexpected) != 1 || s.unexpected[0].LeafNodeText != "fails" {
		t.Errorf("unexpected failures: %+v", s.unexpected)
	}
	if len(s.knownFailed) != 1 || len(s.knownPassed) != 1 {
		t.Errorf("known: %d failed, %v passed", len(s.knownFailed), s.knownPassed)
	}
	text := s.text()
	for _, want := range []string{
		"5 specs reported: 2 passed, 2 failed (1 of them known limits), 1 skipped",
		"[failed] [k8s.io] Suite fails",
		"failed to create PodSandbox: rpc error: code = Unknown desc = boom",
		"1 × AppArmor is disabled on this host",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("summary lacks %q:\n%s", want, text)
		}
	}
}
