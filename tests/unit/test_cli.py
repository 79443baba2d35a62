"""The `ferry` command as a user runs it (subprocesses of the installed script): one
line on stderr and exit 1 for a missing or bad kubeconfig and an API server nobody
answers on, CRDs on stdout, shell completion, and `snapshot ls --details` on the real
repositories in ../shared/fixtures/es-snapshots."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ferry.repository.reader import decode_metadata_blob

FERRY = Path(sys.executable).parent / "ferry"
FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "es-snapshots"
# Every command that talks to the API server.
KUBE_COMMANDS = [["status"], ["status", "backfill/x"], ["status", "-o", "json"],
                 ["status", "-A", "-o", "yaml"], ["run"], ["worker", "--backfill", "default/x"]]


def ferry(*args: str, kubeconfig: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"}
    if kubeconfig is not None:
        env["KUBECONFIG"] = kubeconfig
    return subprocess.run([str(FERRY), *args], capture_output=True, text=True, env=env,
                          timeout=120)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed when the block ends: nobody listens


def kubeconfig(path: Path, server: str) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "dead",
        "clusters": [{"name": "dead", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "not-a-secret"}}],
        "contexts": [{"name": "dead", "context": {"cluster": "dead", "user": "u",
                                                  "namespace": "team-a"}}]}))
    return path


def one_error_line(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ferry: "), out.stderr
    assert out.stdout == ""
    return lines[0]


@pytest.mark.parametrize("command", KUBE_COMMANDS, ids=" ".join)
def test_dead_api_server_is_one_line(tmp_path: Path, command: list[str]) -> None:
    port = closed_port()
    config = kubeconfig(tmp_path / "config", f"https://127.0.0.1:{port}")
    line = one_error_line(ferry(*command, kubeconfig=str(config)))
    assert f"cannot reach the API server at https://127.0.0.1:{port}" in line
    assert "Connection refused" in line


@pytest.mark.parametrize("command", KUBE_COMMANDS, ids=" ".join)
def test_missing_kubeconfig_is_one_line(tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "no-such-config"
    line = one_error_line(ferry(*command, kubeconfig=str(missing)))
    assert f"no kubeconfig at {missing}" in line


def test_bad_kubeconfig_and_context_are_one_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_text("just some text\n")
    assert "is not a valid kubeconfig" in one_error_line(ferry("status", kubeconfig=str(junk)))
    config = kubeconfig(tmp_path / "config", f"https://127.0.0.1:{closed_port()}")
    line = one_error_line(ferry("status", "--kubeconfig", str(config), "--context", "other"))
    assert "other" in line and str(config) in line
    line = one_error_line(ferry("status", "nosuchkind/x", kubeconfig=str(config)))
    assert "'nosuchkind/x': expected KIND/NAME" in line


def test_crds_to_stdout() -> None:
    out = ferry("crds", "--out", "-")
    assert out.returncode == 0, out.stderr
    docs = list(yaml.safe_load_all(out.stdout))
    assert [d["spec"]["names"]["kind"] for d in docs] == ["Cluster", "Snapshot", "Backfill"]
    assert all(d["kind"] == "CustomResourceDefinition" for d in docs)
    assert not Path("-").exists()


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_shell_completion_knows_the_commands(shell: str) -> None:
    out = ferry("completion", shell)
    assert out.returncode == 0, out.stderr
    for word in ("status", "crds", "run", "worker", "snapshot", "completion", "--kubeconfig",
                 "--all-namespaces", "--output"):
        assert word in out.stdout, word
    if shell == "bash":
        syntax = subprocess.run(["bash", "-n"], input=out.stdout, text=True,
                                capture_output=True)
        assert syntax.returncode == 0, syntax.stderr
        assert "complete " in out.stdout
    else:
        assert out.stdout.startswith("#compdef ferry")


# Live documents per index, from the fixtures' README (their known contents).
KNOWN_DOCS = {"ES_5_6_Updates_Deletes": {"test_updates_deletes": 3},
              "ES_6_8_Updates_Deletes_Native": {"test_updates_deletes": 3},
              "ES_7_10_Updates_Deletes_w_Soft": {"test_updates_deletes": 3},
              "ES_7_10_Updates_Deletes_wo_Soft": {"test_updates_deletes": 3},
              "ES_7_10_BWC_Check": {"bwc_index_1": 1, "fwc_index_1": 1,
                                    "empty_mappings_no_docs": 0, "no_mappings_no_docs": 0}}


def _shard_bytes(repo: Path, index: str) -> int:
    """The bytes of an index's shard files as its shard metadata lists them."""
    import json

    data = json.loads((repo / f"index-{max(int(p.name[6:]) for p in repo.glob('index-*'))}")
                      .read_text())
    folder = repo / "indices" / data["indices"][index]["id"]
    return sum(f["length"] for blob in folder.glob("*/snap-*.dat")
               for f in decode_metadata_blob(blob.read_bytes())["files"])


@pytest.mark.parametrize("name", sorted(KNOWN_DOCS))
def test_snapshot_ls_details_shows_shards_docs_and_sizes(name: str) -> None:
    from ferry.statusview.fmt import size

    out = ferry("snapshot", "ls", "--details", str(FIXTURES / name))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["NAME", "UUID", "STATE", "VERSION", "START", "SHARDS",
                                "FAILED"]
    assert "SUCCESS" in lines[1]
    for index, docs in KNOWN_DOCS[name].items():
        line = next(line for line in lines if line.strip().startswith(index + " "))
        assert line.split() == [index, "1", str(docs), size(_shard_bytes(FIXTURES / name,
                                                                          index))]
    assert lines[2].split() == ["INDEX", "SHARDS", "DOCS", "SIZE"]


def test_snapshot_ls_without_details_stays_short() -> None:
    out = ferry("snapshot", "ls", str(FIXTURES / "ES_7_10_Single"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].split() == ["NAME", "UUID", "STATE", "VERSION",
                                                  "INDICES"]
    assert "shards" not in out.stdout
