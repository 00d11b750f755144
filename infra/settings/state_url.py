"""Parse ``gantry:rollout.state``: where a stack's rollout journal, lease and checkpoints live.

Read by ``infra.settings.rollout`` (validation at load) and ``infra.rollout.state`` (opening the
backend). Pure: no AWS client is created here.

One string names everything, because the three parts are not independent: every journal write is
fenced by the lease (a DynamoDB transaction checks the lock item's fencing token next to the entry it
puts), so the journal and the lease must live in the same table, and a checkpoint is an attachment
of one journal entry, so it goes wherever that journal says. Hence:

- ``sqlite`` (the default): ``<project>/.gantry/journal.db`` on this machine, as before;
- ``dynamodb://<table>?region=<region>[&checkpoints=s3://<bucket>/<prefix>][&namespace=<name>]``:
  journal and lease in one DynamoDB table (partition key ``pk``, sort key ``sk``, both strings), the
  checkpoint bodies in S3 under ``<prefix>`` when ``checkpoints`` is given (else inline in the
  table, which caps a checkpoint at DynamoDB's 400 KB item size). ``namespace`` separates projects
  sharing a table; it defaults to the Pulumi project's name.

A bare ``s3://...`` is refused with a message naming the form above: S3 alone has no conditional
write this journal's compare-and-append and fencing could rely on across every SDK we support, so it
holds checkpoints only. The endpoint is not part of the URL: the AWS SDK's own ``AWS_ENDPOINT_URL``
(or ``AWS_ENDPOINT_URL_DYNAMODB`` / ``_S3``) points it elsewhere, which is how tests reach moto.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

FIELD = "rollout.state"
_TABLE = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PREFIX = re.compile(r"^[A-Za-z0-9!_.*'()/-]{0,512}$")
_NAMESPACE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
FORM = "sqlite or dynamodb://<table>?region=<region>[&checkpoints=s3://<bucket>/<prefix>][&namespace=<name>]"


@dataclass(frozen=True, slots=True)
class SqliteState:
    """The embedded journal on this machine's disk."""

    def __str__(self) -> str:
        return "sqlite"


@dataclass(frozen=True, slots=True)
class S3Location:
    """Where checkpoint bodies go: ``s3://<bucket>/<prefix>``."""

    bucket: str
    prefix: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


@dataclass(frozen=True, slots=True)
class DynamoState:
    """Journal and lease in one DynamoDB table; checkpoints in S3 when given."""

    table: str
    region: str
    checkpoints: S3Location | None = None
    namespace: str | None = None

    def __str__(self) -> str:
        text = f"dynamodb://{self.table}?region={self.region}"
        if self.checkpoints is not None:
            text += f"&checkpoints={self.checkpoints}"
        if self.namespace is not None:
            text += f"&namespace={self.namespace}"
        return text


StateUrl = SqliteState | DynamoState


def _shown(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")


def _bad(constraint: str, given: str) -> ValueError:
    return ValueError(f"{FIELD} must be {constraint}, but {_shown(given)} was given")


def parse_s3(text: str) -> S3Location:
    """``s3://bucket/prefix`` (prefix optional, no trailing slash kept)."""
    parts = urlsplit(text)
    if parts.scheme != "s3" or parts.query or parts.fragment or not _BUCKET.match(parts.netloc or ""):
        raise _bad("checkpoints=s3://<bucket>/<prefix> with a valid bucket name", text)
    prefix = parts.path.strip("/")
    if not _PREFIX.match(prefix) or "//" in prefix:
        raise _bad("an S3 prefix of letters, digits and !_.*'()/- (at most 512)", text)
    return S3Location(parts.netloc, prefix)


def parse_state_url(text: str) -> StateUrl:
    """Parse one ``rollout.state`` value; ``ValueError`` in the config template names the form."""
    if not isinstance(text, str):
        raise _bad(FORM, repr(text))
    value = text.strip()
    if value == "sqlite":
        return SqliteState()
    parts = urlsplit(value)
    if parts.scheme == "s3":
        raise _bad(FORM + " (S3 holds checkpoints only: name it with checkpoints= on the dynamodb URL)", value)
    if parts.scheme != "dynamodb" or parts.fragment or parts.path not in ("", "/"):
        raise _bad(FORM, value)
    if not _TABLE.match(parts.netloc or ""):
        raise _bad("dynamodb://<table> with a table name of 3-255 letters, digits, '_', '-' or '.'", value)
    try:
        pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise _bad(FORM, value) from None
    params: dict[str, str] = {}
    for key, val in pairs:
        if key not in ("region", "checkpoints", "namespace"):
            raise _bad(f"{FORM}; parameter {key!r} is not one of region, checkpoints, namespace", value)
        if key in params:
            raise _bad(f"{FORM} with parameter {key!r} given once", value)
        params[key] = val
    region = params.get("region", "")
    if not _REGION.match(region):
        raise _bad("a dynamodb URL with ?region=<aws region> such as us-east-1", value)
    namespace = params.get("namespace")
    if namespace is not None and not _NAMESPACE.match(namespace):
        raise _bad("a namespace of 1-128 letters, digits, '_', '-' or '.'", value)
    checkpoints = parse_s3(params["checkpoints"]) if "checkpoints" in params else None
    return DynamoState(parts.netloc, region, checkpoints, namespace)
