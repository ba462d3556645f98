// Command imagebin is the one static program inside the critest images that busybox cannot
// stand in for (see framework.BuildCritestImages). What it does depends on the name it is run
// by:
//
//   - nnp (e2e-test-images/nonewprivs): installed set-user-ID root, prints
//     "Effective uid: N" and exits, like Kubernetes' test/images/nonewprivs;
//   - pause (pause:3.9): waits for SIGTERM or SIGINT;
//   - pgrep and ipcs: the two busybox applets critest runs that Debian's busybox-static
//     lacks (pgrep PATTERN, with -f and -x; ipcs with -m, -q, -s);
//   - anything else, e.g. nginx (e2e-test-images/nginx, hostnet-nginx): a web server on
//     $NGINX_PORT (default 80) answering every request with 200 and a small page. Like nginx it
//     writes its PID to /var/run/nginx.pid and calls itself "nginx: master process ..." in
//     /proc/PID/cmdline, which critest reads, while `pidof nginx` still finds it by its
//     command name.
//
// It uses no net/http so that it builds in a few seconds.
package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// masterTitle is what nginx's master process shows as its command line.
const masterTitle = "nginx: master process nginx -g daemon off;"

const page = "<!DOCTYPE html>\n<html><head><title>Welcome to nginx!</title></head>\n" +
	"<body><h1>Welcome to nginx!</h1><p>critest stand-in, built by cri-runtime's test/critest.</p></body></html>\n"

func main() {
	switch filepath.Base(os.Args[0]) {
	case "nnp":
		fmt.Printf("Effective uid: %d\n", os.Geteuid())
	case "pause":
		waitForSignal()
	case "pgrep":
		os.Exit(pgrep(os.Args[1:]))
	case "ipcs":
		os.Exit(ipcs(os.Args[1:]))
	default:
		if err := nginx(); err != nil {
			fmt.Fprintln(os.Stderr, "nginx:", err)
			os.Exit(1)
		}
	}
}

func waitForSignal() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT)
	<-c
}

func nginx() error {
	if os.Args[0] != masterTitle {
		// Run again under nginx's process title. The executable's path keeps the command
		// name (comm) "nginx".
		self, err := os.Executable()
		if err != nil {
			return err
		}
		return syscall.Exec(self, append([]string{masterTitle}, os.Args[1:]...), os.Environ())
	}
	port := 80
	if p := os.Getenv("NGINX_PORT"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			return fmt.Errorf("NGINX_PORT=%q: %w", p, err)
		}
		port = n
	}
	l, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		return err
	}
	if err := os.WriteFile("/var/run/nginx.pid", []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return err
	}
	fmt.Printf("nginx stand-in listening on port %d\n", port)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				fmt.Fprintln(os.Stderr, "nginx: accept:", err)
				os.Exit(1)
			}
			go serve(c)
		}
	}()
	waitForSignal()
	return nil
}

// serve answers each request on c with the page, until the client closes the connection.
func serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		_ = c.SetReadDeadline(time.Now().Add(time.Minute))
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		// Skip the headers; requests with bodies are not expected.
		for {
			h, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if strings.TrimSpace(h) == "" {
				break
			}
		}
		method, _, _ := strings.Cut(line, " ")
		body := page
		if method == "HEAD" {
			body = ""
		}
		if _, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/html\r\n"+
			"Content-Length: %d\r\n\r\n%s", len(page), body); err != nil {
			return
		}
	}
}
