package cri

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

func TestVersion(t *testing.T) {
	v, err := (&runtimeService{opts: testOptions()}).Version(context.Background(), &runtimeapi.VersionRequest{})
	if err != nil || v.RuntimeName != "cri-runtime" || v.RuntimeApiVersion != "v1" || v.Version != "0.1.0" || v.RuntimeVersion == "" {
		t.Fatalf("Version() = %+v, %v", v, err)
	}
}

func TestStatusConditions(t *testing.T) {
	for _, tc := range []struct {
		name                     string
		progErr, netErr          error
		runtimeReady, netReady   bool
		runtimeReason, netReason string
	}{
		{name: "all ready", runtimeReady: true, netReady: true},
		{name: "no runtime", progErr: errdefs.NotReady("OCIRuntimeNotReady", "runc missing"), netReady: true, runtimeReason: "OCIRuntimeNotReady"},
		{name: "no network", netErr: errdefs.NotReady("NetworkPluginNotReady", "no cni"), runtimeReady: true, netReason: "NetworkPluginNotReady"},
		{name: "plain error gets a generic reason", progErr: errors.New("odd"), netErr: errors.New("odd"), runtimeReason: "RuntimeNotReady", netReason: "NetworkNotReady"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOptions()
			opts.Programs, opts.Network = fakePrograms{err: tc.progErr}, fakeNetwork{err: tc.netErr}
			resp, err := (&runtimeService{opts: opts}).Status(context.Background(), &runtimeapi.StatusRequest{})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]*runtimeapi.RuntimeCondition{}
			for _, c := range resp.Status.Conditions {
				got[c.Type] = c
			}
			rt, nw := got[runtimeapi.RuntimeReady], got[runtimeapi.NetworkReady]
			if rt.Status != tc.runtimeReady || rt.Reason != tc.runtimeReason || nw.Status != tc.netReady || nw.Reason != tc.netReason {
				t.Fatalf("conditions = %v, %v", rt, nw)
			}
			if !rt.Status && rt.Message == "" || !nw.Status && nw.Message == "" {
				t.Fatal("a false condition must explain itself in Message")
			}
			if len(resp.Info) != 0 {
				t.Fatal("Info must be empty unless verbose")
			}
			if len(resp.RuntimeHandlers) != 2 || resp.RuntimeHandlers[0].Name != "" || resp.RuntimeHandlers[1].Name != "runc" {
				t.Fatalf("handlers = %v", resp.RuntimeHandlers)
			}
		})
	}
}

func TestStatusVerbose(t *testing.T) {
	resp, err := (&runtimeService{opts: testOptions()}).Status(context.Background(), &runtimeapi.StatusRequest{Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"config", "programs", "network"} {
		var v map[string]any
		if err := json.Unmarshal([]byte(resp.Info[key]), &v); err != nil || len(v) == 0 {
			t.Fatalf("Info[%q] = %q is not a JSON object: %v", key, resp.Info[key], err)
		}
	}
}

func TestRuntimeConfig(t *testing.T) {
	for driver, want := range map[string]runtimeapi.CgroupDriver{
		"cgroupfs": runtimeapi.CgroupDriver_CGROUPFS,
		"systemd":  runtimeapi.CgroupDriver_SYSTEMD,
	} {
		opts := testOptions()
		opts.CgroupDriver = driver
		resp, err := (&runtimeService{opts: opts}).RuntimeConfig(context.Background(), &runtimeapi.RuntimeConfigRequest{})
		if err != nil || resp.Linux.CgroupDriver != want {
			t.Fatalf("%s: RuntimeConfig() = %v, %v", driver, resp, err)
		}
	}
}
