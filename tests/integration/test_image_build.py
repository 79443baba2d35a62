"""The operator image itself, built from the Dockerfile by hack/image/build.sh (part of
`make testbed`; cached, a stamp check) and run by the node's runtime, containerd + runc,
the way a pod runs it: imported into the k8s.io namespace, read-only root filesystem,
the image's own USER, ENTRYPOINT and ENV. The containerd here is this module's own
(socket, root and state under a temp dir), never the node's."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import tarfile
import time
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from testbed.pki import CertificateAuthority

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
TAR = ROOT / "build" / "image" / f"ferry-operator-{VERSION}.tar"
UID = 10001
# Where the kubelet mounts a pod's ServiceAccount token and CA.
SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


@dataclass
class Containerd:
    address: str
    runc_root: Path

    def ctr(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ctr", "--address", self.address, "-n", "k8s.io", *args],
                              capture_output=True, text=True, timeout=timeout)

    def run_args(self, image: str, mounts: dict[str, Path], env: dict[str, str],
                 args: list[str], pid_file: Path | None = None) -> list[str]:
        """`ctr run` as the kubelet would start the container: the image's own user,
        entrypoint and environment, a read-only root, host networking (the chart's
        `hostNetwork` on the loopback node), and the given mounts (writable, but the
        ServiceAccount's)."""
        cmd = ["ctr", "--address", self.address, "-n", "k8s.io", "run", "--rm",
               "--read-only", "--net-host", "--runc-root", str(self.runc_root)]
        if pid_file is not None:
            cmd += ["--pid-file", str(pid_file)]
        for dest, src in mounts.items():
            mode = "ro" if dest == SERVICE_ACCOUNT else "rw"
            cmd += ["--mount", f"type=bind,src={src},dst={dest},options=rbind:{mode}"]
        for key, value in env.items():
            cmd += ["--env", f"{key}={value}"]
        return [*cmd, image, f"ferry-image-{uuid.uuid4().hex[:8]}", *args]


@pytest.fixture(scope="module")
def image_tar() -> Path:
    # The test bed's own build: a no-op when nothing changed, and a failed or missing
    # build fails here (never a skip).
    build = subprocess.run(["bash", str(ROOT / "hack" / "image" / "build.sh")],
                           capture_output=True, text=True, timeout=1800)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    assert TAR.is_file(), f"{TAR} missing after hack/image/build.sh"
    return TAR


@pytest.fixture(scope="module")
def containerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Containerd]:
    missing = [b for b in ("containerd", "ctr", "runc") if shutil.which(b) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: `make testbed` installs them "
                    "(hack/testbed-node.sh, Debian's containerd and runc)")
    base = tmp_path_factory.mktemp("containerd")
    sock = base / "containerd.sock"
    config = base / "config.toml"
    # Only what `ctr run` needs: no CRI plugin, nothing on the default paths.
    config.write_text(f"""version = 2
root = "{base}/root"
state = "{base}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{base}/opt"
""")
    log = (base / "containerd.log").open("w")
    proc = subprocess.Popen(["containerd", "--config", str(config)], stdout=log,
                            stderr=subprocess.STDOUT)
    daemon = Containerd(str(sock), base / "runc")
    try:
        for _ in range(100):
            if daemon.ctr("version", timeout=10).returncode == 0:
                break
            assert proc.poll() is None, (base / "containerd.log").read_text()[-3000:]
            time.sleep(0.2)
        else:
            pytest.fail("containerd did not answer: " + (base / "containerd.log").read_text())
        yield daemon
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        # Snapshots a killed run may have left mounted, then the unpacked image (~400 MB).
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
                  if line.split()[1].startswith(str(base))]
        for mount in reversed(mounts):
            subprocess.run(["umount", "-l", mount], check=False)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def image(image_tar: Path, containerd: Containerd) -> str:
    """The reference the chart's Deployment asks for, as containerd resolves it."""
    helm = ROOT / "build" / "bin" / "helm"
    rendered = subprocess.run(
        [str(helm), "template", "ferry", str(ROOT / "charts" / "ferry"),
         "--show-only", "templates/deployment.yaml"],
        capture_output=True, text=True, check=True, timeout=60).stdout
    (container,) = yaml.safe_load(rendered)["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"ferry-operator:{VERSION}"
    imported = containerd.ctr("images", "import", str(image_tar))
    assert imported.returncode == 0, imported.stderr
    refs = containerd.ctr("images", "ls", "-q").stdout.split()
    # A name without a registry is Docker Hub's library/ to containerd and the kubelet
    # alike: the pod's `image:` matches the imported tag, so no pull is attempted.
    wanted = f"docker.io/library/{container['image']}"
    assert wanted in refs, refs
    return wanted


def _observed_dirs(tmp_path: Path) -> dict[str, Path]:
    """Writable stand-ins for $HOME (the image's /nonexistent) and the chart's /tmp
    emptyDir, owned by the image's user, so that anything written there is seen."""
    dirs = {"/nonexistent": tmp_path / "home", "/tmp": tmp_path / "tmp"}
    for path in dirs.values():
        path.mkdir()
        os.chown(path, UID, UID)
        path.chmod(0o700)
    return dirs


def _accept(server: socket.socket, proc: subprocess.Popen[str], err: Path) -> socket.socket:
    """The operator's first connection, or its output if it exited without one."""
    server.settimeout(0.5)
    for _ in range(240):
        with contextlib.suppress(TimeoutError):
            return server.accept()[0]
        if proc.poll() is not None:
            pytest.fail(f"exited {proc.returncode} before connecting: "
                        f"{err.read_text()[-3000:]}")
    proc.kill()
    pytest.fail("no connection to the API server in 120 s: " + err.read_text()[-3000:])


def _tar_member(tar: Path, name: str) -> bytes:
    with tarfile.open(tar) as archive:
        member = archive.extractfile(name)
        assert member is not None, name
        return member.read()


def _compiled_from_source(stderr: str) -> list[str]:
    """Modules Python compiled at start (PYTHONVERBOSE's "code object from" a .py):
    each one would want a .pyc written into the read-only root."""
    loaded = re.findall(r"^# code object from '?([^'\n]+)'?$", stderr, re.MULTILINE)
    assert loaded, "PYTHONVERBOSE printed no imports: " + stderr[-2000:]
    return [path for path in loaded if not path.endswith(".pyc")]


def test_help_runs_as_the_image_user_and_writes_nothing(
        containerd: Containerd, image: str, tmp_path: Path) -> None:
    dirs = _observed_dirs(tmp_path)
    # `ctr run IMAGE ID ARGS` replaces the entrypoint too, where a pod's `args:` keep it:
    # the image's own ENTRYPOINT goes first, as the kubelet puts it.
    manifest = json.loads(_tar_member(TAR, "manifest.json"))
    config = json.loads(_tar_member(TAR, manifest[0]["Config"]))["config"]
    assert config["Entrypoint"] == ["ferry"] and config["Cmd"] == ["run"]
    out = subprocess.run(containerd.run_args(image, dirs, {"PYTHONVERBOSE": "1"},
                                             [*config["Entrypoint"], "--help"]),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    # `ferry`'s usage, with the commands the chart and the workers run.
    assert out.stdout.startswith("usage: ferry"), out.stdout
    assert " run " in out.stdout and " worker " in out.stdout
    assert _compiled_from_source(out.stderr) == []
    assert {name: sorted(os.listdir(path)) for name, path in dirs.items()} == {
        "/nonexistent": [], "/tmp": []}


def test_run_as_uid_10001_on_a_read_only_root_fails_clearly_without_an_api_server(
        containerd: Containerd, image: str, tmp_path: Path) -> None:
    dirs = _observed_dirs(tmp_path)
    token = tmp_path / "serviceaccount"
    token.mkdir()
    for name, text in {"token": "not-a-token", "namespace": "ferry-system",
                       "ca.crt": CertificateAuthority().cert_pem.decode()}.items():
        (token / name).write_text(text)
    mounts = {**dirs, SERVICE_ACCOUNT: token}
    # An "API server" that accepts the connection and never answers: the operator is
    # held at its first request while its process is looked at from the host, then the
    # server goes away.
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    env = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(port),
           "PYTHONVERBOSE": "1"}
    pid_file = tmp_path / "pid"
    # No arguments: the image's ENTRYPOINT with its CMD, `ferry run`.
    args = containerd.run_args(image, mounts, env, [], pid_file)
    # Files, not pipes: PYTHONVERBOSE's output would fill a pipe and stall the process.
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with out.open("w") as stdout_file, err.open("w") as stderr_file:
        proc = subprocess.Popen(args, stdout=stdout_file, stderr=stderr_file, text=True)
    try:
        conn = _accept(server, proc, err)
        pid = pid_file.read_text().strip()
        status = Path(f"/proc/{pid}/status").read_text()
        environ = dict(item.split("=", 1) for item in
                       Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in item)
        mountinfo = Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
        conn.close()
    finally:
        server.close()
        proc.wait(timeout=120)
    stdout, stderr = out.read_text(), err.read_text()
    assert re.search(rf"^Uid:\t{UID}\t{UID}\t{UID}\t{UID}$", status, re.MULTILINE), status
    assert re.search(rf"^Gid:\t{UID}\t{UID}\t{UID}\t{UID}$", status, re.MULTILINE), status
    assert environ["HOME"] == "/nonexistent" and environ["PYTHONDONTWRITEBYTECODE"] == "1"
    (root,) = [line.split() for line in mountinfo if line.split()[4] == "/"]
    assert "ro" in root[5].split(","), root
    # One line naming the API server it could not use; no traceback, no write error.
    assert proc.returncode == 1, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("ferry: ")]
    assert errors == [errors[-1]] and f"API server at https://127.0.0.1:{port}" in errors[-1], \
        stderr[-3000:]
    assert "Traceback" not in stderr and "Read-only file system" not in stderr + stdout
    assert _compiled_from_source(stderr) == []
    assert {name: sorted(os.listdir(path)) for name, path in dirs.items()} == {
        "/nonexistent": [], "/tmp": []}
