package spec

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/opencontainers/runtime-tools/generate"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// defaultPath is the PATH a container gets when neither the image nor the
// request sets one.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// oomScoreAdjMax is the kernel's highest oom_score_adj.
const oomScoreAdjMax = 1000

// setProcess fills argv, env, cwd, the terminal, oom_score_adj and
// no_new_privs. The user is set by setUser, capabilities by setCapabilities.
func setProcess(g *generate.Generator, in Input) error {
	args := processArgs(in.Image.Entrypoint, in.Image.Cmd, in.Command, in.Args)
	if len(args) == 0 {
		return fmt.Errorf("no command: neither the request nor the image specifies one: %w", errdefs.ErrInvalidArgument)
	}
	g.SetProcessArgs(args)

	env, err := processEnv(in)
	if err != nil {
		return err
	}
	g.ClearProcessEnv()
	g.Config.Process.Env = env

	cwd, err := processCwd(in.WorkingDir, in.Image.WorkingDir)
	if err != nil {
		return err
	}
	g.SetProcessCwd(cwd)
	g.SetProcessTerminal(in.TTY)
	g.SetProcessNoNewPrivileges(in.Security.NoNewPrivs)
	g.SetProcessOOMScoreAdj(clampOOMScoreAdj(in.Resources.OOMScoreAdj, in.OOMScoreAdjMin))
	return nil
}

// processArgs merges the image's Entrypoint and Cmd with the request's
// command and args the way Kubernetes documents it: a command replaces the
// Entrypoint and drops the image Cmd; args replace the Cmd.
func processArgs(entrypoint, cmd, command, args []string) []string {
	var out []string
	switch {
	case len(command) > 0:
		out = append(out, command...)
		out = append(out, args...)
	case len(args) > 0:
		out = append(out, entrypoint...)
		out = append(out, args...)
	default:
		out = append(out, entrypoint...)
		out = append(out, cmd...)
	}
	return out
}

// processEnv layers the environment: HOSTNAME and (with a TTY) TERM as
// defaults, then the image's variables, then the request's. A later layer
// replaces a variable in place; new variables are appended. PATH is added
// last when no layer set it.
func processEnv(in Input) ([]string, error) {
	var env envList
	if in.Hostname != "" {
		env.set("HOSTNAME=" + in.Hostname)
	}
	if in.TTY {
		env.set("TERM=xterm")
	}
	for _, kv := range in.Image.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			// Tolerate junk in image configs: runc refuses an entry
			// without "=" at create. containerd drops it too.
			continue
		}
		env.set(kv)
	}
	for _, kv := range in.Env {
		if envKey(kv) == "" {
			return nil, fmt.Errorf("env %q: empty variable name: %w", kv, errdefs.ErrInvalidArgument)
		}
		env.set(kv)
	}
	if !env.has("PATH") {
		env.set("PATH=" + defaultPath)
	}
	return env.list, nil
}

// envList is an ordered environment with replacement by key.
type envList struct {
	list []string
	at   map[string]int // key → index in list: a request may carry many
}

func envKey(kv string) string {
	k, _, _ := strings.Cut(kv, "=")
	return k
}

func (e *envList) has(key string) bool {
	_, ok := e.at[key]
	return ok
}

func (e *envList) set(kv string) {
	key := envKey(kv)
	if i, ok := e.at[key]; ok {
		e.list[i] = kv
		return
	}
	if e.at == nil {
		e.at = map[string]int{}
	}
	e.at[key] = len(e.list)
	e.list = append(e.list, kv)
}

// processCwd picks the request's working directory, else the image's, else
// "/". The request's must be absolute (runc refuses others); a relative image
// WORKDIR, which builders do not normally produce, is taken from "/".
func processCwd(request, image string) (string, error) {
	if request != "" {
		if !filepath.IsAbs(request) {
			return "", fmt.Errorf("working directory %q is not absolute: %w", request, errdefs.ErrInvalidArgument)
		}
		return filepath.Clean(request), nil
	}
	if image != "" {
		return filepath.Join("/", image), nil
	}
	return "/", nil
}

// clampOOMScoreAdj raises adj to the daemon's own minimum (a process may not
// lower its children below itself without CAP_SYS_RESOURCE, and must not let
// containers outlive the daemon under OOM) and caps it at the kernel maximum.
func clampOOMScoreAdj(adj, minimum int) int {
	if adj < minimum {
		adj = minimum
	}
	if adj > oomScoreAdjMax {
		adj = oomScoreAdjMax
	}
	return adj
}
