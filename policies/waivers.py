"""Waivers: ``policies/waivers.yaml`` entries and ``gantry.io/waive`` tags/labels on resources.

Used by the offline engine and the CrossGuard adapter. A waiver needs a policy id, a URN or URN glob,
a reason and (in the file) an expiry date; a waived finding is still reported, an expired one is a
mandatory finding of its own, and a waiver with no reason is refused.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from components.errors import InputError
from policies.bridge.catalog import is_check_id
from policies.model import Resource
from policies.pack import BY_ID, WAIVER_EXPIRED, WAIVER_INVALID
from policies.props import get, mapping

WAIVE_KEY = "gantry.io/waive"
DEFAULT_PATH = Path(__file__).with_name("waivers.yaml")
# Where tags and labels live on the resource kinds we know; the first three are cloud, the last two k8s.
TAG_PATHS = ("tags", "labels", "resourceLabels", "metadata.labels", "metadata.annotations")
_TAG_ENTRY = re.compile(r"^\s*(?P<policy>[a-z0-9-]+|CKV2?_[A-Z0-9]+_\d+)\s*=\s*(?P<reason>.*?)"
                        r"(?:\s+until\s+(?P<date>\d{4}-\d{2}-\d{2}))?\s*$")
META_POLICIES = frozenset({WAIVER_EXPIRED, WAIVER_INVALID})


class WaiverError(InputError, ValueError):
    """The waiver file is malformed; each line names the entry, the field and the fix: fix the file (exit 2)."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__("\n".join(f"{source}: {p}" for p in self.problems))


@dataclass(frozen=True, slots=True)
class Waiver:
    policy: str
    urn: str
    """A URN or an fnmatch glob over URNs (``*`` also spans ``::``)."""
    reason: str
    expires: dt.date | None
    source: str

    def matches(self, urn: str) -> bool:
        return fnmatch.fnmatchcase(urn, self.urn)

    def covers(self, policy: str, urn: str) -> bool:
        return self.policy == policy and self.matches(urn)

    def expired(self, today: dt.date) -> bool:
        return self.expires is not None and self.expires < today


def known_policy(policy: object) -> bool:
    """Waivable: a rule of the pack or a Checkov check id (the bridge reports those under their own id)."""
    return (isinstance(policy, str) and policy in BY_ID) or is_check_id(policy)


def parse_waivers(doc: object, source: str) -> list[Waiver]:
    if doc is None:
        return []
    entries = doc.get("waivers") if isinstance(doc, Mapping) else None
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise WaiverError(source, ["waivers must be a list of {policy, urn, reason, expires}"])
    problems: list[str] = []
    out: list[Waiver] = []
    for i, entry in enumerate(entries):
        where = f"waivers[{i}]"
        if not isinstance(entry, Mapping):
            problems.append(f"{where} must be a mapping with policy, urn, reason and expires")
            continue
        unknown = sorted(set(entry) - {"policy", "urn", "reason", "expires"})
        if unknown:
            problems.append(f"{where}: unknown key(s) {', '.join(unknown)}; valid: policy, urn, reason, expires")
        policy, urn, reason, expires = (entry.get(k) for k in ("policy", "urn", "reason", "expires"))
        if not known_policy(policy):
            problems.append(f"{where}.policy must be a policy id of the pack or a Checkov check id (CKV_*), "
                            f"but {_shown(policy)} was given")
        if not isinstance(urn, str) or not urn.strip():
            problems.append(f"{where}.urn must be a URN or URN glob, but {_shown(urn)} was given")
        if not isinstance(reason, str) or not reason.strip():
            problems.append(f"{where}.reason must be a non-empty explanation, but {_shown(reason)} was given; "
                            "a waiver with no reason is refused")
        date = _date(expires)
        if date is None:
            problems.append(f"{where}.expires must be a date (YYYY-MM-DD), but {_shown(expires)} was given")
        if not problems or all(not p.startswith(where) for p in problems):
            out.append(Waiver(str(policy), str(urn), str(reason).strip(), date, f"{source}:{where}"))
    if problems:
        raise WaiverError(source, problems)
    return out


def _date(value: object) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return None
    return None


def load_waivers(path: Path | None) -> list[Waiver]:
    """Read a waiver file; a missing default file means no waivers, a missing explicit one is an error."""
    if path is None:
        return []
    from infra.documents import DocumentError, load_yaml

    source = str(path)
    try:
        doc = load_yaml(path, source)
    except DocumentError as exc:
        raise WaiverError(source, [exc.problem]) from None
    return parse_waivers(doc, source)


@dataclass(frozen=True, slots=True)
class TagProblem:
    """A ``gantry.io/waive`` value that could not be accepted."""

    urn: str
    message: str


def tag_waivers(r: Resource) -> tuple[list[Waiver], list[TagProblem]]:
    """Waivers written on the resource: ``gantry.io/waive: "<policy>=<reason>[ until YYYY-MM-DD]"``.

    Several waivers are separated by ``;``. They need no expiry (the resource's owner edits them in the
    same review), but may carry one.
    """
    waivers: list[Waiver] = []
    problems: list[TagProblem] = []
    for path in TAG_PATHS:
        raw = mapping(get(r.props, path)).get(WAIVE_KEY)
        if raw is None:
            continue
        for part in str(raw).split(";"):
            if not part.strip():
                continue
            m = _TAG_ENTRY.match(part)
            if m is None:
                problems.append(TagProblem(r.urn, f"{path}.{WAIVE_KEY} must read '<policy>=<reason>', but "
                                                  f"{_shown(part.strip())} was given"))
                continue
            policy, reason = m["policy"], m["reason"].strip()
            if not known_policy(policy):
                problems.append(TagProblem(r.urn, f"{path}.{WAIVE_KEY} names unknown policy {_shown(policy)}"))
            elif not reason:
                problems.append(TagProblem(r.urn, f"{path}.{WAIVE_KEY} waives {policy} with no reason; "
                                                  "a waiver with no reason is refused"))
            else:
                date = dt.date.fromisoformat(m["date"]) if m["date"] else None
                waivers.append(Waiver(policy, r.urn, reason, date, f"{path}.{WAIVE_KEY}"))
    return waivers, problems


def find(waivers: Sequence[Waiver], policy: str, urn: str, today: dt.date | None = None) -> Waiver | None:
    """A waiver covering this finding: a current one if any, else an expired one (the caller reports it)."""
    covering = [w for w in waivers if w.covers(policy, urn)]
    today = today or dt.date.today()
    current = [w for w in covering if not w.expired(today)]
    best = current or covering
    return best[0] if best else None


def _shown(value: object) -> str:
    """A value from the file as errors show it: its repr, cut to one short line."""
    from infra.documents import clip

    return clip(repr(value), 80)
