#!/usr/bin/env bash
# Installs what cri-runtime needs at run time and for its tests, from Debian's
# packages. Idempotent: when everything is present it changes nothing and
# does not touch the network.
set -euo pipefail

packages=(
  runc                         # the OCI runtime
  conmon                       # the per-container monitor
  containernetworking-plugins  # bridge, host-local, portmap, loopback… in /usr/lib/cni
  iptables                     # used by the bridge (ipMasq) and portmap plugins
  busybox-static               # the e2e tests build their images from /bin/busybox
  iproute2 util-linux          # ip and nsenter, which the e2e tests inspect pods with
  apparmor                     # apparmor_parser, which loads our default profile on AppArmor nodes
  make git ca-certificates
  # Headers containers/image and containers/storage need when built without
  # the Makefile's build tags, so that a plain `go build ./...` works too.
  pkg-config libgpgme-dev libbtrfs-dev
  libseccomp-dev gcc           # to build runc when Debian's is too old (below)
  criu                         # checkpoint/restore (runc runs it; works where the kernel allows)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: missing ${missing[*]}; run as root (sudo) to install them" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The Go toolchain: go.mod names the minimum version.
want=$(awk '/^go /{print $2; exit}' "$(dirname "$0")/../go.mod")
if ! command -v go >/dev/null; then
  echo "install-deps: no Go toolchain on PATH; cri-runtime needs Go >= $want (https://go.dev/dl)" >&2
  exit 1
fi
have=$(go env GOVERSION | sed 's/^go//')
if [[ $(printf '%s\n%s\n' "$want" "$have" | sort -V | head -1) != "$want" ]]; then
  echo "install-deps: Go $have is older than the $want go.mod needs" >&2
  exit 1
fi
# runc: pods with a user namespace of their own need idmapped mounts, which
# runc has from 1.2; Debian 12 ships 1.1.5. Build the pinned release from the
# Go module proxy into /usr/local/sbin, ahead of /usr/sbin on PATH.
runc_want=1.5.2
runc_have=$(runc --version 2>/dev/null | awk '/^runc version/{print $3}')
if [[ $(printf '%s\n%s\n' 1.2.0 "${runc_have:-0}" | sort -V | head -1) != 1.2.0 ]]; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: runc ${runc_have:-missing} lacks idmapped mounts; run as root (sudo) to build runc $runc_want" >&2
    exit 1
  fi
  echo "install-deps: runc ${runc_have:-missing} is older than 1.2; building runc $runc_want"
  gobin=$(mktemp -d)
  CGO_ENABLED=1 GOBIN="$gobin" go install -tags seccomp "github.com/opencontainers/runc@v$runc_want"
  install -m 0755 "$gobin/runc" /usr/local/sbin/runc
  rm -rf "$gobin"
  hash -r
  if [[ $(runc --version | awk '/^runc version/{print $3}') != "$runc_want" ]]; then
    echo "install-deps: runc $runc_want is in /usr/local/sbin, but PATH finds $(command -v runc) first; put /usr/local/sbin ahead of /usr/sbin" >&2
    exit 1
  fi
fi
echo "install-deps: all dependencies present (Go $have, $(runc --version | head -1), $(conmon --version | head -1))"
