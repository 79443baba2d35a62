"""Where the test bed keeps what it builds and downloads."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("FERRY_BUILD_DIR", ROOT / "build"))
BIN = BUILD / "bin"
ENGINES = BUILD / "engines"
# Java runtimes the test bed installs itself (hack/fetch-java-runtimes.sh).
JAVA = BUILD / "java"
HACK = ROOT / "hack"


class MissingPart(RuntimeError):
    """A real part of the test bed is not installed. Never skipped: the suite fails."""


def binary(name: str, how: str) -> Path:
    path = BIN / name
    if not path.is_file() or not os.access(path, os.X_OK):
        raise MissingPart(f"{path} is missing; {how}")
    return path
