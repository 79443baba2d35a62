#!/usr/bin/env bash
# Fetches single-node OpenSearch 2.19.x and Elasticsearch 7.10.2 installs into $OUT
# (default build/engines/{opensearch,elasticsearch}-<version>/) from Maven Central.
#
# Only the "integ-test-zip" distributions are published to Maven Central, and they
# ship the transport-netty4 module alone. The modules the tests need are published
# as plain jars (OpenSearch: org.opensearch.plugin:*; Elasticsearch: the few
# org.elasticsearch.plugin:*-client jars, and byte-identical republished copies of
# the rest under org.codelibs.elasticsearch.module:*), so each module folder is
# assembled here: jar + runtime deps not already in lib/ + the descriptor and
# security policy that the real distribution's build would have generated.
#
# Running a node as root (tests and CI run as root): both engines refuse uid 0 and
# have no switch to allow it, so start them as an unprivileged uid. Give that uid a
# private, writable copy of config/ (the node writes its keystore there) and its
# own data/logs/repo/tmp dirs; the install itself only needs to be readable
# ($JAVA17_HOME: a Java 17 home, as find_java() in hack/testbed/search.py picks it):
#
#   run=$(mktemp -d); mkdir -p "$run"/{data,logs,repo,tmp}
#   cp -r "$ES_HOME/config" "$run/config"; chown -R 65534:65534 "$run"
#   setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
#     env JAVA_HOME="$JAVA17_HOME" ES_PATH_CONF="$run/config" \
#         ES_TMPDIR="$run/tmp" ES_JAVA_OPTS="-Xms512m -Xmx512m" \
#     "$ES_HOME/bin/elasticsearch" -Ediscovery.type=single-node \
#         -Enetwork.host=127.0.0.1 -Ehttp.port=$HTTP -Etransport.port=$TRANSPORT \
#         -Epath.data="$run/data" -Epath.logs="$run/logs" -Epath.repo="$run/repo" \
#         -Ecluster.routing.allocation.disk.threshold_enabled=false \
#         -Ereindex.remote.whitelist='127.0.0.1:*'
#
# OpenSearch is the same with OPENSEARCH_{PATH_CONF,TMPDIR,JAVA_OPTS,JAVA_HOME}
# (ES 7.10 only reads JAVA_HOME), bin/opensearch, and reindex.remote.allowlist.
# Without chown, `unshare --user --map-user=1000 --map-group=1000 <cmd>` also works:
# the node sees a non-root uid that still owns the root-owned files.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${OUT:-$root/build/engines}"
ELASTICSEARCH_VERSION="${ELASTICSEARCH_VERSION:-7.10.2}"
# Newest 2.19 patch first; 2.19.3 is the fallback known to be on Maven Central.
OPENSEARCH_CANDIDATES=(2.19.6 2.19.3)
# Bump when the module recipe changes so existing installs are rebuilt.
RECIPE=1

mkdir -p "$OUT"
# Parallel test workers may all call this; the second waits and then finds the stamp.
exec 9>"$OUT/.lock"
flock 9
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Maven 3.8 prints stray colour resets even with -q -B; show its output only on failure.
mvn_quiet() {
  if ! mvn -q -B "$@" >"$tmp/mvn.log" 2>&1; then
    cat "$tmp/mvn.log" >&2
    return 1
  fi
}
served() { mvn_quiet dependency:get -Dartifact="$1" -Dtransitive=false 2>/dev/null; }

# name | artifacts (G:A, version = engine's) | classname | extended.plugins
opensearch_modules() {
  cat <<'EOF'
lang-painless|org.opensearch.plugin:lang-painless|org.opensearch.painless.PainlessPlugin|
analysis-common|org.opensearch.plugin:analysis-common|org.opensearch.analysis.common.CommonAnalysisPlugin|lang-painless
reindex|org.opensearch.plugin:reindex-client|org.opensearch.index.reindex.ReindexPlugin|
mapper-extras|org.opensearch.plugin:mapper-extras-client|org.opensearch.index.mapper.MapperExtrasPlugin|
parent-join|org.opensearch.plugin:parent-join-client|org.opensearch.join.ParentJoinPlugin|
EOF
}
elasticsearch_modules() {
  # codelibs' lang-painless pom points at codelibs' copy of the SPI; the official one
  # is swapped in (see the exclusions) so jar names match the real distribution.
  cat <<'EOF'
lang-painless|org.codelibs.elasticsearch.module:lang-painless,org.elasticsearch.plugin:elasticsearch-scripting-painless-spi|org.elasticsearch.painless.PainlessPlugin|
analysis-common|org.codelibs.elasticsearch.module:analysis-common|org.elasticsearch.analysis.common.CommonAnalysisPlugin|lang-painless
reindex|org.elasticsearch.plugin:reindex-client|org.elasticsearch.index.reindex.ReindexPlugin|
mapper-extras|org.elasticsearch.plugin:mapper-extras-client|org.elasticsearch.index.mapper.MapperExtrasPlugin|
parent-join|org.elasticsearch.plugin:parent-join-client|org.elasticsearch.join.ParentJoinPlugin|
EOF
}

# Same text as the modules' plugin-metadata/plugin-security.policy upstream.
write_policy() { # dir module flavor
  case "$2" in
    reindex) cat > "$1/plugin-security.policy" <<EOF
grant {
  // reindex opens socket connections using the rest client
  permission java.net.SocketPermission "*", "connect";
};

grant codeBase "\${codebase.$3-rest-client}" {
  // rest client uses system properties which gets the default proxy
  permission java.net.NetPermission "getProxySelector";
};

