"""Authentication for the clouds' managed Prometheus query endpoints, as httpx ``Auth`` flows.

Built by the rollout factory from ``rollout.metrics.auth`` (or the auth a cluster stack exports) and
handed to ``PrometheusProvider``. Each uses the cloud's standard library and credential chain, so
whatever identity the pipeline runner already has (environment, profile, workload identity, managed
identity) is used and no secret passes through Gantry's config:

* ``sigv4``: Amazon Managed Service for Prometheus; botocore signs each request for service ``aps``.
* ``google``: Google Cloud Managed Service for Prometheus; google-auth's application default
  credentials, as a bearer token with the monitoring read scope.
* ``azure``: Azure Monitor managed Prometheus; azure-identity's ``DefaultAzureCredential``, as a
  bearer token for the ``https://prometheus.monitor.azure.com`` audience.

Tokens are cached by the libraries and refreshed when they near expiry. A credential chain that finds
nothing raises ``MetricsUnavailable``, which the analysis treats as missing data (fail safe).
"""

from __future__ import annotations

from collections.abc import Generator
from enum import StrEnum
from typing import Any

import httpx

from infra.errors import InputError
from infra.rollout.errors import MetricsUnavailable

GOOGLE_SCOPE = "https://www.googleapis.com/auth/monitoring.read"
AZURE_SCOPE = "https://prometheus.monitor.azure.com/.default"


class AuthKind(StrEnum):
    """How requests to the metrics endpoint authenticate."""

    NONE = "none"
    SIGV4 = "sigv4"
    GOOGLE = "google"
    AZURE = "azure"


class SigV4(httpx.Auth):
    """AWS Signature Version 4 over the whole request (method, path, query, headers and body)."""

    requires_request_body = True

    def __init__(self, region: str, service: str = "aps", session: Any | None = None) -> None:
        import botocore.session  # type: ignore[import-untyped]

        self.region = region
        self.service = service
        self._session = session or botocore.session.get_session()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        from botocore.auth import SigV4Auth  # type: ignore[import-untyped]
        from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]

        credentials = self._session.get_credentials()
        if credentials is None:
            raise MetricsUnavailable("sigv4: the AWS credential chain found no credentials "
                                     "(environment, profile, web identity or instance role)")
        aws = AWSRequest(method=request.method, url=str(request.url), data=request.content,
                         headers={"host": request.url.netloc.decode()})
        SigV4Auth(credentials.get_frozen_credentials(), self.service, self.region).add_auth(aws)
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
            if name in aws.headers:
                request.headers[name] = aws.headers[name]
        yield request


class _Bearer(httpx.Auth):
    def token(self) -> str:  # pragma: no cover - each subclass answers
        raise NotImplementedError

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        yield request


class GoogleBearer(_Bearer):
    """google-auth application default credentials (service account, workload identity, gcloud)."""

    def __init__(self, scopes: tuple[str, ...] = (GOOGLE_SCOPE,)) -> None:
        self.scopes = scopes
        self._credentials: Any = None

    def token(self) -> str:
        import google.auth
        import google.auth.exceptions
        import google.auth.transport.requests

        try:
            if self._credentials is None:
                self._credentials, _ = google.auth.default(scopes=list(self.scopes))
            if not self._credentials.valid:
                self._credentials.refresh(google.auth.transport.requests.Request())
        except google.auth.exceptions.GoogleAuthError as exc:
            raise MetricsUnavailable(f"google: application default credentials failed: {exc}") from exc
        return str(self._credentials.token)


class AzureBearer(_Bearer):
    """azure-identity ``DefaultAzureCredential`` (environment, workload identity, managed identity, CLI)."""

    def __init__(self, scope: str = AZURE_SCOPE, credential: Any | None = None) -> None:
        self.scope = scope
        self._credential = credential

    def token(self) -> str:
        from azure.core.exceptions import ClientAuthenticationError
        from azure.identity import DefaultAzureCredential

        try:
            if self._credential is None:
                self._credential = DefaultAzureCredential()
            return str(self._credential.get_token(self.scope).token)
        except ClientAuthenticationError as exc:
            raise MetricsUnavailable(f"azure: DefaultAzureCredential found no usable identity: "
                                     f"{str(exc).splitlines()[0]}") from exc


def make_auth(kind: AuthKind | str, *, region: str | None = None) -> httpx.Auth | None:
    """The auth flow for ``kind``; sigv4 needs the endpoint's region."""
    kind = AuthKind(kind)
    if kind is AuthKind.NONE:
        return None
    if kind is AuthKind.SIGV4:
        if not region:
            raise InputError("rollout.metrics.region must be set for sigv4 auth (the workspace's region), "
                             "but none was given")
        return SigV4(region)
    if kind is AuthKind.GOOGLE:
        return GoogleBearer()
    return AzureBearer()
