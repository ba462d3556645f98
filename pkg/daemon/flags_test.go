package daemon

import (
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cri-runtime/cri-runtime/pkg/config"
)

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(file, []byte("root = \"/from/file\"\nstate = \"/from/file-state\"\n[network]\nbin_dirs = [\"/file/cni\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	o, err := parseArgs([]string{"config", "--config", file, "--config-dir", filepath.Join(dir, "none"),
		"--state", "/from/flag", "--cni-bin-dir", "/a:/b", "--runtime", "/opt/runc"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.command != "config" || !o.sources.FileRequired {
		t.Fatalf("options = %+v", o)
	}
	cfg, _, err := o.loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	want := config.Default()
	want.Root = "/from/file"                    // file over default
	want.State = "/from/flag"                   // flag over file
	want.Network.BinDirs = []string{"/a", "/b"} // colon-separated flag
	want.Runtime.Path = "/opt/runc"             // flag over default
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("effective config:\n got %+v\nwant %+v", cfg, want)
	}
}

func TestDefaultConfigFileIsOptional(t *testing.T) {
	o, err := parseArgs(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.command != "serve" || o.sources.File != config.DefaultFile || o.sources.FileRequired {
		t.Fatalf("options = %+v", o)
	}
}

func TestParseArgsErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--nope"}, "nope"},
		{[]string{"destroy"}, `unknown command "destroy"`},
		{[]string{"serve", "now"}, `unexpected argument "now"`},
	} {
		_, err := parseArgs(tc.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseArgs(%v) = %v; want an error with %q", tc.args, err, tc.want)
		}
	}
	o, err := parseArgs([]string{"--config-dir", "/nonexistent", "--config", "/nonexistent/x.toml", "--log-level", "loud"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := o.loadConfig(); err == nil || !strings.Contains(err.Error(), "x.toml") {
		t.Fatalf("an explicit --config that does not exist must fail naming it: %v", err)
	}
}
