"""A real moto server on 127.0.0.1 for the shared-state tests and bench: start, create table and bucket, stop.

The server is moto's server application (``moto_serial.py``) on a free port, started as a subprocess and
stopped by its own pid (never by name). AWS credentials are dummy values, set only in the environment this
module hands out.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REGION = "us-east-1"
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                     "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Moto:
    """A running moto server: its endpoint and the environment a client (or a gantry subprocess) needs."""

    endpoint: str
    pid: int

    @property
    def env(self) -> dict[str, str]:
        return {**DUMMY_CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint}

    def client(self, service: str) -> Any:
        import boto3  # type: ignore[import-untyped]

        return boto3.client(service, region_name=REGION, endpoint_url=self.endpoint,
                            aws_access_key_id="testing", aws_secret_access_key="testing",
                            aws_session_token="testing")

    def create_table(self, name: str | None = None) -> str:
        """A state table as the RolloutState component makes it (pk/sk strings, on demand)."""
        table = name or f"gantry-{uuid.uuid4().hex[:10]}"
        ddb = self.client("dynamodb")
        ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                               {"AttributeName": "sk", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                    {"AttributeName": "sk", "KeyType": "RANGE"}])
        return table

    def create_bucket(self, name: str | None = None) -> str:
        bucket = name or f"gantry-{uuid.uuid4().hex[:10]}"
        self.client("s3").create_bucket(Bucket=bucket)
        return bucket

    def state_url(self, *, checkpoints: bool = True, namespace: str | None = None) -> str:
        url = f"dynamodb://{self.create_table()}?region={REGION}"
        if checkpoints:
            url += f"&checkpoints=s3://{self.create_bucket()}/rollouts"
        if namespace:
            url += f"&namespace={namespace}"
        return url


@contextmanager
def moto_server(log: Path | None = None) -> Iterator[Moto]:
    """Start moto's server on a free 127.0.0.1 port; stop that one process (and only it) afterwards."""
    port = free_port()
    out = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115  # closed in finally
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | DUMMY_CREDENTIALS
    # moto's own app, served one request at a time (see moto_serial.py: why, and what it found).
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("moto_serial.py")), str(port)],
                            stdout=out, stderr=out, env=env)
    try:
        deadline = time.monotonic() + 60.0
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"moto_server exited with {proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not listen within 60 s") from None
                time.sleep(0.1)
        yield Moto(f"http://127.0.0.1:{port}", proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log is not None and not isinstance(out, int):
            out.close()


@contextmanager
def aws_env(moto: Moto) -> Iterator[None]:
    """This process's AWS environment pointed at moto with dummy credentials, restored afterwards."""
    saved: Mapping[str, str | None] = {k: os.environ.get(k) for k in moto.env}
    os.environ.update(moto.env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
