#!/usr/bin/env bash
# Builds kube-apiserver, kubelet, kube-controller-manager, kube-scheduler and etcd from
# Go modules into $OUT (default build/bin).
#
# No package registry ships kube-apiserver, so we consume k8s.io/kubernetes as a
# module: its go.mod replaces every k8s.io/<staging> module with a local path,
# which does not apply to consumers, so we write the same replaces pointing at the
# published v0.<minor>.<patch> tags. etcd comes from go.etcd.io/etcd/server/v3 at
# the version k8s.io/kubernetes itself pins, so the pair is one tested combination.
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-v1.36.3}"
OUT="${OUT:-$(cd "$(dirname "$0")/.." && pwd)/build/bin}"
WORK="${WORK:-$(cd "$(dirname "$0")/.." && pwd)/build/go-testbed}"
mkdir -p "$OUT" "$WORK"

# The GitOps helper (Argo CD's Lua VM, kstatus) for tests/integration/test_argocd.py.
OUT="$OUT" bash "$(dirname "$0")/gitops/build.sh"

# kubelet, kube-controller-manager and kube-scheduler are the loopback node's
# (hack/testbed/node.py): the same module, version and stamping as the API server.
KUBE_CMDS=(kube-apiserver kubelet kube-controller-manager kube-scheduler)
stamp="$OUT/.kube-$KUBE_VERSION"
missing=()
for cmd in "${KUBE_CMDS[@]}" etcd; do
  [[ -x "$OUT/$cmd" && -f "$stamp" ]] || missing+=("$cmd")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "testbed-go: ${KUBE_CMDS[*]} $KUBE_VERSION and etcd already built in $OUT"
  exit 0
fi

export GOFLAGS="${GOFLAGS:-} -mod=mod"
export CGO_ENABLED=0
staging_version="v0.${KUBE_VERSION#v1.}"

cd "$WORK"
modfile=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
etcd_version=$(awk '$1=="go.etcd.io/etcd/server/v3"{print $2; exit}' "$modfile")

{
  echo "module ferry.dev/testbed"
  echo
  awk '$1=="go"{print; exit}' "$modfile"
  echo
  echo "require ("
  echo "	k8s.io/kubernetes $KUBE_VERSION"
  echo "	go.etcd.io/etcd/server/v3 $etcd_version"
  echo ")"
  echo
  echo "replace ("
  awk '/=> .\/staging\/src\//{print "\t" $1 " => " $1 " '"$staging_version"'"}' "$modfile"
  echo ")"
} > go.mod
cat > tools.go <<'GO'
//go:build tools

package testbed

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
GO

go mod tidy >/dev/null 2>&1 || true
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$(echo "$KUBE_VERSION" | cut -d. -f2)"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
for cmd in "${missing[@]}"; do
  started=$SECONDS
  if [[ $cmd == etcd ]]; then
    echo "testbed-go: building etcd $etcd_version"
    go build -trimpath -ldflags "-s -w" -o "$OUT/etcd" go.etcd.io/etcd/server/v3
  else
    echo "testbed-go: building $cmd $KUBE_VERSION (a first build takes several minutes)"
    go build -trimpath -ldflags "$ldflags" -o "$OUT/$cmd" "k8s.io/kubernetes/cmd/$cmd"
  fi
  echo "testbed-go: $cmd built in $((SECONDS - started))s"
done
touch "$stamp"
echo "testbed-go: done"
