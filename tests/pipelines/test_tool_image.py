"""The tool's Dockerfile, tested without a Docker engine: its COPY sources, its pins, and the wheel it installs.

The wheel is built from a context holding only what the Dockerfile copies into its builder stage, then
installed into a fresh virtualenv that sees the dependencies but not this checkout, and its `gantry`
entrypoint must run there.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.version import Version
from pipeline_jobs import GITHUB, GITLAB, REPO, load

DOCKERFILE = REPO / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(instruction, arguments) per Dockerfile instruction, continuation lines joined."""
    out: list[tuple[str, str]] = []
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def args() -> dict[str, str]:
    return dict(a.split("=", 1) for i, a in instructions() if i == "ARG" and "=" in a)


def pyproject() -> dict[str, object]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def builder_copies() -> list[str]:
    """Sources of the COPY instructions that read the build context (not --from another stage)."""
    sources: list[str] = []
    for inst, rest in instructions():
        if inst == "COPY" and "--from=" not in rest:
            words = [w for w in rest.split() if not w.startswith("--")]
            sources.extend(words[:-1])
    return sources


def test_every_copied_path_exists_and_holds_what_the_wheel_needs() -> None:
    sources = builder_copies()
    assert sources, "the builder stage copies the sources"
    for src in sources:
        assert (REPO / src).exists(), f"COPY {src}: no such file in the build context"
    packages = pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]  # type: ignore[index]
    # Every package the wheel includes is copied, and the readme pyproject names (the build reads it).
    assert {p.rstrip("*") for p in packages} <= set(sources)
    assert pyproject()["project"]["readme"] in sources  # type: ignore[index]


def test_pins_agree_with_pyproject_and_the_pipelines() -> None:
    pins = args()
    image = pins["PYTHON_IMAGE"]
    # An exact patch version (or a digest), never a floating tag.
    match = re.fullmatch(r"python:(\d+\.\d+\.\d+)-slim-[a-z]+(@sha256:[0-9a-f]{64})?", image)
    assert match, image
    requires = SpecifierSet(pyproject()["project"]["requires-python"])  # type: ignore[index]
    assert Version(match[1]) in requires
    every_from = [rest.split()[0] for inst, rest in instructions() if inst == "FROM"]
    assert all(f == "${PYTHON_IMAGE}" for f in every_from), every_from
    # The CLI version the image installs satisfies the SDK pin, and the pipelines install the same one.
    pulumi = pins["PULUMI_VERSION"]
    sdk = next(d for d in pyproject()["project"]["dependencies"] if re.match(r"pulumi[<>=~ ]", d))  # type: ignore[index]
    assert Version(pulumi) in SpecifierSet(sdk.removeprefix("pulumi")), (pulumi, sdk)
    assert load(GITHUB)["env"]["PULUMI_VERSION"] == pulumi
    assert load(GITLAB)["variables"]["PULUMI_VERSION"] == pulumi
    assert load(GITLAB)["default"]["image"] == image
    install = next(rest for inst, rest in instructions() if inst == "RUN" and "get.pulumi.com" in rest)
    assert '--version "${PULUMI_VERSION}"' in install


def test_runtime_is_non_root_with_gantry_as_entrypoint() -> None:
    steps = instructions()
    last_from = max(i for i, (inst, _) in enumerate(steps) if inst == "FROM")
    runtime = steps[last_from:]
    users = [rest for inst, rest in runtime if inst == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert ("ENTRYPOINT", '["gantry"]') in runtime
    # The runtime stage installs the wheels offline; nothing is compiled or fetched there.
    install = next(rest for inst, rest in runtime if inst == "RUN" and "pip install" in rest)
    assert "--no-index" in install and "/wheels/gantry/" in install


def test_wheel_from_the_copied_sources_runs_gantry_version_in_a_fresh_venv(tmp_path: Path) -> None:
    context = tmp_path / "context"
    context.mkdir()
    for src in builder_copies():
        path = REPO / src
        if path.is_dir():
            shutil.copytree(path, context / src, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copyfile(path, context / src)
    wheels = tmp_path / "wheels"
    # The builder stage's command (without build isolation: setuptools comes from this venv, not the network).
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                            "--wheel-dir", str(wheels), "."], cwd=context, capture_output=True, text=True,
                           timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = wheels.glob("gantry-*.whl")
    version = pyproject()["project"]["version"]  # type: ignore[index]
    assert wheel.name.startswith(f"gantry-{version}-")

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # Dependencies from this environment's site-packages as plain path entries: their .pth files (this
    # checkout's editable install among them) are not processed, so `infra` can only come from the wheel.
    deps = [p for p in {sysconfig.get_paths()["purelib"], *sys.path} if p.endswith("site-packages")]
    (site / "deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps",
                                "--no-index", str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr[-2000:]

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    ran = subprocess.run([str(venv / "bin" / "gantry"), "--version"], cwd=outside, env=env,
                         capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert ran.stdout.strip() == f"gantry {version}"
    where = subprocess.run([str(py), "-c", "import infra, policies; print(infra.__file__); print(policies.__file__)"],
                           cwd=outside, env=env, capture_output=True, text=True, timeout=60)
    assert where.returncode == 0, where.stderr
    assert all(line.startswith(str(site)) for line in where.stdout.split()), where.stdout
    # The policy pack's data files travel in the wheel (package-data), not only the code.
    assert subprocess.run([str(venv / "bin" / "gantry"), "check", "--list-rules"], cwd=outside, env=env,
                          capture_output=True, text=True, timeout=120).returncode == 0
