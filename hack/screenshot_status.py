"""Records `ferry status` of a real namespace as an SVG for the docs.

    cd hack && ../.venv/bin/python screenshot_status.py            # the demo's stack
    cd hack && ../.venv/bin/python screenshot_status.py --kubeconfig K -n NS --out F

It reads the Clusters, Snapshots and Backfills of one namespace from a running API
server — by default the one `make demo` leaves running (build/demo/kubeconfig,
namespace default) — renders them with ``ferry.statusview.render`` exactly as
`ferry status` does, and saves what rich recorded (``Console(record=True)``,
``save_svg``) to docs/img/ferry-status.svg. It refuses an empty namespace: the picture
shows what the operator wrote, never made-up objects. Record it after `make demo` has
finished (every resource Completed), and again whenever the view changes.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from pathlib import Path

from rich.console import Console

from testbed.paths import BUILD, ROOT

DEFAULT_KUBECONFIG = BUILD / "demo" / "kubeconfig"
DEFAULT_OUT = ROOT / "docs" / "img" / "ferry-status.svg"


def record(kubeconfig: Path, namespace: str, out: Path, width: int) -> int:
    """Render the namespace's resources at ``width`` columns into ``out``; the count of
    resources shown."""
    os.environ["KUBECONFIG"] = str(kubeconfig)
    from ferry import statusview
    from ferry.clients import kube

    kube.reset()  # a client built before KUBECONFIG was set would ask another server
    data = statusview.gather(namespace)
    shown = sum(len(objs) for objs in data.values())
    if not shown:
        raise SystemExit(f"no Ferry resources in namespace {namespace!r} of {kubeconfig}: "
                         "run `make demo` first (the picture must show real objects)")
    console = Console(record=True, width=width, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor")
    console.print(statusview.render(data))
    out.parent.mkdir(parents=True, exist_ok=True)
    console.save_svg(str(out), title="ferry status")
    return shown


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kubeconfig", type=Path, default=DEFAULT_KUBECONFIG)
    parser.add_argument("--namespace", "-n", default="default")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    # 100 columns: wider than the 80 the view is designed for, narrow enough to read
    # on a docs page without scrolling.
    parser.add_argument("--width", type=int, default=100)
    args = parser.parse_args()
    if not args.kubeconfig.is_file():
        print(f"{args.kubeconfig} is missing: run `make demo` first, or pass --kubeconfig",
              file=sys.stderr)
        return 1
    shown = record(args.kubeconfig, args.namespace, args.out, args.width)
    print(f"wrote {args.out} ({shown} resources of namespace {args.namespace})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
