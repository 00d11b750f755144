"""Rollout hooks the stacks' ``rollout.hooks`` run as argv (never a shell): a database migration and a smoke test.

Gantry runs each with a minimal environment (``PATH``, ``HOME``, ``GANTRY_*`` and what the hook's ``env:``
lists) from the project directory, so they are invoked as ``python -m pipelines.hooks ...``:

- ``migrate --namespace NS -- CMD...`` (phase ``pre-rollout``): runs ``CMD`` once in a pod of the new image
  (``GANTRY_IMAGE``) with ``kubectl run --rm --attach``, so the schema is migrated before any traffic moves;
  its exit code is the migration's. ``kubectl`` comes from PATH and the cluster from ``KUBECONFIG``.
- ``smoke`` (phase ``step``): ``SMOKE_URL`` must answer ``--requests`` GETs with 2xx before each analysis.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections.abc import Sequence

import httpx

USAGE = 2


def pod_name(service: str, rollout: str) -> str:
    """A DNS-1123 pod name for the migration of ``rollout`` (at most 63 characters)."""
    raw = f"{service}-migrate-{rollout}".lower()
    name = re.sub(r"[^a-z0-9-]+", "-", raw).strip("-")
    return name[:63].rstrip("-")


def migrate_argv(*, kubectl: str, namespace: str, service: str, rollout: str, image: str,
                 command: Sequence[str], timeout: str) -> list[str]:
    return [kubectl, "--namespace", namespace, "run", pod_name(service, rollout), f"--image={image}",
            "--restart=Never", "--rm", "--attach", "--quiet", f"--pod-running-timeout={timeout}",
            "--labels=app.kubernetes.io/component=migration", "--command", "--", *command]


def migrate(args: argparse.Namespace) -> int:
    image = os.environ.get("GANTRY_IMAGE", "")
    if not image:
        print("error: GANTRY_IMAGE must be set (Gantry sets it for a hook), but it is empty", file=sys.stderr)
        return USAGE
    command = [c for c in args.command if c != "--"]
    if not command:
        print("error: the migration command must follow --, but none was given", file=sys.stderr)
        return USAGE
    argv = migrate_argv(kubectl=args.kubectl, namespace=args.namespace,
                        service=os.environ.get("GANTRY_SERVICE", "service"),
                        rollout=os.environ.get("GANTRY_ROLLOUT_ID", "manual"), image=image, command=command,
                        timeout=args.pod_timeout)
    print("migrate: " + " ".join(argv), flush=True)
    try:
        return subprocess.run(argv, check=False).returncode
    except OSError as exc:
        print(f"error: cannot run {args.kubectl}: {exc.strerror}", file=sys.stderr)
        return USAGE


def smoke(args: argparse.Namespace) -> int:
    url = os.environ.get("SMOKE_URL", "")
    if not url.startswith(("http://", "https://")):
        print(f"error: SMOKE_URL must be an http(s) URL, but {url!r} was given; list it in the hook's env",
              file=sys.stderr)
        return USAGE
    failed = 0
    with httpx.Client(timeout=args.timeout, follow_redirects=False) as client:
        for _ in range(args.requests):
            try:
                ok = 200 <= client.get(url).status_code < 300
            except httpx.HTTPError:
                ok = False
            failed += not ok
    print(f"smoke {url}: {args.requests - failed}/{args.requests} ok", flush=True)
    return 0 if failed == 0 else 1


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipelines.hooks", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="hook", required=True)
    m = sub.add_parser("migrate", help="run the migration in a pod of the new image")
    m.add_argument("--namespace", required=True)
    m.add_argument("--kubectl", default="kubectl")
    m.add_argument("--pod-timeout", default="5m")
    m.add_argument("command", nargs=argparse.REMAINDER)
    s = sub.add_parser("smoke", help="GET SMOKE_URL; every answer must be 2xx")
    s.add_argument("--requests", type=int, default=20, choices=range(1, 1001), metavar="1..1000")
    s.add_argument("--timeout", type=float, default=5.0)
    args = p.parse_args(argv)
    return migrate(args) if args.hook == "migrate" else smoke(args)


if __name__ == "__main__":
    sys.exit(main())
