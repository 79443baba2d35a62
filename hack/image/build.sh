#!/usr/bin/env bash
# Ferry's image without Docker, a registry or network inside the build:
#   1. a Python 3.11 base image debootstrapped from Debian's packages (minbase bookworm),
#   2. Ferry's image built FROM the Dockerfile with PYTHON_IMAGE=that base and
#      WHEELS=build/image/wheels: every wheel comes from there, downloaded on the host
#      (requirements.lock's pins with their hashes, checked again inside the build),
#   3. a docker-archive of it: build/image/ferry-operator-<version>.tar, named
#      ferry-operator:<version> (`ctr -n k8s.io images import` stores it as
#      docker.io/library/ferry-operator:<version>, which is what a pod's
#      `image: ferry-operator:<version>` resolves to).
# The builder is buildah (daemonless; chroot isolation, which needs no user namespaces or
# OCI runtime) with its own storage in a machine-wide cache ($FERRY_IMAGE_CACHE, default
# ~/.cache/ferry/image), like Go's build cache and Maven's repository: a fresh clone
# finds the base and the dependency layers built and rebuilds only Ferry's own layer.
# Each step keeps a stamp of what it was built from; a run with nothing changed does
# nothing. Needs root (debootstrap,
# buildah) and a Debian host (its apt sources give the mirror). `make image` is the usual
# Docker build for users and does not use this.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=$ROOT/build/image
CACHE=${FERRY_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry/image}
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE=localhost/ferry-operator:$VERSION
ARCHIVE_NAME=ferry-operator:$VERSION
TAR=$OUT/ferry-operator-$VERSION.tar
SUITE=bookworm
BASE_PACKAGES=python3.11,python3-venv,python-is-python3,ca-certificates
BASE_IMAGE=localhost/ferry-python:3.11-$SUITE
# Bump when the base recipe below changes in a way the variables above do not show.
BASE_RECIPE=1
# The wheels are for the base's interpreter, whatever the host runs: CPython 3.11 on
# bookworm's glibc 2.36, which runs every manylinux wheel up to 2_36 (pip does not infer
# the older tags from a newer one: each is named).
WHEEL_TARGET=(--python-version 3.11 --implementation cp --abi cp311)
for glibc_minor in $(seq 36 -1 5); do
    WHEEL_TARGET+=(--platform "manylinux_2_${glibc_minor}_x86_64")
done
WHEEL_TARGET+=(--platform manylinux2014_x86_64 --platform manylinux2010_x86_64
               --platform manylinux1_x86_64)

