package apparmor

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeKernel points the package at files of the test's: AppArmor enabled or
// not, and these profiles loaded.
func fakeKernel(t *testing.T, enabled string, profiles ...string) (profilesPath string) {
	t.Helper()
	dir := t.TempDir()
	oldEnabled, oldProfiles := enabledFile, profilesFile
	t.Cleanup(func() { enabledFile, profilesFile = oldEnabled, oldProfiles })
	enabledFile, profilesFile = filepath.Join(dir, "enabled"), filepath.Join(dir, "profiles")
	if enabled != "" {
		if err := os.WriteFile(enabledFile, []byte(enabled+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var b strings.Builder
	for _, p := range profiles {
		b.WriteString(p + " (enforce)\n")
	}
	if err := os.WriteFile(profilesFile, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return profilesFile
}

func TestEnabled(t *testing.T) {
	for _, tc := range []struct {
		file string
		want bool
	}{{"Y", true}, {"N", false}, {"", false}} {
		fakeKernel(t, tc.file)
		if got := Enabled(); got != tc.want {
			t.Errorf("enabled file %q: Enabled() = %v", tc.file, got)
		}
		if h := NewHost("/bin/true"); (h != nil) != tc.want {
			t.Errorf("enabled file %q: NewHost = %v", tc.file, h)
		}
	}
}

func TestLoaded(t *testing.T) {
	fakeKernel(t, "Y", "docker-default", "cri-runtime-default//child", "cri-runtime-default-x", "/usr/bin/man")
	for name, want := range map[string]bool{
		"docker-default": true, "/usr/bin/man": true,
		"cri-runtime-default": false, // only a child and a longer name
		"":                    false,
	} {
		if got, err := Loaded(name); err != nil || got != want {
			t.Errorf("Loaded(%q) = %v, %v; want %v", name, got, err, want)
		}
	}
	profilesFile = filepath.Join(t.TempDir(), "missing")
	if _, err := Loaded("x"); err == nil {
		t.Error("Loaded without a profile list: no error")
	}
}

// A fake apparmor_parser records its arguments and the policy it was given,
// and "loads" the profile by appending it to the fake kernel's list.
func TestEnsureDefaultLoadsOnce(t *testing.T) {
	profiles := fakeKernel(t, "Y", "other")
	dir := t.TempDir()
	parser := filepath.Join(dir, "apparmor_parser")
	script := "#!/bin/sh\necho \"$@\" >>" + dir + "/calls\ncat >" + dir + "/policy\necho '" + DefaultProfile + " (enforce)' >>" + profiles + "\n"
	if err := os.WriteFile(parser, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	h := NewHost(parser)
	for i := 0; i < 3; i++ {
		if err := h.EnsureDefault(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	calls, _ := os.ReadFile(filepath.Join(dir, "calls"))
	if string(calls) != "-Kr\n" {
		t.Errorf("parser calls = %q, want one -Kr", calls)
	}
	policy, _ := os.ReadFile(filepath.Join(dir, "policy"))
	if !strings.Contains(string(policy), "profile "+DefaultProfile+" ") {
		t.Errorf("policy given to the parser:\n%s", policy)
	}
	if !h.Loaded(DefaultProfile) || h.Status()["defaultProfileLoaded"] != true {
		t.Error("default profile not reported loaded")
	}
}

func TestEnsureDefaultSaysWhy(t *testing.T) {
	fakeKernel(t, "Y")
	dir := t.TempDir()
	failing := filepath.Join(dir, "apparmor_parser")
	if err := os.WriteFile(failing, []byte("#!/bin/sh\necho 'AppArmor parser error: syntax' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for parser, want := range map[string]string{
		failing: "AppArmor parser error: syntax",
		"":      "apparmor_parser not found",
	} {
		h := &Host{parser: parser}
		err := h.EnsureDefault(context.Background())
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parser %q: err = %v, want it to say %q", parser, err, want)
		}
		if got, _ := h.Status()["error"].(string); !strings.Contains(got, want) {
			t.Errorf("parser %q: status error = %q", parser, got)
		}
	}
}

// The policy compiles, when this machine has the real parser (-Q: compile
// only, nothing is loaded; works without AppArmor in the kernel).
func TestProfileCompiles(t *testing.T) {
	parser := findParser()
	if parser == "" {
		t.Skip("apparmor_parser not installed")
	}
	cmd := exec.Command(parser, "-Q", "-K", "-S")
	cmd.Stdin = strings.NewReader(string(Profile("cri-runtime-test")))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", parser, err, out)
	}
}
