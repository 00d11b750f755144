"""The consoles every command prints through: data is never read as rich markup or emoji, and secrets are masked.

Used by ``infra.commands``, the rollout views and the policy text report. A stack value, an image tag, a hook's
output or an error message is printed exactly as written: ``[/red]`` cannot crash rich, ``[a-z]`` is not
swallowed as a style and ``:cloud:`` stays text. The consoles are built with markup, emoji and highlighting
off, so a string printed as is is always literal; styling is explicit, through ``styled``, which parses only
its template as markup and inserts each value as plain (masked) text.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO, Any

from rich.console import Console, RenderableType
from rich.text import Text

_secrets: list[str] = []


# Control characters (but tab and newline) are shown as \xNN: an ESC from a stack file must not recolour,
# retitle or clear the operator's terminal, and a CR must not overwrite what was printed before it.
_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0)) if chr(c) not in "\t\n"}


def visible(text: str) -> str:
    """``text`` with terminal control characters written out as ``\\xNN``."""
    return text.translate(_CONTROLS)


class SafeConsole(Console):
    """A rich console for which every string is literal text: no markup, no emoji codes, no control codes."""

    def render_str(self, text: str, **options: Any) -> Text:
        # Table cells, titles and printed strings all pass through here.
        options.update(markup=False, emoji=False, highlight=False)
        return super().render_str(visible(text), **options)


def make_console(*, stderr: bool = False, file: IO[str] | None = None, **options: Any) -> Console:
    """A console that never interprets markup, emoji codes or control characters in what it prints."""
    options.setdefault("soft_wrap", True)
    return SafeConsole(stderr=stderr, file=file, markup=False, emoji=False, highlight=False, **options)


WIDE = 10_000
"""Columns a table may take when stdout is not a terminal: a pipe has no width, so nothing is cut or folded."""


def fit(console: Console, renderable: RenderableType) -> None:
    """Print ``renderable``; when the console is not a terminal, as wide as its content needs, so a pipe gets
    whole values (no ``…`` truncation, no word cut in the middle), whatever ``COLUMNS`` says."""
    if console.is_terminal:
        console.print(renderable)
        return
    from rich.measure import Measurement

    width = Measurement.get(console, console.options.update(max_width=WIDE), renderable).maximum
    saved = console._width  # print(width=) is capped at the console's width: widen the console itself
    console.width = max(1, min(width, WIDE))
    try:
        console.print(renderable, crop=False)
    finally:
        console._width = saved


def register_secrets(values: Iterable[str]) -> None:
    """Values masked in everything ``styled`` and ``plain`` build for the rest of this process."""
    _secrets.extend(v for v in values if v not in _secrets)


def mask(text: str) -> str:
    """``text`` with every registered secret (and secret-looking token) replaced by ``***``."""
    from infra.rollout.masking import Masker

    return Masker(_secrets).mask(text)


def plain(value: object) -> Text:
    """``value`` as literal, masked text: never markup, never an emoji, never a control code."""
    return Text(visible(mask(str(value))))


def styled(template: str, *values: object) -> Text:
    """Trusted markup ``template`` with each ``{}`` filled by a value as literal, masked text.

    ``styled("[red]error:[/red] {}", message)``: only the template is markup; the values cannot be.
    """
    parts = template.split("{}")
    if len(parts) != len(values) + 1:
        raise ValueError(f"template has {len(parts) - 1} placeholder(s) for {len(values)} value(s)")
    # The template is parsed with a placeholder that markup cannot touch (no bracket, no backslash); each
    # placeholder is then swapped for its value as literal text in the style around it. Escaping the values
    # instead would depend on what follows them (a trailing backslash escapes the next tag).
    marks = [f"\x00{i}\x00" for i in range(len(values))]
    marked = Text.from_markup(parts[0] + "".join(m + p for m, p in zip(marks, parts[1:], strict=True)), emoji=False)
    cuts: list[int] = []
    for m in marks:
        start = marked.plain.index(m)
        cuts += [start, start + len(m)]
    out = Text(style=marked.style, end=marked.end)
    by_mark = dict(zip(marks, values, strict=True))
    for piece in marked.divide(cuts):
        if piece.plain in by_mark:
            value = plain(by_mark[piece.plain])
            for span in piece.spans:
                value.stylize(span.style, 0, len(value))
            value.stylize(piece.style, 0, len(value))
            out.append_text(value)
        else:
            out.append_text(piece)
    return out
