package oci

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/safego"
)

// TerminalSize is a terminal's size in characters.
type TerminalSize struct {
	Width, Height uint16
}

// Streams connect an interactive exec or an attach to its client. Any of
// Stdin, Stdout and Stderr may be nil. With TTY, everything the process
// writes arrives on Stdout, and Resize (which may be nil) carries the
// client's terminal size.
type Streams struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	TTY            bool
	Resize         <-chan TerminalSize
}

// Exec runs cmd in the container as ExecSync does (its user, environment,
// namespaces and cgroup), connected to the client's streams, and returns
// its exit code once it has ended. With a TTY the command gets a terminal
// of its own, whose master end runc hands us over a console socket. When
// ctx ends first, the command and everything it started are killed.
func (r *Runtime) Exec(ctx context.Context, id string, cmd []string, s Streams) (int, error) {
	pidFile, err := r.execPidFile(id)
	if err != nil {
		return 0, err
	}
	defer os.Remove(pidFile)

	runcArgs := append(append([]string{r.opts.Runc}, r.runcGlobal()...), "exec", "--detach", "--pid-file", pidFile)
	c := exec.Command(r.opts.Helper)
	var console *consoleSocket
	// helperErr collects what runc and reap-exec say when they fail. Without
	// a TTY runc hands its own stderr to the command, so it is the client's
	// stderr, and only its end is kept.
	helperErr := &tailBuffer{max: 4 << 10}
	var copies sync.WaitGroup // output copies, which end with the process
	var closers []io.Closer   // our ends of the process's stdio
	defer func() {
		for _, f := range closers {
			f.Close()
		}
	}()
	if s.TTY {
		console, err = r.listenConsole()
		if err != nil {
			return 0, err
		}
		defer console.Close()
		runcArgs = append(runcArgs, "--tty", "--console-socket", console.path)
		c.Stderr = helperErr
	} else {
		if s.Stdin != nil {
			pr, pw, err := os.Pipe()
			if err != nil {
				return 0, err
			}
			defer pr.Close()
			closers = append(closers, pw)
			c.Stdin = pr
			go func() {
				defer safego.Recover(r.log, "exec stdin copy")
				_, _ = io.Copy(pw, s.Stdin)
				pw.Close() // the command sees end of input
			}()
		}
		for _, out := range []struct {
			dst  io.Writer
			tail *tailBuffer
			set  func(*os.File)
		}{
			{s.Stdout, nil, func(f *os.File) { c.Stdout = f }},
			{s.Stderr, helperErr, func(f *os.File) { c.Stderr = f }},
		} {
			dst := out.dst
			switch {
			case dst == nil && out.tail == nil:
				continue // /dev/null
			case dst == nil:
				dst = out.tail
			case out.tail != nil:
				dst = io.MultiWriter(dst, out.tail)
			}
			pr, pw, err := os.Pipe()
			if err != nil {
				return 0, err
			}
			defer pw.Close()
			closers = append(closers, pr)
			out.set(pw)
			copies.Add(1)
			go func() {
				defer safego.Recover(r.log, "exec output copy")
				defer copies.Done()
				_, _ = io.Copy(dst, pr)
			}()
		}
	}
	c.Args = append([]string{r.opts.Helper, "reap-exec", pidFile}, append(append(runcArgs, id), cmd...)...)
	if err := c.Start(); err != nil {
		return 0, fmt.Errorf("exec in container %s: %w", id, err)
	}
	// Our copies of the write ends go now: the copies end when the command
	// and whatever inherited its stdio have closed theirs.
	for _, f := range []any{c.Stdin, c.Stdout, c.Stderr} {
		if f, ok := f.(*os.File); ok {
			f.Close()
		}
	}
	done := make(chan error, 1)
	safego.Go(r.log, "wait for exec", func() { done <- c.Wait() })

	if console != nil {
		master, err := console.receive(done)
		if err != nil {
			return 0, execFailed(id, helperErr.String(), err)
		}
		closers = append(closers, master)
		copies.Add(1)
		go func() {
			defer safego.Recover(r.log, "exec terminal output copy")
			defer copies.Done()
			// Reading the master fails with EIO once every process on the
			// terminal has closed it.
			if s.Stdout != nil {
				_, _ = io.Copy(s.Stdout, master)
			} else {
				_, _ = io.Copy(io.Discard, master)
			}
		}()
		if s.Stdin != nil {
			safego.Go(r.log, "exec terminal stdin copy", func() { _, _ = io.Copy(master, s.Stdin) })
		}
		if s.Resize != nil {
			go func() {
				defer safego.Recover(r.log, "exec terminal resize")
				for size := range s.Resize {
					if err := setWinsize(master, size); err != nil {
						return // the terminal is gone
					}
				}
			}()
		}
	}

	select {
	case err = <-done:
	case <-ctx.Done():
		r.killExec(pidFile, c)
		<-done
		return 0, ctx.Err()
	}
	// Let the output drain; a background child that inherited the
	// command's stdio must not hold the client forever.
	drained := make(chan struct{})
	safego.Go(r.log, "exec output drain", func() { copies.Wait(); close(drained) })
	select {
	case <-drained:
	case <-time.After(pipeGrace):
		for _, f := range closers {
			f.Close()
		}
		<-drained
	}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &exitErr):
		if exitErr.ExitCode() == ReapExecFailed && strings.Contains(helperErr.String(), ReapExecPrefix) {
			return 0, execFailed(id, helperErr.String(), nil)
		}
		return exitErr.ExitCode(), nil
	default:
		return 0, fmt.Errorf("exec in container %s: %w", id, err)
	}
}

