"""The one loader for every config document Gantry reads: stack files, Pulumi.yaml, waivers, policy config.

Called by ``infra.config``, ``infra.render``, ``infra.commands.rollout`` and ``policies``. Stack files arrive
from pull requests, so a document is hostile until loaded: it is refused, with one line naming the file
and the key path, when it is too large, not UTF-8, nested too deep, expands aliases past a node budget
(checked while composing, before anything is expanded), repeats a key (Pulumi's own parser refuses
that too), carries an integer wider than 64 bits or a tag other than the JSON-like core ones.

YAML timestamps load as the strings they are written as, as Pulumi's parser gives them to a program,
so a date where a number belongs is reported against its key instead of failing later in ``json``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, cast

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent, Event, MappingStartEvent, ScalarEvent, SequenceStartEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from infra.errors import InputError

MAX_BYTES = 1024 * 1024
"""Largest document accepted. Stack files are a few KiB; 1 MiB leaves room for large generated ones."""
MAX_DEPTH = 64
"""Deepest nesting of mappings and sequences. Gantry's own config nests 6 levels at most."""
MAX_NODES = 100_000
"""Most nodes a document may hold with every alias expanded (an alias bomb needs billions)."""
MAX_INT_BITS = 64
"""Widest integer: Pulumi's config values are 64-bit; wider ones are refused, not rounded."""
KEY_SHOWN = 60
"""Longest key or value shown in an error; longer ones are cut, so a 2 MB value never comes back whole."""

_CORE = "tag:yaml.org,2002:"
_ALLOWED_TAGS = frozenset(_CORE + t for t in ("str", "int", "float", "bool", "null", "seq", "map", "merge"))
_TIMESTAMP = _CORE + "timestamp"


class DocumentError(InputError):
    """A config document is unreadable or hostile; the message names the file and, where known, the key."""

    def __init__(self, source: str, problem: str) -> None:
        self.source = source
        self.problem = problem
        super().__init__(f"{source}: {problem}")


def clip(text: str, limit: int = KEY_SHOWN) -> str:
    """``text`` on one line, cut to ``limit`` characters with its full length said."""
    flat = " ".join(text.split()) if len(text) < 4 * limit else " ".join(text[: 4 * limit].split())
    if len(text) <= limit and flat == text:
        return text
    return flat[:limit] + f"... ({len(text)} characters)" if len(text) > limit else flat


