"""A container image as a docker-archive tar, from a few local files.

No registry is reachable from the test bed, so the loopback node's images (the pause
sandbox image, the tests' tiny HTTP server) are packed here from binaries built on the
host and loaded with ``ctr images import``. One layer, no base image: every binary is
static. Standard library only, so hack/testbed-node.sh can run it with any python3.

    python3 hack/testbed/image_tar.py OUT.tar REF ENTRYPOINT SRC=DEST [SRC=DEST ...]
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path

# A fixed mtime so the same inputs give the same image digest (and cache hit).
_EPOCH = 0


def _layer(files: dict[str, Path]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = sorted({str(Path(dest).parent).lstrip("/") for dest in files} - {""})
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, _EPOCH
            tar.addfile(info)
        for dest, src in sorted(files.items()):
            data = src.read_bytes()
            info = tarfile.TarInfo(dest.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), 0o755, _EPOCH
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def write_image(out: Path, ref: str, entrypoint: list[str], files: dict[str, Path]) -> str:
    """Write ``ref`` (e.g. ``ferry.test/pause:3.10``) holding ``files`` (in-image path ->
    host path) to ``out``; returns the image's config digest."""
    layer = _layer(files)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": entrypoint, "Env": ["PATH=/"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "hack/testbed/image_tar.py"}],
    }, sort_keys=True).encode()
    config_digest = hashlib.sha256(config).hexdigest()
    manifest = json.dumps([{"Config": f"{config_digest}.json", "RepoTags": [ref],
                            "Layers": [f"{diff_id[7:]}/layer.tar"]}]).encode()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, "w") as tar:
        for name, data in ((f"{config_digest}.json", config),
                           (f"{diff_id[7:]}/layer.tar", layer), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), _EPOCH
            tar.addfile(info, io.BytesIO(data))
    return "sha256:" + config_digest


def main(argv: list[str]) -> None:
    out, ref, entrypoint, *pairs = argv
    files = {dest: Path(src) for src, dest in (p.split("=", 1) for p in pairs)}
    print(write_image(Path(out), ref, [entrypoint], files))


if __name__ == "__main__":
    main(sys.argv[1:])
