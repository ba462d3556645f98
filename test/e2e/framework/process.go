package framework

// Pid is the daemon's process ID while it runs, 0 otherwise. Tests use it to
// look at the process from the host (/proc/<pid>/fd, its namespaces).
func (d *Daemon) Pid() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil || d.cmd.Process == nil {
		return 0
	}
	return d.cmd.Process.Pid
}
