#!/usr/bin/env bash
# Builds ferry-gitops (main.go: Argo CD's Lua VM and kstatus, run on Ferry objects)
# into $OUT (default build/bin), like hack/build-testbed-go.sh builds the API server:
# modules from the Go module proxy, pinned by go.mod/go.sum, a stamp so a second run is
# free. Rebuilt when the sources change (the stamp is their checksum).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="${OUT:-$(cd "$HERE/../.." && pwd)/build/bin}"
mkdir -p "$OUT"

sum=$(cat "$HERE/go.mod" "$HERE/go.sum" "$HERE/main.go" | sha256sum | cut -c1-16)
stamp="$OUT/.ferry-gitops-$sum"
if [[ -x "$OUT/ferry-gitops" && -f "$stamp" ]]; then
  echo "gitops: ferry-gitops already built in $OUT"
  exit 0
fi
echo "gitops: building ferry-gitops (gopher-lua, kstatus)"
cd "$HERE"
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$OUT/ferry-gitops" .
rm -f "$OUT"/.ferry-gitops-*
touch "$stamp"
