"""The container image's install step, without a Docker engine: the Dockerfile installs
requirements.lock (versions and hashes) into a fresh virtualenv, then Ferry's wheel
without resolving again, then `pip check`; this does the same and runs the entrypoint.
`make image` builds the image itself where Docker is."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_installs_into_a_fresh_venv_and_runs(tmp_path: Path) -> None:
    # The image build sees only the package index: no local wheel folders.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("VIRTUAL_ENV", "PYTHON", "PIP_FIND_LINKS"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    wheels = tmp_path / "wheels"
    # Stage 1 of the Dockerfile: the wheel, built from pyproject.toml ...
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir",
                    str(wheels), str(ROOT)], check=True, capture_output=True, env=env,
                   timeout=300)
    (wheel,) = wheels.glob("ferry_operator-*.whl")
    # ... the lock's pins with their hashes, none built from source, then the wheel
    # alone, and pip's own check that the lock satisfies what the wheel declares.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env)
    pip = str(venv / "bin" / "pip")
    for args in (["--require-hashes", "--only-binary=:all:", "--no-deps", "-r",
                  str(ROOT / "requirements.lock")], ["--no-deps", str(wheel)]):
        install = subprocess.run([pip, "install", "--no-compile", *args],
                                 capture_output=True, text=True, env=env, timeout=600)
        assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    check = subprocess.run([pip, "check"], capture_output=True, text=True, env=env)
    assert check.returncode == 0, check.stdout
    ferry = venv / "bin" / "ferry"
    # The image's ENTRYPOINT ["ferry"] with CMD ["run"], asked for help.
    out = subprocess.run([str(ferry), "--help"], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=60)
    assert out.returncode == 0 and "run" in out.stdout and "crds" in out.stdout, out
    out = subprocess.run([str(ferry), "run", "--help"], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=60)
    assert out.returncode == 0 and "--liveness" in out.stdout and "--namespace" in out.stdout
    # It is the installed package, not this checkout, that answered.
    where = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import ferry; print(ferry.__file__)"],
                           capture_output=True, text=True, env=env, cwd=tmp_path, check=True)
    assert where.stdout.startswith(str(venv))
    # The chart's Deployment arguments parse (`run` would start the operator: --help stops).
    out = subprocess.run([str(ferry), "run", "--log-format=json",
                          "--liveness=http://0.0.0.0:8080/healthz", "--namespace=a",
                          "--peering=p", "--help"], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    # No test or build tooling came along.
    listing = subprocess.run([str(venv / "bin" / "pip"), "list", "--format=freeze"],
                             capture_output=True, text=True, env=env, check=True).stdout
    names = {line.split("==")[0].lower() for line in listing.splitlines()}
    assert "ferry-operator" in names
    assert not names & {"pytest", "moto", "ruff", "lupa"}
