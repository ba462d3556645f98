package e2e

// AppArmor: the profile a container runs under, on nodes that have it (the
// VM lane, hack/vm), and what is refused on nodes that do not (this host).

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// hostAppArmor reports whether this kernel enforces AppArmor.
func hostAppArmor() bool {
	b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && len(b) > 0 && b[0] == 'Y'
}

func TestAppArmor(t *testing.T) {
	// Not parallel: it unloads the default profile, which every daemon on
	// the node shares, and an exec in another test's container confined by
	// it would fail meanwhile (seen in the VM lane). Go runs the tests
	// that are not parallel before the parallel ones.
	d, _ := startCtrDaemon(t)
	pod, podCfg := ctrPod(t, d, "apparmor")
	st, err := d.Runtime.Status(ctxT(t), true)
	if err != nil {
		t.Fatal(err)
	}
	var info map[string]any
	if err := json.Unmarshal([]byte(st.GetInfo()["apparmor"]), &info); err != nil {
		t.Fatalf("status info apparmor %q: %v", st.GetInfo()["apparmor"], err)
	}
	localhost := func(name string) *runtimeapi.SecurityProfile {
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: name}
	}
	createErr := func(name string, change func(*runtimeapi.LinuxContainerSecurityContext)) error {
		cfg := shCfg(name, "true")
		change(secCtx(cfg))
		id, err := d.Runtime.CreateContainer(ctxT(t), pod, cfg, podCfg)
		if err == nil {
			_ = d.Runtime.RemoveContainer(ctxT(t), id)
		}
		return err
	}

	if !hostAppArmor() {
		// The kubelet does not send a Localhost profile to such a node; a
		// client that does is told, rather than getting no confinement.
		if info["enabled"] != false {
			t.Errorf("status info apparmor = %v; want enabled false", info)
		}
		err := createErr("localhost", func(s *runtimeapi.LinuxContainerSecurityContext) { s.Apparmor = localhost("some-profile") })
		if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "not enabled") {
			t.Errorf("Localhost profile without AppArmor: %v; want FailedPrecondition saying AppArmor is not enabled", err)
		}
		// RuntimeDefault and nothing at all run, unconfined by AppArmor.
		for _, p := range []*runtimeapi.SecurityProfile{nil, {ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}} {
			if err := createErr("default", func(s *runtimeapi.LinuxContainerSecurityContext) { s.Apparmor = p }); err != nil {
				t.Errorf("profile %v without AppArmor: %v", p, err)
			}
		}
		return
	}

	if info["enabled"] != true || info["defaultProfileLoaded"] != true || info["defaultProfile"] != "cri-runtime-default" {
		t.Fatalf("status info apparmor = %v; want the default profile loaded", info)
	}
	// A profile of the test's own, loaded as an operator would.
	const testProfile = "cri-runtime-e2e-no-tmp-writes"
	prof := filepath.Join(t.TempDir(), "profile")
	text := "profile " + testProfile + " flags=(attach_disconnected) {\n  file,\n  capability,\n  mount,\n  umount,\n  deny /tmp/** w,\n}\n"
	if err := os.WriteFile(prof, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("apparmor_parser", "-Kr", prof).CombinedOutput(); err != nil {
		t.Fatalf("apparmor_parser: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("apparmor_parser", "-R", prof).Run() })

	// Each container says which profile confines it, whether it may mount
	// (it has CAP_SYS_ADMIN and no seccomp filter, so only AppArmor stops
	// it) and whether it may write under /tmp.
	const script = `cat /proc/self/attr/current; mkdir -p /m; ` +
		`mount -t tmpfs none /m 2>/dev/null && echo mount=ok || echo mount=denied; ` +
		`(echo x >/tmp/f) 2>/dev/null && echo write=ok || echo write=denied; echo ` + endMark
	for _, tc := range []struct {
		name             string
		profile          *runtimeapi.SecurityProfile
		legacy           string
		privileged       bool
		want             string
		mounts, canWrite bool
	}{
		{name: "unset is the default", want: "cri-runtime-default (enforce)", canWrite: true},
		{name: "runtime default", profile: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
			want: "cri-runtime-default (enforce)", canWrite: true},
		{name: "deprecated runtime default", legacy: "runtime/default", want: "cri-runtime-default (enforce)", canWrite: true},
		{name: "unconfined", profile: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined},
			want: "unconfined", mounts: true, canWrite: true},
		{name: "privileged default is unconfined", privileged: true, want: "unconfined", mounts: true, canWrite: true},
		{name: "localhost", profile: localhost(testProfile), want: testProfile + " (enforce)", mounts: true},
		{name: "deprecated localhost", legacy: "localhost/" + testProfile, want: testProfile + " (enforce)", mounts: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := shCfg(strings.ReplaceAll(tc.name, " ", "-"), script)
			sc := secCtx(cfg)
			sc.Apparmor, sc.ApparmorProfile, sc.Privileged = tc.profile, tc.legacy, tc.privileged
			sc.Capabilities = &runtimeapi.Capability{AddCapabilities: []string{"SYS_ADMIN"}}
			out, errOut := runOutput(t, d, pod, podCfg, cfg)
			want := []string{tc.want, "mount=denied", "write=denied"}
			if tc.mounts {
				want[1] = "mount=ok"
			}
			if tc.canWrite {
				want[2] = "write=ok"
			}
			if strings.Join(out, "\n") != strings.Join(want, "\n") {
				t.Errorf("output %q (stderr %q); want %q", out, errOut, want)
			}
		})
	}

	// A profile the kernel does not have: refused at create, with its name.
	err = createErr("not-loaded", func(s *runtimeapi.LinuxContainerSecurityContext) { s.Apparmor = localhost("cri-runtime-e2e-missing") })
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "cri-runtime-e2e-missing") {
		t.Errorf("unloaded Localhost profile: %v; want FailedPrecondition naming it", err)
	}
	// The default profile unloaded behind the daemon's back (apparmor.service
	// restarted, say) is loaded again by the next create that needs it.
	if out, err := exec.Command("sh", "-c", "echo -n cri-runtime-default > /sys/kernel/security/apparmor/.remove").CombinedOutput(); err != nil {
		t.Fatalf("unload the default profile: %v: %s", err, out)
	}
	if err := createErr("reload", func(s *runtimeapi.LinuxContainerSecurityContext) {}); err != nil {
		t.Errorf("create after the default profile was unloaded: %v", err)
	}
}
