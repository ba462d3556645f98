package apparmor

import (
	"bytes"
	"text/template"
)

// profileText is the policy of the default profile. A container keeps what
// an ordinary process needs (its files, the network, the capabilities the
// OCI spec grants) and loses what reaches past it into the node: mounting,
// writing kernel knobs under /proc and /sys, reading firmware and the LSM's
// own interface, and ptrace or signals to processes outside the profile.
// It needs no file of /etc/apparmor.d: hosts with only the parser load it.
var profileText = template.Must(template.New("profile").Parse(`# {{.Name}}: the AppArmor profile cri-runtime gives containers that ask for
# RuntimeDefault or name no profile. Written and loaded by the daemon.
profile {{.Name}} flags=(attach_disconnected,mediate_deleted) {
  # Ordinary work inside the container.
  file,
  network,
  capability,
  umount,

  # Signals from the node (the runtime, the kubelet's probes run as exec)
  # and between the container's own processes; ptrace only among those.
  signal (receive) peer=unconfined,
  signal (send,receive) peer={{.Name}},
  ptrace (trace,read,tracedby,readby) peer={{.Name}},

  # No new mounts: the runtime made every mount the container has.
  deny mount,

  # /proc: no writes to files at its top (sysrq-trigger, kmsg…) or under
  # the directories that are not processes; no access at all to the two
  # windows onto kernel memory. /proc/sys stays writable only where it is
  # namespaced per container: kernel.shm*, set through sysctls.
  deny /proc/* w,
  deny /proc/{[^1-9],[^1-9][^0-9],[^1-9s][^0-9y][^0-9s],[^1-9][^0-9][^0-9][^0-9/]*}/** w,
  deny /proc/sys/[^k]** w,
  deny /proc/sys/kernel/{?,??,[^s][^h][^m]**} w,
  deny /proc/sysrq-trigger rwklx,
  deny /proc/kcore rwklx,

  # /sys: nothing writable but the cgroup filesystem, nothing readable of
  # the firmware or of the security modules.
  deny /sys/[^f]*/** wklx,
  deny /sys/f[^s]*/** wklx,
  deny /sys/fs/[^c]*/** wklx,
  deny /sys/fs/c[^g]*/** wklx,
  deny /sys/fs/cg[^r]*/** wklx,
  deny /sys/firmware/** rwklx,
  deny /sys/kernel/security/** rwklx,
}
`))

// Profile renders the default policy under the given profile name.
func Profile(name string) []byte {
	var b bytes.Buffer
	if err := profileText.Execute(&b, struct{ Name string }{name}); err != nil {
		panic(err) // a fixed template and a string: cannot fail
	}
	return b.Bytes()
}