// execFailed explains why runc could not run the command, from what runc
// and reap-exec wrote (msg) or, when they wrote nothing, from err. Shared
// by ExecSync and streaming Exec.
func execFailed(id, msg string, err error) error {
	msg = strings.TrimSpace(msg)
	if i := strings.LastIndex(msg, ReapExecPrefix); i > 0 {
		msg = strings.TrimSpace(msg[:i]) // runc's own words are enough
	}
	if msg == "" && err != nil {
		msg = err.Error()
	}
	if requestMisfit(msg) {
		return fmt.Errorf("exec in container %s: %s: %w", id, msg, errdefs.ErrInvalidArgument)
	}
	return fmt.Errorf("exec in container %s: %s", id, msg)
}

// consoleSocket is where runc sends the master end of an exec's terminal.
type consoleSocket struct {
	path string
	l    *net.UnixListener
}

// listenConsole listens on a fresh socket under the state directory. Unix
// socket paths are short (108 bytes), so its name is too.
func (r *Runtime) listenConsole() (*consoleSocket, error) {
	var b [6]byte
	_, _ = rand.Read(b[:])
	p := filepath.Join(r.opts.StateDir, "pty", hex.EncodeToString(b[:]))
	if len(p) >= len(unix.RawSockaddrUnix{}.Path) {
		return nil, fmt.Errorf("console socket path %s is too long; use a shorter state directory", p)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, err
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: p, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen for the exec's terminal: %w", err)
	}
	return &consoleSocket{path: p, l: l}, nil
}

func (c *consoleSocket) Close() error {
	return c.l.Close() // removes the socket file
}

// receive waits for runc to send the terminal's master end, or for the
// helper to exit without having sent it (exited must then be re-sent).
func (c *consoleSocket) receive(exited chan error) (*os.File, error) {
	type result struct {
		f   *os.File
		err error
	}
	got := make(chan result, 1)
	go func() {
		defer safego.Recover(nil, "accept console socket")
		f, err := c.accept()
		got <- result{f, err}
	}()
	select {
	case res := <-got:
		return res.f, res.err
	case err := <-exited:
		c.l.Close()
		res := <-got
		exited <- err
		if res.f != nil { // it arrived just before runc went
			return res.f, nil
		}
		if err == nil {
			err = errors.New("runc sent no terminal")
		}
		return nil, err
	}
}

