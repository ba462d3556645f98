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
  make git ca-certificates
  # Headers containers/image and containers/storage need when built without
  # the Makefile's build tags, so that a plain `go build ./...` works too.
  pkg-config libgpgme-dev libbtrfs-dev
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
echo "install-deps: all dependencies present (Go $have, $(runc --version | head -1), $(conmon --version | head -1))"