grant codeBase "\${codebase.httpasyncclient}" {
  // rest client uses system properties which gets the default proxy
  permission java.net.NetPermission "getProxySelector";
};
EOF
      ;;
    lang-painless) cat > "$1/plugin-security.policy" <<'EOF'
grant {
  // needed to generate runtime classes
  permission java.lang.RuntimePermission "createClassLoader";

  // needed to find the classloader to load whitelisted classes from
  permission java.lang.RuntimePermission "getClassLoader";
};
EOF
      ;;
  esac
}

# Both engines reject unknown descriptor keys, so each gets exactly its own set.
write_descriptor() { # dir flavor version name classname extended
  local f="$1/plugin-descriptor.properties"
  {
    echo "description=$4 module (assembled by fetch-search-engines.sh)"
    echo "version=$3"
    echo "name=$4"
    echo "classname=$5"
    if [[ $2 == opensearch ]]; then
      echo "java.version=11"
      echo "opensearch.version=$3"
      echo "custom.foldername="
    else
      echo "java.version=1.8"
      echo "elasticsearch.version=$3"
    fi
    echo "extended.plugins=$6"
    echo "has.native.controller=false"
  } > "$f"
}

# Copies the module's jars and their runtime deps, minus what the server already
# loads (the server artifact's whole tree, and any artifactId present in lib/):
# a class on both the server and a module classpath fails the jar-hell check.
assemble_module() { # home flavor version name artifacts
  local home=$1 flavor=$2 version=$3 name=$4 artifacts=$5
  local dir="$home/modules/$name" work="$tmp/$flavor-$name" deps="" a
  local excl="<exclusions>
    <exclusion><groupId>org.opensearch</groupId><artifactId>opensearch</artifactId></exclusion>
    <exclusion><groupId>org.elasticsearch</groupId><artifactId>elasticsearch</artifactId></exclusion>
    <exclusion><groupId>org.codelibs.elasticsearch.module</groupId><artifactId>scripting-painless-spi</artifactId></exclusion>
  </exclusions>"
  IFS=, read -ra list <<<"$artifacts"
  for a in "${list[@]}"; do
    deps+="<dependency><groupId>${a%%:*}</groupId><artifactId>${a#*:}</artifactId><version>$version</version>$excl</dependency>"
  done
  local lib_ids
  lib_ids=$(find "$home/lib" -maxdepth 1 -name '*.jar' -printf '%f\n' \
    | sed -E 's/-[0-9]+(\.[0-9]+)*([.-][A-Za-z0-9.-]*)?\.jar$//' | paste -sd, -)
  mkdir -p "$work" "$dir"
  cat > "$work/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>ferry.testbed</groupId><artifactId>$flavor-$name</artifactId><version>0</version>
  <packaging>pom</packaging>
  <dependencies>$deps</dependencies>
</project>
EOF
  (cd "$work" && mvn_quiet dependency:copy-dependencies -DincludeScope=runtime \
    -DexcludeArtifactIds="$lib_ids" -DoutputDirectory="$dir")
}

install_engine() { # flavor version zip-artifact modules-fn
  local flavor=$1 version=$2 artifact=$3 modules_fn=$4
  local dest="$OUT/$flavor-$version" stamp="$OUT/$flavor-$version/.fetched"
  local want
  want="recipe=$RECIPE modules=$("$modules_fn" | cut -d'|' -f1 | paste -sd, -)"
  if [[ -f $stamp && "$(cat "$stamp")" == "$want" ]]; then
    echo "fetch-search-engines: $flavor $version already in $dest"
    return
  fi
  echo "fetch-search-engines: assembling $flavor $version"
  local stage="$OUT/.$flavor-$version.partial"
  rm -rf "$stage" "$tmp/zip" && mkdir -p "$tmp/zip" "$stage"
  mvn_quiet dependency:copy -Dartifact="$artifact" -DoutputDirectory="$tmp/zip"
  unzip -q "$tmp/zip/"*.zip -d "$tmp/zip"
  rm "$tmp/zip/"*.zip
  mv "$tmp/zip/"*/* "$stage/"
  # Its gc log goes to a path relative to the install, which an unprivileged node
  # cannot write (the JVM then refuses to start) and parallel nodes would share.
  local jvm_options="$stage/config/jvm.options"
  sed -i -E '/-Xlog:gc.*file=logs\/gc\.log/d; /HeapDumpOnOutOfMemoryError|HeapDumpPath=data/d' "$jvm_options"

  local name artifacts classname extended
  while IFS='|' read -r name artifacts classname extended; do
    assemble_module "$stage" "$flavor" "$version" "$name" "$artifacts"
    write_descriptor "$stage/modules/$name" "$flavor" "$version" "$name" "$classname" "$extended"
    write_policy "$stage/modules/$name" "$name" "$flavor"
  done < <("$modules_fn")

  rm -rf "$dest"
  mv "$stage" "$dest"
  echo "$want" > "$stamp"
  echo "fetch-search-engines: $flavor $version ready in $dest"
}

os_version="${OPENSEARCH_VERSION:-}"
if [[ -z $os_version ]]; then
  for v in "${OPENSEARCH_CANDIDATES[@]}"; do
    if [[ -f "$OUT/opensearch-$v/.fetched" ]] \
       || served "org.opensearch.distribution.integ-test-zip:opensearch:$v:zip"; then
      os_version=$v
      break
    fi
  done
  os_version="${os_version:-${OPENSEARCH_CANDIDATES[-1]}}"
fi

install_engine opensearch "$os_version" \
  "org.opensearch.distribution.integ-test-zip:opensearch:$os_version:zip" opensearch_modules
install_engine elasticsearch "$ELASTICSEARCH_VERSION" \
  "org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ELASTICSEARCH_VERSION:zip" \
  elasticsearch_modules