func (c *consoleSocket) accept() (*os.File, error) {
	conn, err := c.l.AcceptUnix()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, fmt.Errorf("receive the exec's terminal: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("receive the exec's terminal: bad control message (%v)", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("receive the exec's terminal: expected one descriptor (%v)", err)
	}
	// Non-blocking, so that closing the file interrupts a pending read.
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		return nil, err
	}
	unix.CloseOnExec(fds[0])
	return os.NewFile(uintptr(fds[0]), "pty-master"), nil
}

func setWinsize(f *os.File, size TerminalSize) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ioErr error
	err = rc.Control(func(fd uintptr) {
		ioErr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: size.Height, Col: size.Width})
	})
	if err != nil {
		return err
	}
	return ioErr
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// Attach connects the client's streams to the container's main process
// through its conmon's attach socket: output from the moment of attaching,
// and stdin when the container was created with stdin. It returns when the
// container's output ends (it exited), when ctx ends, or — unless stdinOnce —
// when the client closes stdin (it detached). With stdinOnce the
// container's stdin is closed once the client closes its own.
func (r *Runtime) Attach(ctx context.Context, id string, s Streams, stdinOnce bool) error {
	conn, err := r.dialAttach(id)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	if s.Resize != nil && s.TTY {
		ctl, err := os.OpenFile(filepath.Join(r.BundleDir(id), "ctl"), os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if err == nil {
			defer ctl.Close()
			go func() {
				defer safego.Recover(r.log, "attach resize")
				for size := range s.Resize {
					// conmon's control fifo: event 1, resize to height width.
					if _, err := fmt.Fprintf(ctl, "%d %d %d\n", 1, size.Height, size.Width); err != nil {
						return
					}
				}
			}()
		}
	}

	outputDone := make(chan error, 1)
	safego.Go(r.log, "attach output copy", func() { outputDone <- copyAttachOutput(conn, s) })
	stdinDone := make(chan struct{})
	if s.Stdin != nil {
		go func() {
			defer safego.Recover(r.log, "attach stdin copy")
			defer close(stdinDone)
			_, _ = io.Copy(conn, s.Stdin)
			if stdinOnce {
				_ = conn.CloseWrite() // conmon closes the container's stdin
			}
		}()
	}
	select {
	case err := <-outputDone:
		return err
	case <-stdinDone:
		if !stdinOnce {
			return nil
		}
		return <-outputDone
	}
}

// The first byte of each packet conmon sends on an attach socket says
// which of the container's streams the rest came from.
const (
	attachStdout = 2
	attachStderr = 3
)

func copyAttachOutput(conn *net.UnixConn, s Streams) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			var dst io.Writer
			switch buf[0] {
			case attachStdout:
				dst = s.Stdout
			case attachStderr:
				dst = s.Stderr
				if s.TTY {
					dst = s.Stdout
				}
			}
			if dst != nil && n > 1 {
				if _, werr := dst.Write(buf[1:n]); werr != nil {
					return nil // the client has gone
				}
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("read from the container: %w", err)
		}
		if n == 0 {
			return nil
		}
	}
}

// dialAttach connects to conmon's attach socket in the bundle. The path
// may be longer than a socket address allows, so it is reached through a
// descriptor of its directory.
func (r *Runtime) dialAttach(id string) (*net.UnixConn, error) {
	dir, err := os.OpenFile(r.BundleDir(id), unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("container %s: %w", id, errdefs.ErrNotFound)
		}
		return nil, err
	}
	defer dir.Close()
	addr := fmt.Sprintf("/proc/self/fd/%d/attach", dir.Fd())
	conn, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: addr, Net: "unixpacket"})
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("container %s has no attachable monitor: %w", id, errdefs.ErrFailedPrecondition)
		}
		return nil, fmt.Errorf("attach to container %s: %w", id, err)
	}
	return conn, nil
}
