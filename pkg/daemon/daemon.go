// Package daemon wires the configuration, the domain services and the CRI
// server together. cmd/cri-runtime only calls Run.
package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"

	"github.com/cri-runtime/cri-runtime/pkg/config"
	"github.com/cri-runtime/cri-runtime/pkg/helper"
	"github.com/cri-runtime/cri-runtime/pkg/oci"
	"github.com/cri-runtime/cri-runtime/pkg/version"
)

// ExitCoder is an error that asks main for a particular exit code.
type ExitCoder interface{ ExitCode() int }

type exitCode int

func (e exitCode) Error() string { return "exit status " + strconv.Itoa(int(e)) }
func (e exitCode) ExitCode() int { return int(e) }

// Run executes the command line args (without the program name) until ctx is
// cancelled (serve) or the command is done. -h/--help prints usage and
// returns nil.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	// The helper's commands, for when cri-runtime-helper is not installed.
	if len(args) > 0 && args[0] == "reap-exec" {
		code, _ := helper.Run(ctx, args, stderr)
		if code != 0 {
			return exitCode(code)
		}
		return nil
	}
	o, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if o.command == "pause" {
		return helper.Pause(ctx, o.pauseCgroup)
	}
	cfg, warnings, err := o.loadConfig()
	if err != nil {
		return err
	}
	switch o.command {
	case "config":
		return cfg.WriteTOML(stdout)
	case "version":
		return printVersion(ctx, cfg, stdout)
	}
	log, err := newLogger(cfg, stderr)
	if err != nil {
		return err
	}
	for _, w := range warnings {
		log.Warn("configuration", "warning", w)
	}
	return serve(ctx, cfg, log)
}

func printVersion(ctx context.Context, cfg *config.Config, w io.Writer) error {
	fmt.Fprintf(w, "cri-runtime %s\nCRI API     v1\n", version.String())
	progs, err := oci.NewProber(cfg.Runtime.Path, cfg.Runtime.MonitorPath).Probe(ctx)
	if err != nil {
		fmt.Fprintf(w, "programs    not ready: %v\n", err)
		return nil
	}
	fmt.Fprintf(w, "runtime     %s %s\nmonitor     %s %s\n", progs.Runtime.Path, progs.Runtime.Version, progs.Monitor.Path, progs.Monitor.Version)
	return nil
}
