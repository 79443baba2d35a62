"""A real node on loopback: containerd + kubelet, in a control plane of its own.

The session's API server (testbed.kube) runs without controllers, and the suite relies
on that (no garbage collector, no namespace controller). Tests that need pods to run
get this instead: a second etcd + kube-apiserver with kube-controller-manager and
kube-scheduler, a containerd with its own root, state and socket under the work dir,
and a kubelet registered as node "127.0.0.1" (a --hostname-override that is an IP
becomes the InternalIP unchecked; --node-ip refuses a loopback address). No CNI
bridge: pods run with ``hostNetwork: true``, so every connection stays on 127.0.0.1.
Images come from tars (hack/testbed-node.sh builds them), never from a registry.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from testbed.kube import KubeAPIServer
from testbed.paths import BUILD, MissingPart, binary
from testbed.procs import ManagedProcess, free_port, retry_on_port_clash

NODE_HINT = "run `make testbed` (hack/testbed-node.sh builds and installs the node's parts)"
NODE_NAME = "127.0.0.1"
NODE_IMAGES = BUILD / "node"
PAUSE_IMAGE = "ferry.test/pause:3.10.2"
# The tests' image (hack/testbed/echo): a static HTTP server, `-listen ADDR`.
ECHO_IMAGE = "ferry.test/echo:1"
CNI_BIN = Path("/usr/lib/cni")
CGROUP_V1 = Path("/sys/fs/cgroup")


def _system_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise MissingPart(f"{name} is not installed; {NODE_HINT}")
    return path


def overlay_works(scratch: Path) -> bool:
    """Whether an overlay mount can be made here (containerd's default snapshotter);
    if not, the node falls back to the slower ``native`` one (full copies)."""
    dirs = {name: scratch / name for name in ("lower", "upper", "work", "merged")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    options = f"lowerdir={dirs['lower']},upperdir={dirs['upper']},workdir={dirs['work']}"
    mounted = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options,
                              str(dirs["merged"])], capture_output=True).returncode == 0
    if mounted:
        subprocess.run(["umount", str(dirs["merged"])], check=True)
    shutil.rmtree(scratch, ignore_errors=True)
    return mounted


@dataclass
class KubeNode:
    """A one-node cluster on loopback; ``kubeconfig``/``url`` are its admin's."""

    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ferry-kubenode-")))
    api: KubeAPIServer | None = None
    controller_manager: ManagedProcess | None = None
    scheduler: ManagedProcess | None = None
    containerd: ManagedProcess | None = None
    kubelet: ManagedProcess | None = None
    snapshotter: str = ""
    # Each node's pods go under a cgroup of their own, so two runs on one machine (or a
    # stale one) never share /kubepods.
    cgroup_root: str = field(default_factory=lambda: f"/ferry-kubenode-{uuid.uuid4().hex[:8]}")

    @property
    def kubeconfig(self) -> Path:
        assert self.api is not None
        return self.api.kubeconfig

    @property
    def url(self) -> str:
        assert self.api is not None
        return self.api.url

    @property
    def socket(self) -> Path:
        return self.workdir / "containerd" / "containerd.sock"

    @retry_on_port_clash(reset=lambda self: shutil.rmtree(self.workdir, ignore_errors=True))
    def start(self) -> KubeNode:
        """Start everything; returns once the Node is Ready."""
        for name in ("kubelet", "kube-controller-manager", "kube-scheduler"):
            binary(name, NODE_HINT)
        pki = self.workdir / "pki"
        self.api = api = KubeAPIServer(workdir=self.workdir / "api", service_accounts=True)
        client_cert, client_key = api.ca.issue(
            "kube-apiserver-kubelet-client", organizations=("system:masters",), client=True
        ).write(pki, "apiserver-kubelet-client")
        (pki / "ca.crt").write_bytes(api.ca.cert_pem)
        api.extra_args = (f"--kubelet-client-certificate={client_cert}",
                          f"--kubelet-client-key={client_key}",
                          f"--kubelet-certificate-authority={pki / 'ca.crt'}")
        api.start()
        # The API server authorizes with RBAC alone (no Node authorizer), so the
        # kubelet's group gets the role the Node authorizer would stand in for.
        api.kubectl("create", "clusterrolebinding", "ferry-testbed-nodes",
                    "--clusterrole=system:node", "--group=system:nodes")
        self._start_controllers(pki)
        self._start_containerd()
        self.import_image(NODE_IMAGES / "pause.tar")
        self._start_kubelet(pki)
        self.wait_node_ready(timeout=180)
        return self

    def _kubeconfig(self, pki: Path, user: str, groups: tuple[str, ...] = ()) -> Path:
        assert self.api is not None
        stem = user.replace(":", "-")
        cert, key = self.api.ca.issue(user, organizations=groups, client=True).write(pki, stem)
        path = self.workdir / f"{stem}.kubeconfig"
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "node", "cluster": {
                "server": self.url, "certificate-authority": str(pki / "ca.crt")}}],
            "users": [{"name": user, "user": {"client-certificate": str(cert),
                                              "client-key": str(key)}}],
            "contexts": [{"name": "node", "context": {"cluster": "node", "user": user}}],
            "current-context": "node",
        }))
        return path

    def _secure_healthz(self, proc: ManagedProcess, port: int) -> None:
        # Self-signed serving certificates (--cert-dir): only liveness matters here.
        insecure = ssl._create_unverified_context()
        proc.wait_ready(lambda: urllib.request.urlopen(
            f"https://127.0.0.1:{port}/healthz", context=insecure, timeout=3).status == 200,
            timeout=120)

    def _start_controllers(self, pki: Path) -> None:
        assert self.api is not None
        api_pki = self.api.workdir / "pki"
        cm_port, sched_port = free_port(), free_port()
        self.controller_manager = ManagedProcess("kube-controller-manager", [
            binary("kube-controller-manager", NODE_HINT),
            f"--kubeconfig={self._kubeconfig(pki, 'system:kube-controller-manager')}",
            "--bind-address=127.0.0.1", f"--secure-port={cm_port}",
            f"--cert-dir={self.workdir / 'controller-manager'}",
            # Each controller as its own ServiceAccount, as in a real cluster.
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={api_pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            "--leader-elect=false", "--v=1",
        ], self.workdir / "kube-controller-manager.log").start()
        self.scheduler = ManagedProcess("kube-scheduler", [
            binary("kube-scheduler", NODE_HINT),
            f"--kubeconfig={self._kubeconfig(pki, 'system:kube-scheduler')}",
            "--bind-address=127.0.0.1", f"--secure-port={sched_port}",
            "--leader-elect=false", "--v=1",
        ], self.workdir / "kube-scheduler.log").start()
        self._secure_healthz(self.controller_manager, cm_port)
        self._secure_healthz(self.scheduler, sched_port)

    def _start_containerd(self) -> None:
        base = self.workdir / "containerd"
        cni_conf = base / "cni"
        cni_conf.mkdir(parents=True, exist_ok=True)
        # Only so containerd reports the network ready: pods use hostNetwork, and the
        # loopback plugin touches nothing but a sandbox's own lo.
        (cni_conf / "10-loopback.conflist").write_text(json.dumps({
            "cniVersion": "0.4.0", "name": "ferry-loopback",
            "plugins": [{"type": "loopback"}]}))
        self.snapshotter = "overlayfs" if overlay_works(base / "overlay-probe") else "native"
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        config = base / "config.toml"
        config.write_text(f"""version = 2
root = "{base / 'root'}"
state = "{base / 'state'}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "{self.socket}"
[debug]
  address = "{base / 'debug.sock'}"
[plugins."io.containerd.internal.v1.opt"]
  path = "{base / 'opt'}"
[{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_cdi = false
  # This sandbox lacks CAP_SYS_RESOURCE, so runc cannot lower oom_score_adj below
  # containerd's own (-998 for a sandbox): clamp instead of failing every pod.
  restrict_oom_score_adj = true
[{cri}.containerd]
  snapshotter = "{self.snapshotter}"
  default_runtime_name = "runc"
[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false
[{cri}.cni]
  bin_dir = "{CNI_BIN}"
  conf_dir = "{cni_conf}"
""")
        self.containerd = ManagedProcess("containerd", [
            _system_binary("containerd"), "--config", config, "--log-level", "warn",
        ], self.workdir / "containerd.log").start()
        self.containerd.wait_ready(lambda: self.ctr("version").returncode == 0, timeout=60)

    def ctr(self, *args: str, check: bool = False,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([_system_binary("ctr"), "--address", str(self.socket),
                               "-n", "k8s.io", *args], capture_output=True, text=True,
                              check=check, timeout=timeout)

    def import_image(self, tar: Path) -> None:
        """Load an image tar (docker-archive or OCI) into the node's containerd, unpacked
        for its snapshotter, where the kubelet finds it without a pull."""
        if not tar.is_file():
            raise MissingPart(f"{tar} is missing; {NODE_HINT}")
        self.ctr("images", "import", "--snapshotter", self.snapshotter, str(tar), check=True)

    def _cgroup_dirs(self, unified: bool = False) -> list[Path]:
        # The kubelet runs on the v1 hierarchies but also makes the root in the hybrid
        # layout's unified one, so that one is only cleaned up.
        return [d / self.cgroup_root.lstrip("/") for d in sorted(CGROUP_V1.iterdir())
                if d.is_dir() and (unified or d.name != "unified")
                and (d / "cgroup.procs").exists()]

    def _make_cgroup_root(self) -> None:
        for d in self._cgroup_dirs():
            d.mkdir(exist_ok=True)
            if d.parent.name == "cpuset":
                # A v1 cpuset starts empty and admits no task until given cpus and mems.
                for f in ("cpuset.cpus", "cpuset.mems"):
                    (d / f).write_text((d.parent / f).read_text())

    def _start_kubelet(self, pki: Path) -> None:
        self._make_cgroup_root()
        base = self.workdir / "kubelet"
        serving_cert, serving_key = self.api.ca.issue(  # type: ignore[union-attr]
            NODE_NAME, hosts=("127.0.0.1",)).write(pki, "kubelet-serving")
        port, healthz = free_port(), free_port()
        config = base / "config.yaml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(yaml.safe_dump({
            "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
            "address": "127.0.0.1", "port": port, "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1", "healthzPort": healthz,
            "tlsCertFile": str(serving_cert), "tlsPrivateKeyFile": str(serving_key),
            "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                               "x509": {"clientCAFile": str(pki / "ca.crt")}},
            "authorization": {"mode": "Webhook"},
            "containerRuntimeEndpoint": f"unix://{self.socket}",
            "cgroupDriver": "cgroupfs", "cgroupRoot": self.cgroup_root,
            # This machine: cgroup v1 (hybrid), no swap accounting guarantees.
            "failCgroupV1": False, "failSwapOn": False,
            # The disk is shared with everything else the suite runs: never evict or
            # garbage-collect the imported images (nothing could pull them back).
            "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
            "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%",
                             "imagefs.available": "1%"},
            "podLogsDir": str(base / "pod-logs"),
            "volumePluginDir": str(base / "volume-plugins"),
            "resolvConf": "/etc/resolv.conf",
            "nodeStatusUpdateFrequency": "2s", "syncFrequency": "5s",
        }))
        self.kubelet = ManagedProcess("kubelet", [
            binary("kubelet", NODE_HINT), f"--config={config}",
            f"--kubeconfig={self._kubeconfig(pki, f'system:node:{NODE_NAME}', ('system:nodes',))}",
            f"--root-dir={base / 'root'}", f"--cert-dir={base / 'pki'}",
            f"--hostname-override={NODE_NAME}", "--v=1",
        ], self.workdir / "kubelet.log").start()
        self.kubelet.wait_ready(lambda: urllib.request.urlopen(
            f"http://127.0.0.1:{healthz}/healthz", timeout=3).status == 200, timeout=120)

    def node(self) -> dict | None:
        assert self.api is not None
        return self.api.get("node", "", NODE_NAME)

    def wait_node_ready(self, timeout: float) -> dict:
        assert self.kubelet is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            node = self.node()
            conditions = {c["type"]: c for c in (node or {}).get("status", {})
                          .get("conditions", [])}
            if conditions.get("Ready", {}).get("status") == "True":
                return node  # type: ignore[return-value]
            if not self.kubelet.running:
                raise RuntimeError(f"kubelet exited; last log lines:\n{self.kubelet.tail()}")
            time.sleep(0.5)
        raise TimeoutError(f"node {NODE_NAME} not Ready after {timeout}s: "
                           f"{json.dumps(conditions.get('Ready'))}\n{self.kubelet.tail()}")

    def stop(self) -> None:
        """Stop the kubelet, every container, containerd and the control plane; unmount
        what they mounted and remove the cgroups and the work dir."""
        if self.kubelet is not None:
            self.kubelet.stop()
        if self.containerd is not None and self.containerd.running:
            self._kill_containers()
            self.containerd.stop()
        self._kill_shims()
        for proc in (self.scheduler, self.controller_manager):
            if proc is not None:
                proc.stop()
        if self.api is not None:
            self.api.stop()
        self._unmount()
        self._remove_cgroups()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _kill_containers(self) -> None:
        # Containers outlive containerd (their shims are daemons): kill them first.
        # A shim exits, removing its socket under /run/containerd/s, once its pod's
        # containers are deleted, not just their tasks.
        tasks = self.ctr("tasks", "ls", "-q").stdout.split()
        for task in tasks:
            self.ctr("tasks", "kill", "-s", "SIGKILL", task)
        for task in tasks:
            self.ctr("tasks", "delete", "-f", task, timeout=30)
        for container in self.ctr("containers", "ls", "-q").stdout.split():
            self.ctr("containers", "delete", container, timeout=30)

    def _kill_shims(self) -> None:
        # Any shim left (a task containerd no longer listed) is told apart by the
        # socket of this node's containerd on its command line.
        needle = str(self.socket).encode()
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                argv = (proc / "cmdline").read_bytes().split(b"\0")
                if b"containerd-shim" in argv[0] and needle in argv:
                    os.kill(int(proc.name), 9)

    def _unmount(self) -> None:
        prefix = str(self.workdir.resolve()) + "/"
        with open("/proc/self/mounts") as f:
            points = [line.split()[1] for line in f if line.split()[1].startswith(prefix)]
        for point in sorted(points, key=len, reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True)

    def _remove_cgroups(self) -> None:
        for root in self._cgroup_dirs(unified=True):
            if not root.exists():
                continue
            nested = sorted((p for p in root.rglob("*") if p.is_dir()),
                            key=lambda p: len(p.parts), reverse=True)
            for d in [*nested, root]:
                with contextlib.suppress(OSError):
                    d.rmdir()
