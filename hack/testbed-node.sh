#!/usr/bin/env bash
# What the loopback node (hack/testbed/node.py) needs, all cached so a second run is
# free:
#   - containerd, runc and the CNI plugins (the loopback one) from Debian packages;
#   - kubelet, kube-controller-manager and kube-scheduler, built by
#     hack/build-testbed-go.sh from the same module and version as kube-apiserver;
#   - the sandbox ("pause") image: no registry is reachable, so Kubernetes' own pause.c
#     (in the k8s.io/kubernetes module) is compiled statically and packed as an image;
#   - the tests' image: ferry-echo (hack/testbed/echo), a static HTTP server.
# Images go to $NODE_OUT (default build/node) as docker-archive tars.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
NODE_OUT="${NODE_OUT:-$root/build/node}"
KUBE_VERSION="${KUBE_VERSION:-v1.36.3}"
PAUSE_TAG=3.10.2   # build/pause/Makefile's TAG at this KUBE_VERSION
mkdir -p "$NODE_OUT"

packages=(containerd runc containernetworking-plugins)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$pkg")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "testbed-node: apt-get install ${missing[*]}"
  apt_install=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq
               --no-install-recommends -o Dpkg::Use-Pty=0 "${missing[@]}")
  # A fresh machine may have no package lists yet; update only then.
  "${apt_install[@]}" >/dev/null 2>&1 || { apt-get update -qq && "${apt_install[@]}" >/dev/null; }
else
  echo "testbed-node: ${packages[*]} already installed"
fi

KUBE_VERSION="$KUBE_VERSION" bash "$root/hack/build-testbed-go.sh"

# Rebuilt when a source changes: the stamp is their checksum.
pause_c="$(go env GOMODCACHE)/k8s.io/kubernetes@$KUBE_VERSION/build/pause/linux/pause.c"
[[ -f "$pause_c" ]] || go mod download "k8s.io/kubernetes@$KUBE_VERSION"
sum=$(cat "$pause_c" "$root/hack/testbed/image_tar.py" "$root/hack/testbed/echo/main.go" \
      | sha256sum | cut -c1-16)
stamp="$NODE_OUT/.images-$sum"
if [[ -f "$stamp" && -f "$NODE_OUT/pause.tar" && -f "$NODE_OUT/echo.tar" ]]; then
  echo "testbed-node: pause and ferry-echo images already in $NODE_OUT"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_TAG-ferry" -o "$tmp/pause" "$pause_c"
python3 "$root/hack/testbed/image_tar.py" "$NODE_OUT/pause.tar" \
  "ferry.test/pause:$PAUSE_TAG" /pause "$tmp/pause=/pause" >/dev/null
# A file list, not a package: the server needs no module, only the standard library.
(cd "$root/hack/testbed/echo" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" \
  -o "$tmp/ferry-echo" main.go)
python3 "$root/hack/testbed/image_tar.py" "$NODE_OUT/echo.tar" \
  "ferry.test/echo:1" /ferry-echo "$tmp/ferry-echo=/ferry-echo" >/dev/null
rm -f "$NODE_OUT"/.images-*
touch "$stamp"
echo "testbed-node: pause and ferry-echo images in $NODE_OUT"
