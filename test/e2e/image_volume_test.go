package e2e

// Image volumes (KEP-4639): a pulled image mounted read-only into a
// container, whole or a sub-path of it.

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/test/e2e/framework"
)

func TestImageVolume(t *testing.T) {
	t.Parallel()
	d, _ := startCtrDaemon(t)
	ref, err := d.Images.PullImage(ctxT(t), spec(framework.HTTPDImage), nil, nil)
	if err != nil {
		t.Fatalf("PullImage(%s): %v", framework.HTTPDImage, err)
	}
	pod, podCfg := ctrPod(t, d, "imgvol")
	volume := func(path, sub string, readonly bool) *runtimeapi.Mount {
		return &runtimeapi.Mount{ContainerPath: path, Readonly: readonly, ImageSubPath: sub,
			Image: &runtimeapi.ImageSpec{Image: ref, UserSpecifiedImage: framework.HTTPDImage}}
	}

	cfg := shCfg("reader", "exec sleep 1000")
	cfg.Mounts = []*runtimeapi.Mount{volume("/vol", "", true), volume("/www", "www", true)}
	id := runCtr(t, d, pod, podCfg, cfg)

	// The image's files, whole and from the sub-path; its programs run.
	if got := mustExec(t, d.RawRuntime(t), id, "cat", "/vol/www/index.html", "/www/index.html"); got != framework.HTTPDIndex+framework.HTTPDIndex {
		t.Errorf("index.html through the image volumes: %q; want it twice", got)
	}
	if got := mustExec(t, d.RawRuntime(t), id, "/vol/bin/busybox", "echo", "ran"); got != "ran\n" {
		t.Errorf("running a program of the image volume: %q", got)
	}
	// Read-only.
	if _, _, err := d.Runtime.ExecSync(ctxT(t), id, []string{"touch", "/vol/new"}, 0); err == nil {
		t.Error("touch in the image volume succeeded; want a read-only filesystem")
	}

	// Status names the image and the reference PullImage answered.
	st, err := d.Runtime.ContainerStatus(ctxT(t), id, false)
	if err != nil {
		t.Fatal(err)
	}
	var seen int
	for _, m := range st.GetStatus().GetMounts() {
		if m.GetImage().GetImageRef() == ref && m.GetReadonly() && (m.GetContainerPath() == "/vol" || m.GetContainerPath() == "/www" && m.GetImageSubPath() == "www") {
			seen++
		}
	}
	if seen != 2 {
		t.Errorf("status mounts %v; want both image volumes with image_ref %s", st.GetStatus().GetMounts(), ref)
	}

	// An image mounted as a volume is in use.
	if err := d.Images.RemoveImage(ctxT(t), spec(framework.HTTPDImage)); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("RemoveImage of a mounted image volume: %v; want FailedPrecondition", err)
	}

	// What api.proto forbids, and what the image lacks.
	for _, tc := range []struct {
		m    *runtimeapi.Mount
		want codes.Code
	}{
		{volume("/vol", "", false), codes.InvalidArgument},
		{volume("/vol", "not-there", true), codes.InvalidArgument},
		{volume("/vol", "../..", true), codes.InvalidArgument},
		{volume("/vol", "/etc", true), codes.InvalidArgument},
		{&runtimeapi.Mount{ContainerPath: "/vol", Readonly: true, Image: &runtimeapi.ImageSpec{Image: "docker.io/library/not-pulled:1"}}, codes.NotFound},
	} {
		bad := shCfg("bad", "true")
		bad.Mounts = []*runtimeapi.Mount{tc.m}
		if _, err := d.Runtime.CreateContainer(ctxT(t), pod, bad, podCfg); status.Code(err) != tc.want {
			t.Errorf("CreateContainer with image volume %v: %v; want %v", tc.m, err, tc.want)
		}
	}

	// Once the container is gone, so is the mount, and the image can go.
	if err := d.Runtime.StopContainer(ctxT(t), id, 0); err != nil {
		t.Fatal(err)
	}
	if err := d.Runtime.RemoveContainer(ctxT(t), id); err != nil {
		t.Fatal(err)
	}
	if err := d.Images.RemoveImage(ctxT(t), spec(framework.HTTPDImage)); err != nil {
		t.Errorf("RemoveImage once the container is gone: %v", err)
	}
	for _, m := range mountsUnder(t, d.Root) {
		if m.FSType == "overlay" {
			t.Errorf("overlay mount left at %s after the image volume's container went", m.Point)
		}
	}
}
