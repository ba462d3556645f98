package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cri-runtime/cri-runtime/test/e2e/framework"
)

// TestRuntimeHandlers configures a second OCI runtime (runc again, under
// its own handler name and state) and runs a pod with it, as a
// RuntimeClass would.
func TestRuntimeHandlers(t *testing.T) {
	t.Parallel()
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Fatal(err)
	}
	d := framework.NewDaemon(t, framework.Options{Binary: binaryFor(t), Args: []string{"--registries-conf", registriesConf}})
	cfg := "[runtime.handlers.runc-alt]\npath = \"" + runc + "\"\n"
	if err := os.WriteFile(filepath.Join(d.Dir, "config.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatalf("%v\n%s", err, d.Logs())
	}
	ctx := ctxT(t)
	pull(t, d, framework.BusyboxImage, factsOf(t, framework.BusyboxImage))

	st, err := d.Runtime.Status(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, h := range st.RuntimeHandlers {
		names = append(names, h.Name)
	}
	if !slices.Equal(names, []string{"", "runc", "runc-alt"}) {
		t.Fatalf("runtime handlers = %q; want the default, runc and runc-alt", names)
	}

	podCfg := podConfig("alt")
	podCfg.LogDirectory = t.TempDir()
	if _, err := d.Runtime.RunPodSandbox(ctx, podCfg, "no-such-handler"); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("RunPodSandbox with an unknown handler = %v; want InvalidArgument", err)
	}
	pod, err := d.Runtime.RunPodSandbox(ctx, podCfg, "runc-alt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Runtime.RemovePodSandbox(ctxT(t), pod) })
	ps, err := d.Runtime.PodSandboxStatus(ctx, pod, false)
	if err != nil || ps.Status.RuntimeHandler != "runc-alt" {
		t.Fatalf("pod status = %v, %v; want handler runc-alt", ps, err)
	}

	id := runCtr(t, d, pod, podCfg, shCfg("alt", "sleep 600"))
	list := func(dir string) []string {
		out, err := exec.Command(runc, "--root", filepath.Join(d.State, dir, "runc"), "list", "-q").Output()
		if err != nil {
			return nil
		}
		return strings.Fields(string(out))
	}
	if !slices.Contains(list("oci-runc-alt"), id) || slices.Contains(list("oci"), id) {
		t.Fatalf("container %s: in the runc-alt runtime's state %v, in the default's %v; want only the former", id, list("oci-runc-alt"), list("oci"))
	}
	if out, _, err := d.Runtime.ExecSync(ctx, id, []string{"echo", "via-alt"}, 0); err != nil || strings.TrimSpace(string(out)) != "via-alt" {
		t.Fatalf("ExecSync through the alternate runtime = %q, %v", out, err)
	}
	if err := d.Runtime.StopContainer(ctx, id, 0); err != nil {
		t.Fatal(err)
	}
	if err := d.Runtime.RemoveContainer(ctx, id); err != nil {
		t.Fatal(err)
	}
	// "runc delete" runs after the call returns.
	if !eventually(30*time.Second, func() bool { return !slices.Contains(list("oci-runc-alt"), id) }) {
		t.Fatalf("container still known to the alternate runtime after removal: %v", list("oci-runc-alt"))
	}
}