log() { echo "image: $*"; }
die() { echo "image: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (debootstrap and buildah's chroot isolation)"
mkdir -p "$OUT" "$CACHE"
# One build at a time, over every clone of the machine: the test bed and a test may both
# ask for the image, and the storage is shared.
exec 9>"$CACHE/.lock"
flock 9

ensure_packages() {
    local missing=() pkg
    for pkg in debootstrap buildah; do  # each package's command has its name
        command -v "$pkg" >/dev/null || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return
    log "installing ${missing[*]} (Debian packages)"
    local apt=(apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300)
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" "${missing[@]}" \
        || { apt-get update -q && DEBIAN_FRONTEND=noninteractive "${apt[@]}" "${missing[@]}"; }
}

# The Debian mirror this machine's apt already uses for $SUITE (one-line .list entries
# or deb822 .sources paragraphs), so that no host is written down here.
debian_mirror() {
    python3 - "$SUITE" <<'EOF'
import glob, sys
suite = sys.argv[1]
for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        continue
    for line in lines:
        words = line.split("#")[0].split()
        if words[:1] == ["deb"]:
            words = [w for w in words[1:] if not w.startswith("[")]
            if len(words) >= 2 and words[1] == suite:
                print(words[0]); sys.exit(0)
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    for para in open(path).read().split("\n\n"):
        fields = {}
        for line in para.splitlines():
            if ":" in line and not line.startswith(("#", " ")):
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.split()
        if ("deb" in fields.get("types", []) and suite in fields.get("suites", [])
                and fields.get("enabled", ["yes"]) != ["no"] and fields.get("uris")):
            print(fields["uris"][0]); sys.exit(0)
sys.exit(f"no apt source for {suite} in /etc/apt/sources.list(.d)")
EOF
}

# overlay: a layer's diff is its upper directory, where vfs compares whole trees (minutes
# per build here); vfs where overlay mounts are not allowed.
DRIVER=${STORAGE_DRIVER:-overlay}
STORAGE=(--root "$CACHE/storage-$DRIVER" --runroot "$CACHE/run-$DRIVER" --storage-driver "$DRIVER")
buildah_() { buildah "${STORAGE[@]}" "$@"; }

has_image() { buildah_ inspect --type image "$1" >/dev/null 2>&1; }
image_id() { buildah_ inspect --type image --format '{{.FromImageID}}' "$1"; }

# -- 1. the base ----------------------------------------------------------------------------
build_base() {
    local key="$SUITE $BASE_PACKAGES $BASE_RECIPE" stamp=$CACHE/base.stamp
    if [ "$(cat "$stamp" 2>/dev/null)" = "$key" ] && has_image "$BASE_IMAGE"; then
        return
    fi
    local mirror rootfs=$OUT/rootfs start=$SECONDS
    mirror=$(debian_mirror)
    log "debootstrap --variant=minbase $SUITE ($BASE_PACKAGES) into $rootfs"
    rm -rf "$rootfs"
    debootstrap --variant=minbase --include="$BASE_PACKAGES" "$SUITE" "$rootfs" "$mirror" \
        > "$OUT/debootstrap.log" 2>&1 || { tail -20 "$OUT/debootstrap.log"; die "debootstrap failed"; }
    # What an image does not need: package lists and archives, logs, manuals, translations,
    # docs (their copyright files stay), and this machine's name and resolver.
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/log/* \
        "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/*
    find "$rootfs/usr/share/doc" ! -type d ! -name copyright -delete
    find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
    : > "$rootfs/etc/hostname"
    : > "$rootfs/etc/resolv.conf"
    local ctr mnt
    ctr=$(buildah_ from --pull=never scratch)
    mnt=$(buildah_ mount "$ctr")
    tar -C "$rootfs" -cf - . | tar -C "$mnt" -xpf -
    buildah_ umount "$ctr" >/dev/null
    buildah_ config --env LANG=C.UTF-8 --cmd '["python3"]' \
        --label org.opencontainers.image.description="Debian $SUITE minbase with Python 3.11" \
        "$ctr"
    buildah_ commit --quiet --rm "$ctr" "$BASE_IMAGE" >/dev/null
    rm -rf "$rootfs"
    echo "$key" > "$stamp"
    log "base $BASE_IMAGE built in $((SECONDS - start))s"
}

# -- 2. the wheels ---------------------------------------------------------------------------
fetch_wheels() {
    local key stamp=$OUT/wheels.stamp wheels=$OUT/wheels
    key="$(sha256sum requirements.lock pyproject.toml | sha256sum) ${WHEEL_TARGET[*]}"
    [ "$(cat "$stamp" 2>/dev/null)" = "$key" ] && [ -d "$wheels" ] && return
    local py=python3
    "$py" -m pip --version >/dev/null 2>&1 || py=$ROOT/.venv/bin/python
    log "downloading the lock's wheels into $wheels"
    rm -rf "$wheels"
    local pip=("$py" -m pip download -q --disable-pip-version-check
               --only-binary=:all: "${WHEEL_TARGET[@]}" --dest "$wheels")
    "${pip[@]}" --no-deps --require-hashes -r requirements.lock
    # What `pip wheel .` builds Ferry's own wheel with ([build-system] requires) and what
    # they need: the default build takes these from the index unpinned too.
    local requires
    requires=$(python3 -c 'import tomllib; print("\n".join(tomllib.load(
        open("pyproject.toml", "rb"))["build-system"]["requires"]))')
    mapfile -t requires <<< "$requires"
    "${pip[@]}" "${requires[@]}"
    echo "$key" > "$stamp"
}

# -- 3. Ferry's image -------------------------------------------------------------------------
source_hash() {
    { find operator -type f ! -path '*/__pycache__/*' ! -name '*.pyc' ! -path '*.egg-info/*' \
          -print0 | sort -z | xargs -0 sha256sum
      sha256sum Dockerfile .dockerignore requirements.lock pyproject.toml README.md \
          hack/image/build.sh
      cat "$OUT/wheels.stamp"
      image_id "$BASE_IMAGE"
    } | sha256sum | cut -d' ' -f1
}

build_image() {
    local key stamp=$OUT/image.stamp start=$SECONDS
    key=$(source_hash)
    if [ "$(cat "$stamp" 2>/dev/null)" = "$key" ] && [ -f "$TAR" ]; then
        log "up to date: $TAR"
        return
    fi
    local previous
    previous=$(image_id "$IMAGE" 2>/dev/null || true)
    log "building $IMAGE from the Dockerfile (PYTHON_IMAGE=$BASE_IMAGE, WHEELS=build/image/wheels)"
    # In a network namespace of its own (chroot isolation knows only the host's network):
    # proof that the build needs no network, the wheels being local.
    unshare --net -- buildah "${STORAGE[@]}" bud --isolation chroot --pull=never --layers \
        --build-arg PYTHON_IMAGE="$BASE_IMAGE" --build-arg WHEELS=build/image/wheels \
        --tag "$IMAGE" --file Dockerfile "$ROOT" > "$OUT/build.log" 2>&1 \
        || { tail -30 "$OUT/build.log"; die "image build failed (log: $OUT/build.log)"; }
    rm -f "$TAR.tmp"  # the old tar stays readable until the rename
    buildah_ push --quiet "$IMAGE" "docker-archive:$TAR.tmp:$ARCHIVE_NAME" >/dev/null
    mv "$TAR.tmp" "$TAR"
    # The image this one replaces: its copy of the virtualenv (~265 MB) is no cache for
    # anything; the build's layer cache stays.
    if [ -n "$previous" ] && [ "$previous" != "$(image_id "$IMAGE")" ]; then
        buildah_ rmi "$previous" >/dev/null 2>&1 || true
    fi
    echo "$key" > "$stamp"
    log "built $TAR ($(du -m "$TAR" | cut -f1) MB) in $((SECONDS - start))s"
}

ensure_packages
build_base
fetch_wheels
build_image
