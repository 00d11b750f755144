# syntax=docker/dockerfile:1
# The gantry tool image for pipelines: gantry, its Python dependencies and the Pulumi CLI, run as non-root.
#   docker build -t gantry .
#   docker run --rm -v "$PWD:/work" -e PULUMI_ACCESS_TOKEN gantry rollout start --stack staging --service web
# The project (Pulumi.yaml, stacks/, .gantry/) is the mounted working directory, not part of the image.
# Versions: Python matches pyproject's requires-python; PULUMI_VERSION satisfies pyproject's pulumi pin
# (tests/pipelines/test_image.py checks both, and that every COPY source exists).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
ARG PULUMI_VERSION=3.272.0

# 1. Wheels: gantry's own, built from the sources below, and one for every dependency.
FROM ${PYTHON_IMAGE} AS builder
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml README.md ./
COPY components ./components
COPY infra ./infra
COPY policies ./policies
RUN python -m pip wheel --no-deps --wheel-dir /wheels/gantry . \
 && python -m pip wheel --wheel-dir /wheels/deps /wheels/gantry/*.whl

# 2. The Pulumi CLI, installed the way Pulumi's own images do it: its install script, pinned version.
FROM ${PYTHON_IMAGE} AS pulumi
ARG PULUMI_VERSION
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && curl -fsSL https://get.pulumi.com | sh -s -- --version "${PULUMI_VERSION}" \
 && /root/.pulumi/bin/pulumi version

# 3. Runtime: the wheels installed offline into a venv, the CLI's binaries, a non-root user.
FROM ${PYTHON_IMAGE} AS runtime
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:/opt/pulumi/bin:$PATH \
    PULUMI_SKIP_UPDATE_CHECK=true \
    PYTHONDONTWRITEBYTECODE=1
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-index --find-links /wheels/deps /wheels/gantry/*.whl \
 && /opt/venv/bin/gantry --version
COPY --from=pulumi /root/.pulumi/bin /opt/pulumi/bin
RUN groupadd --gid 10001 gantry \
 && useradd --uid 10001 --gid gantry --create-home --shell /usr/sbin/nologin gantry
USER 10001:10001
WORKDIR /work
ENTRYPOINT ["gantry"]
CMD ["--help"]