def display(path: Path) -> str:
    """``path`` relative to the working directory when it is under it (as errors show it)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def read_text(path: Path, source: str | None = None) -> str:
    """The file's text: at most ``MAX_BYTES`` and valid UTF-8, else a ``DocumentError``."""
    source = source or display(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise DocumentError(source, "file not found") from None
    except OSError as exc:
        raise DocumentError(source, f"cannot be read: {exc.strerror}") from None
    if len(data) > MAX_BYTES:
        raise DocumentError(source, f"must be at most {MAX_BYTES // 1024} KiB, but the file is larger; "
                                    "split it or remove generated values")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DocumentError(source, f"must be UTF-8 text, but byte 0x{data[exc.start]:02x} on line {line} "
                                    "is not; save the file as UTF-8") from None


def load_yaml(path: Path, source: str | None = None) -> object:
    """Parse one YAML document with Gantry's limits; ``None`` for an empty file."""
    source = source or display(path)
    return parse_yaml(read_text(path, source), source)


def parse_yaml(text: str, source: str) -> object:
    """Parse YAML text with Gantry's limits (the caller has checked size and encoding)."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise DocumentError(source, f"must be at most {MAX_BYTES // 1024} KiB, but the text is larger")
    _check_brackets(text, source)
    loader: _LimitedLoader | None = None
    try:
        loader = _LimitedLoader(text, source)
        return loader.get_single_data()
    except DocumentError:
        raise
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise DocumentError(source, f"is not valid YAML: character #x{exc.character:04x} on line {line} "
                                    "is not allowed in YAML; remove it") from None
    except yaml.YAMLError as exc:
        raise DocumentError(source, f"is not valid YAML: {_yaml_problem(exc)}") from None
    except RecursionError:  # cannot happen below MAX_DEPTH; kept so no input can reach a traceback
        raise DocumentError(source, f"must nest at most {MAX_DEPTH} levels deep") from None
    finally:
        if loader is not None:
            loader.dispose()


def load_json(path: Path, source: str | None = None) -> object:
    """Parse a JSON file with the same limits as YAML (size, encoding, depth, duplicate keys, integers)."""
    source = source or display(path)
    return parse_json(read_text(path, source), source)


def parse_json(text: str, source: str) -> object:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise DocumentError(source, f"{clip(key)}: key is set twice; a key may appear once per object")
            out[key] = value
        return out

    def integer(digits: str) -> int:
        return _int_within(digits, lambda: _fail(source, _digits_problem(digits)), lambda: int(digits))

    try:
        doc: object = json.loads(text, object_pairs_hook=pairs, parse_int=integer)
    except DocumentError:
        raise
    except RecursionError:
        raise DocumentError(source, f"must nest at most {MAX_DEPTH} levels deep") from None
    except ValueError as exc:
        raise DocumentError(source, f"is not valid JSON: {clip(str(exc), 200)}") from None
    _check_depth(doc, source)
    return doc


# --------------------------------------------------------------------------- internals


def _fail(source: str, problem: str) -> NoReturn:
    raise DocumentError(source, problem)


def _digits_problem(text: str) -> str:
    return (f"integers must fit in {MAX_INT_BITS} bits, but one of {len(text)} characters was given "
            f"({clip(text, 24)}); quote it if it is text")


def _int_within(text: str, fail: Callable[[], NoReturn], convert: Callable[[], object]) -> int:
    # Checked on the text first: int() of a 5000-digit string is refused by Python itself (or slow).
    # 2 + 64 characters holds every 64-bit integer, even written in binary with its 0b prefix.
    body = text.strip().lstrip("+-").replace("_", "")
    if len(body) > 2 + MAX_INT_BITS:
        fail()
    value = convert()
    if not isinstance(value, int):
        fail()
    if value.bit_length() > MAX_INT_BITS:
        fail()
    return value


def _check_depth(doc: object, source: str) -> None:
    stack: list[tuple[object, int]] = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise DocumentError(source, f"must nest at most {MAX_DEPTH} levels deep")
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)


_BRACKETS = re.compile(r"[\[\]{}]")


def _check_brackets(text: str, source: str) -> None:
    """Refuse runs of unclosed ``[``/``{`` far past ``MAX_DEPTH`` before the scanner sees them.

    PyYAML's scanner does work per open flow level for every token, so 50,000 nested ``[`` cost
    seconds before composing (which enforces the exact limit) could stop them. Counting brackets
    ignores quoting, so the bound is loose (16x the limit) to never refuse a real file.
    """
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return
    depth = 0
    for match in _BRACKETS.finditer(text):
        if match.group() in "[{":
            depth += 1
            if depth > 16 * MAX_DEPTH:
                line = text.count("\n", 0, match.start()) + 1
                raise DocumentError(source, f"must nest at most {MAX_DEPTH} levels deep, but line {line} "
                                            f"opens more than {16 * MAX_DEPTH} brackets")
        else:
            depth = max(0, depth - 1)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or str(exc)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return clip(str(problem), 160) + where


def _key_text(node: Node | None) -> str:
    if isinstance(node, ScalarNode):
        return clip(str(node.value))
    return "(complex key)"


class _PyEvents(Reader, Scanner, Parser):
    """PyYAML's pure-Python event source, for a PyYAML built without libyaml."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)


try:
    # libyaml's scanner and parser produce the events about 30x faster than the Python ones (a 900 KB
    # scalar: 0.05 s instead of 1.5 s); composing, where every limit is enforced, stays in Python below.
    from yaml._yaml import CParser as _Events
except ImportError:  # pragma: no cover - PyYAML wheels ship libyaml
    _Events = _PyEvents  # type: ignore[misc, assignment]


class _Limits(Composer, SafeConstructor, Resolver):
    """PyYAML's safe loading with limits enforced while composing, so nothing hostile is ever constructed.

    Mixed in before an event source, so its Python ``compose_*`` methods (and the overrides here) shadow
    the C parser's own composer; the event source only supplies events.
    """

    if TYPE_CHECKING:  # supplied by the event source mixed in after this class

        def peek_event(self) -> Event: ...

    def _init_limits(self, source: str) -> None:
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self.source = source
        self._path: list[str] = []
        self._depth = 0
        self._nodes = 0
        self._weights: dict[int, int] = {}
        self._open: set[str] = set()
        self._keys: dict[int, set[tuple[str, str]]] = {}

    def _where(self) -> str:
        text = ""
        for part in self._path:
            text += part if part.startswith("[") or not text else "." + part
        return text

    def _refuse(self, problem: str, node: Node | None = None) -> NoReturn:
        where = clip(self._where(), 2 * KEY_SHOWN)
        line = f" (line {node.start_mark.line + 1})" if node is not None else ""
        raise DocumentError(self.source, f"{where}: {problem}{line}" if where else f"{problem}{line}")

    def _count(self, n: int) -> None:
        self._nodes += n
        if self._nodes > MAX_NODES:
            self._refuse(f"must hold at most {MAX_NODES} values with aliases expanded, but more were "
                         "given (an alias bomb?); write the values out or use fewer aliases")

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if isinstance(parent, MappingNode):
            self._path.append(_key_text(index) if isinstance(index, Node) else "(key)")
        elif isinstance(parent, SequenceNode):
            self._path.append(f"[{index}]")
        try:
            return self._compose(parent, index)
        finally:
            if parent is not None:
                self._path.pop()

    def _compose(self, parent: Node | None, index: Any) -> Node:
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            if event.anchor in self._open:
                self._refuse(f"alias *{clip(str(event.anchor))} refers to a value that contains it")
            node = cast(Node, super().compose_node(parent, index))
            # An alias repeats its anchor's whole value wherever it appears: count the expansion.
            self._count(self._weights.get(id(node), 1))
            return node
        if isinstance(event, SequenceStartEvent | MappingStartEvent):
            self._depth += 1
            if self._depth > MAX_DEPTH:
                self._refuse(f"must nest at most {MAX_DEPTH} levels deep")
        anchor = event.anchor if isinstance(event, ScalarEvent | SequenceStartEvent | MappingStartEvent) else None
        if anchor is not None:
            self._open.add(anchor)
        before = self._nodes
        self._count(1)
        try:
            node = cast(Node, super().compose_node(parent, index))
        finally:
            if anchor is not None:
                self._open.discard(anchor)
            if isinstance(event, SequenceStartEvent | MappingStartEvent):
                self._depth -= 1
        if anchor is not None:
            self._weights[id(node)] = self._nodes - before
        self._check_node(node, parent, index)
        return node

    def _check_node(self, node: Node, parent: Node | None, index: Any) -> None:
        if node.tag == _TIMESTAMP:
            node.tag = _CORE + "str"
        if node.tag not in _ALLOWED_TAGS:
            self._refuse(f"tag {clip(str(node.tag))} is not supported; use plain strings, numbers, booleans, "
                         "lists and mappings", node)
        if isinstance(node, ScalarNode) and node.tag == _CORE + "int":
            _int_within(str(node.value), lambda: self._refuse(_digits_problem(str(node.value)), node),
                        lambda: self.construct_yaml_int(node))
        if isinstance(parent, MappingNode) and index is None:
            # ``node`` is a key: refuse it when the same mapping already has it, as Pulumi's parser does.
            seen = self._keys.setdefault(id(parent), set())
            key = (str(node.tag), str(node.value)) if isinstance(node, ScalarNode) else ("", str(id(node)))
            if key in seen and node.tag != _CORE + "merge":
                self._path[-1] = _key_text(node)
                self._refuse("key is set twice; a key may appear once per mapping (Pulumi refuses it too)", node)
            seen.add(key)
        if isinstance(node, MappingNode):
            self._keys.pop(id(node), None)


class _LimitedLoader(_Limits, _Events):
    """The loader ``parse_yaml`` uses: libyaml's events (when PyYAML has it), Gantry's limits."""

    def __init__(self, text: str, source: str) -> None:
        _Events.__init__(self, text)
        self._init_limits(source)


class _PyLimitedLoader(_Limits, _PyEvents):
    """The same limits over PyYAML's pure-Python events (its build without libyaml)."""

    def __init__(self, text: str, source: str) -> None:
        _PyEvents.__init__(self, text)
        self._init_limits(source)
