#!/usr/bin/env bash
# End to end on a kind cluster, for machines with Docker (`make e2e-kind`):
#   1. create a kind cluster (or reuse CLUSTER if it exists),
#   2. build the operator image (Dockerfile) and load it into the cluster,
#   3. install the Helm chart and wait for the operator,
#   4. start Elasticsearch 7.10.2 (OSS) and OpenSearch 2.19 from their official images
#      and seed the source with documents for the examples' index patterns,
#   5. apply examples/ (pointed at those two by hack/e2e/kustomization.yaml) and wait:
#      both Clusters Ready, the Snapshot Completed, the Backfill Completed and Verified.
#
# It cannot run on the project's own machines and CI (no Docker engine there); the
# manifests it applies are checked with a server-side dry run by
# tests/integration/test_helm.py, and the seed script is run against a real node there.
#
# Environment: CLUSTER (default ferry-e2e), IMAGE (default ferry-operator:e2e),
# KEEP=1 keeps the cluster afterwards (a cluster that existed before is always kept),
# TIMEOUT for each wait (default 600s). Needs docker, kind, kubectl and helm on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER=${CLUSTER:-ferry-e2e}
IMAGE=${IMAGE:-ferry-operator:e2e}
KEEP=${KEEP:-0}
TIMEOUT=${TIMEOUT:-600s}
NS=ferry-e2e             # fixed: hack/e2e/*.yaml address the search clusters by it
CONTEXT="kind-$CLUSTER"

log() { printf '\n== %s\n' "$*"; }
fail() { echo "e2e-kind: $*" >&2; exit 1; }

for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool is required on PATH"
done
docker info >/dev/null 2>&1 || fail "the Docker engine is not reachable (docker info failed)"
case "$IMAGE" in
  *:*) ;;
  *) fail "IMAGE must be repository:tag, got $IMAGE" ;;
esac
REPOSITORY=${IMAGE%:*}
TAG=${IMAGE##*:}

k() { kubectl --context "$CONTEXT" "$@"; }

created=0
diagnose() {
  log "diagnostics"
  k get ferry,deployments,pods,jobs -A -o wide || true
  k -n "$NS" get clusters,snapshots,backfills -o yaml || true
  k -n ferry-system logs deployment/ferry --tail=200 || true
  k -n "$NS" get events --sort-by=.lastTimestamp || true
}
finish() {
  local status=$?
  if [ "$status" -ne 0 ]; then
    diagnose
  fi
  if [ "$created" = 1 ] && [ "$KEEP" != 1 ]; then
    log "deleting kind cluster $CLUSTER (KEEP=1 keeps it)"
    kind delete cluster --name "$CLUSTER" || true
  fi
  exit "$status"
}
trap finish EXIT

if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  log "reusing kind cluster $CLUSTER"
else
  log "creating kind cluster $CLUSTER"
  kind create cluster --name "$CLUSTER" --wait 180s
  created=1
fi

log "building $IMAGE and loading it into the cluster"
docker build -t "$IMAGE" .
kind load docker-image "$IMAGE" --name "$CLUSTER"

log "installing the chart"
helm upgrade --install ferry charts/ferry --kube-context "$CONTEXT" \
  --namespace ferry-system --create-namespace \
  --set image.repository="$REPOSITORY" --set image.tag="$TAG" \
  --set image.pullPolicy=Never \
  --set podsExecutor.namespaces="{$NS}" \
  --wait --timeout 5m
k -n ferry-system rollout status deployment/ferry --timeout="$TIMEOUT"

log "starting Elasticsearch and OpenSearch in $NS"
k create namespace "$NS" --dry-run=client -o yaml | k apply -f -
k apply -f hack/e2e/search.yaml
k -n "$NS" rollout status deployment/elasticsearch --timeout="$TIMEOUT"
k -n "$NS" rollout status deployment/opensearch --timeout="$TIMEOUT"

log "seeding the source"
k -n "$NS" delete job seed --ignore-not-found
k apply -f hack/e2e/seed-job.yaml
k -n "$NS" wait --for=condition=Complete job/seed --timeout="$TIMEOUT"

log "applying the examples"
k apply -k hack/e2e
k -n "$NS" wait --for=jsonpath='{.status.phase}'=Ready cluster/source cluster/target \
  --timeout="$TIMEOUT"
k -n "$NS" wait --for=jsonpath='{.status.phase}'=Completed snapshot/source-before-migration \
  --timeout="$TIMEOUT"
k -n "$NS" wait --for=jsonpath='{.status.phase}'=Completed backfill/source-to-target \
  --timeout="$TIMEOUT"
k -n "$NS" wait --for=condition=Verified backfill/source-to-target --timeout=60s

log "result"
k -n "$NS" get ferry -o wide
echo "e2e-kind: passed"
