"""Managed-Prometheus authentication, exercised against local servers: SigV4 verified by recomputing the
signature, google-auth's service-account flow against a local token endpoint, azure-identity's managed
identity against a local identity endpoint. Nothing reaches a network."""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from metric_servers import App, serve

from infra.errors import InputError
from infra.rollout.errors import MetricsUnavailable
from infra.rollout.metrics.auth import AZURE_SCOPE, AuthKind, AzureBearer, GoogleBearer, SigV4, make_auth
from infra.rollout.metrics.prometheus import PrometheusProvider
from infra.rollout.seams import MetricQuery

VECTOR = json.dumps({"status": "success", "data": {"resultType": "vector",
                                                    "result": [{"metric": {}, "value": [0, "7"]}]}})


def _prometheus_app() -> App:
    return App(routes={"/workspaces/ws-1/api/v1/query": lambda _: (200, VECTOR),
                       "/api/v1/query": lambda _: (200, VECTOR)})


def test_sigv4_signature_verifies(monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.auth import SigV4Auth  # type: ignore[import-untyped]
    from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
    from botocore.credentials import Credentials  # type: ignore[import-untyped]

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session-token-1")
    for var in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(var, raising=False)
    with serve(_prometheus_app()) as app:
        provider = PrometheusProvider(url=f"{app.url}/workspaces/ws-1", auth=SigV4("us-west-2"))
        sample = provider.query(MetricQuery("x", 'sum(up{job="a b"})'))
        assert sample.value == 7.0
        method, path, body, headers = app.requests[-1]
    auth = headers["Authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/us-west-2/aps/aws4_request" in auth
    assert headers["X-Amz-Security-Token"] == "session-token-1"
    # Recompute the signature from what the server received, with the same secret.
    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token-1")
    request = AWSRequest(method=method, url=f"{app.url}{path}", data=body,
                         headers={"host": headers["Host"], "X-Amz-Date": headers["X-Amz-Date"],
                                  "X-Amz-Security-Token": headers["X-Amz-Security-Token"]})
    request.context["timestamp"] = headers["X-Amz-Date"]
    signer = SigV4Auth(creds, "aps", "us-west-2")
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    assert auth.endswith(f"Signature={expected}")
    # A different secret gives a different signature: the check above can fail.
    wrong = SigV4Auth(Credentials("AKIDEXAMPLE", "other", "session-token-1"), "aps", "us-west-2")
    assert wrong.signature(wrong.string_to_sign(request, wrong.canonical_request(request)), request) != expected


def test_sigv4_without_credentials_is_missing_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with serve(_prometheus_app()) as app:
        provider = PrometheusProvider(url=app.url, auth=SigV4("us-east-1"))
        with pytest.raises(MetricsUnavailable, match="no credentials"):
            provider.query(MetricQuery("x", "up"))
        assert app.requests == []


def _service_account(tmp_path: Path, token_uri: str) -> rsa.RSAPrivateKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    (tmp_path / "sa.json").write_text(json.dumps({
        "type": "service_account", "project_id": "gantry-test", "private_key_id": "k1", "private_key": pem,
        "client_email": "rollouts@gantry-test.iam.gserviceaccount.com", "client_id": "1",
        "token_uri": token_uri}))
    return key


def test_google_bearer_from_a_service_account(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import base64

    def token(handler: object) -> tuple[int, str]:
        return 200, json.dumps({"access_token": "ya29.local-token", "expires_in": 3600, "token_type": "Bearer"})

    app = _prometheus_app()
    app.routes["/token"] = token
    with serve(app) as running:
        key = _service_account(tmp_path, f"{running.url}/token")
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "sa.json"))
        provider = PrometheusProvider(url=running.url, auth=GoogleBearer())
        assert provider.query(MetricQuery("x", "up")).value == 7.0
        assert provider.query(MetricQuery("x", "up")).value == 7.0
    token_calls = [r for r in running.requests if r[1] == "/token"]
    queries = [r for r in running.requests if r[1].startswith("/api/v1/query")]
    assert len(token_calls) == 1, "the token is cached between queries"
    assert all(q[3]["Authorization"] == "Bearer ya29.local-token" for q in queries)
    # The JWT assertion was signed with the service account's key and asks for the monitoring scope.
    form = parse_qs(token_calls[0][2].decode())
    header_b64, claims_b64, sig_b64 = form["assertion"][0].split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    claims = json.loads(base64.urlsafe_b64decode(pad(claims_b64)))  # type: ignore[no-untyped-call]  # the library ships no type information
    assert claims["scope"] == "https://www.googleapis.com/auth/monitoring.read"
    key.public_key().verify(base64.urlsafe_b64decode(pad(sig_b64)), f"{header_b64}.{claims_b64}".encode(),  # type: ignore[no-untyped-call]  # the library ships no type information
                            padding.PKCS1v15(), hashes.SHA256())


def test_azure_bearer_from_managed_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, list[str]]] = []

    def identity(handler: object) -> tuple[int, str]:
        seen.append(parse_qs(urlparse(handler.path).query))  # type: ignore[attr-defined]
        return 200, json.dumps({"access_token": "eyJ.azure-token", "expires_on": str(int(time.time()) + 3600),
                                "resource": "https://prometheus.monitor.azure.com", "token_type": "Bearer"})

    app = _prometheus_app()
    app.routes["/msi/token"] = identity
    for var in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE",
                "MSI_ENDPOINT", "MSI_SECRET", "IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    with serve(app) as running:
        monkeypatch.setenv("IDENTITY_ENDPOINT", f"{running.url}/msi/token")
        monkeypatch.setenv("IDENTITY_HEADER", "local-header")
        from azure.identity import ManagedIdentityCredential

        provider = PrometheusProvider(url=running.url, auth=AzureBearer(credential=ManagedIdentityCredential()))
        assert provider.query(MetricQuery("x", "up")).value == 7.0
    queries = [r for r in running.requests if r[1].startswith("/api/v1/query")]
    assert queries[0][3]["Authorization"] == "Bearer eyJ.azure-token"
    assert seen and seen[0]["resource"] == [AZURE_SCOPE.removesuffix("/.default")]
    msi = [r for r in running.requests if r[1].startswith("/msi/token")]
    assert msi[0][3].get("X-IDENTITY-HEADER") == "local-header"


def test_make_auth() -> None:
    assert make_auth(AuthKind.NONE) is None
    assert isinstance(make_auth("sigv4", region="eu-west-1"), SigV4)
    assert isinstance(make_auth("google"), GoogleBearer)
    assert isinstance(make_auth("azure"), AzureBearer)
    with pytest.raises(InputError, match=r"rollout\.metrics\.region must be set for sigv4"):
        make_auth("sigv4")
