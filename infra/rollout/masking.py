"""Secret masking for everything the rollout engine prints or sends: notifications, hook details, stderr tails.

Called by ``notify``, ``hooks`` and ``automation_errors`` before any text leaves the process.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Mapping

from infra.rollout.seams import JSONValue

MASK = "***"

# Shapes that are secret whatever the caller registered: webhook tokens, bearer tokens and
# key=value pairs whose key says "secret". Known values are masked first, these are a safety net.
_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"(https://hooks\.slack\.com/services/)[A-Za-z0-9/_-]+"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(?i)((?:password|passphrase|secret|token|api[_-]?key)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"),
    re.compile(r"(AKIA)[A-Z0-9]{16}"),
    re.compile(r"(://[^/\s:@]+:)[^@\s/]+(@)"),
)

# Values shorter than this are not masked by value: masking "1" or "on" would shred ordinary text.
_MIN_SECRET_LEN = 4


class Masker:
    """Replaces registered secret values and secret-looking tokens with ``***``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another is masked whole.
        self._secrets = sorted({s for s in secrets if len(s) >= _MIN_SECRET_LEN}, key=len, reverse=True)

    def mask(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        for pattern in _PATTERNS:
            text = pattern.sub(lambda m: m.group(1) + MASK + (m.group(2) if m.re.groups >= 2 else ""), text)
        return text

    def mask_json(self, value: JSONValue) -> JSONValue:
        """Mask every string inside a JSON value, keys included (a key may itself hold a token)."""
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, Mapping):
            return {self.mask(str(k)): self.mask_json(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.mask_json(v) for v in value]
        return value


class MaskingFilter(logging.Filter):
    """Masks a log record's final message; on a handler, it covers every logger that propagates to it."""

    def __init__(self, masker: Masker) -> None:
        super().__init__()
        self.masker = masker

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.masker.mask(record.getMessage())
        record.args = None
        return True


def mask_logs(masker: Masker) -> None:
    """Mask every log line this process writes: each root handler gets the filter (a stderr one if none).

    Without a root handler Python writes warnings through its last-resort handler, which no filter reaches.
    """
    root = logging.getLogger()
    if not root.handlers:
        stderr = logging.StreamHandler(sys.stderr)
        stderr.setLevel(logging.WARNING)
        root.addHandler(stderr)
    for handler in root.handlers:
        for old in [f for f in handler.filters if isinstance(f, MaskingFilter)]:
            handler.removeFilter(old)
        handler.addFilter(MaskingFilter(masker))

