package framework

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// StorageContainer is one container in the daemon's containers/storage
// store, as its containers.json records it.
type StorageContainer struct {
	ID    string `json:"id"`
	Layer string `json:"layer"` // the writable layer
}

// StorageContainers lists the containers in the daemon's containers/storage
// store (under any graph driver).
func (d *Daemon) StorageContainers() ([]StorageContainer, error) {
	files, err := filepath.Glob(filepath.Join(d.Root, "storage", "*-containers", "containers.json"))
	if err != nil {
		return nil, err
	}
	var out []StorageContainer
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var cs []StorageContainer
		if err := json.Unmarshal(b, &cs); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		out = append(out, cs...)
	}
	return out, nil
}

// StorageContainerPaths are the directories the store keeps for a container
// and its writable layer: <driver>-containers/<id> and <driver>/<layer>, for
// each graph driver directory present (layer may be "").
func (d *Daemon) StorageContainerPaths(id, layer string) []string {
	var out []string
	dirs, _ := filepath.Glob(filepath.Join(d.Root, "storage", "*-containers"))
	for _, dir := range dirs {
		out = append(out, filepath.Join(dir, id))
		if layer != "" {
			out = append(out, filepath.Join(strings.TrimSuffix(dir, "-containers"), layer))
		}
	}
	return out
}

// InfoPid finds the first numeric "pid" anywhere in a decoded verbose
// ContainerStatus info document (0 when there is none).
func InfoPid(info any) int {
	pid := 0
	walk(info, func(k string, v any) {
		if f, ok := v.(float64); ok && k == "pid" && pid == 0 {
			pid = int(f)
		}
	})
	return pid
}

// InfoSpec finds the OCI runtime spec in a decoded verbose info document:
// the first object that has an "ociVersion" (nil when there is none).
func InfoSpec(info any) map[string]any {
	var found map[string]any
	walk(info, func(_ string, v any) {
		if m, ok := v.(map[string]any); ok && found == nil {
			if _, ok := m["ociVersion"]; ok {
				found = m
			}
		}
	})
	return found
}

// SpecArgs is process.args of a decoded OCI runtime spec.
func SpecArgs(spec map[string]any) []string {
	proc, _ := spec["process"].(map[string]any)
	raw, _ := proc["args"].([]any)
	var args []string
	for _, a := range raw {
		s, _ := a.(string)
		args = append(args, s)
	}
	return args
}

// walk calls visit with every value in a decoded JSON document and the key it
// is stored under ("" inside arrays and at the top), parents first.
func walk(v any, visit func(key string, v any)) {
	visit("", v)
	var rec func(v any)
	rec = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				visit(k, e)
				rec(e)
			}
		case []any:
			for _, e := range v {
				visit("", e)
				rec(e)
			}
		}
	}
	rec(v)
}

func callCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), time.Minute)
}

// CtrStatus is the container's status, which must be reported.
func (d *Daemon) CtrStatus(t testing.TB, id string) *runtimeapi.ContainerStatus {
	t.Helper()
	ctx, cancel := callCtx()
	defer cancel()
	resp, err := d.Runtime.ContainerStatus(ctx, id, false)
	if err != nil {
		t.Fatalf("ContainerStatus(%s): %v", id, err)
	}
	if resp.GetStatus() == nil {
		t.Fatalf("ContainerStatus(%s): no status", id)
	}
	return resp.Status
}

// CtrInfo is the decoded verbose Info["info"] of a container.
func (d *Daemon) CtrInfo(t testing.TB, id string) map[string]any {
	t.Helper()
	ctx, cancel := callCtx()
	defer cancel()
	resp, err := d.Runtime.ContainerStatus(ctx, id, true)
	if err != nil {
		t.Fatalf("ContainerStatus(%s, verbose): %v", id, err)
	}
	var info map[string]any
	if err := json.Unmarshal([]byte(resp.GetInfo()["info"]), &info); err != nil {
		t.Fatalf("verbose Info[\"info\"] of %s is not a JSON object: %v: %q", id, err, resp.GetInfo()["info"])
	}
	return info
}

// poll calls cond every 50ms until it holds or timeout passes.
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// WaitExited polls, for up to 30 seconds, until the container is EXITED and
// returns that status.
func (d *Daemon) WaitExited(t testing.TB, id string) *runtimeapi.ContainerStatus {
	t.Helper()
	var st *runtimeapi.ContainerStatus
	if !poll(30*time.Second, func() bool {
		st = d.CtrStatus(t, id)
		return st.State == runtimeapi.ContainerState_CONTAINER_EXITED
	}) {
		t.Fatalf("container %s (%s) still %v after 30s; want EXITED", id, st.Metadata.GetName(), st.State)
	}
	return st
}

// WaitCRILog polls the CRI log at path, for up to 10 seconds, until its
// stdout and stderr lines are exactly wantOut and wantErr (nil meaning none),
// and fails showing the log otherwise.
func WaitCRILog(t testing.TB, path string, wantOut, wantErr []string) []LogLine {
	t.Helper()
	var lines []LogLine
	var err error
	if !poll(10*time.Second, func() bool {
		lines, err = ReadCRILog(path)
		return err == nil && slices.Equal(Joined(lines, "stdout"), wantOut) && slices.Equal(Joined(lines, "stderr"), wantErr)
	}) {
		raw, _ := os.ReadFile(path)
		t.Fatalf("log %s: parse error %v; stdout %q stderr %q; want stdout %q stderr %q; raw:\n%s",
			path, err, Joined(lines, "stdout"), Joined(lines, "stderr"), wantOut, wantErr, raw)
	}
	return lines
}

// ListCtrIDs lists the sorted IDs of the containers that match f.
func (d *Daemon) ListCtrIDs(t testing.TB, f *runtimeapi.ContainerFilter) []string {
	t.Helper()
	ctx, cancel := callCtx()
	defer cancel()
	cs, err := d.Runtime.ListContainers(ctx, f)
	if err != nil {
		t.Fatalf("ListContainers(%v): %v", f, err)
	}
	out := []string{}
	for _, c := range cs {
		out = append(out, c.Id)
	}
	slices.Sort(out)
	return out
}

// ProcsMentioning lists the processes, other than except, whose command line
// mentions s, as "pid: command line".
func ProcsMentioning(t testing.TB, s string, except int) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == except {
			continue
		}
		b, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if cmd := strings.ReplaceAll(string(b), "\x00", " "); strings.Contains(cmd, s) {
			out = append(out, e.Name()+": "+cmd)
		}
	}
	return out
}
