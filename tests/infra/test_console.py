"""infra.console: whatever text a value holds, it prints exactly as written (no markup, no emoji), masked."""

from __future__ import annotations

import io

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from infra.console import make_console, mask, plain, register_secrets, styled, visible

TRICKY = st.one_of(st.text(), st.text(alphabet="[]/\\:{}abc@#=", max_size=30),
                   st.sampled_from(["[/red]", "a\\", "a\\\\", ":cloud:", "[bold]x[/bold]", "\\[x]", "[/]"]))


@settings(deadline=None)
@given(value=TRICKY, other=TRICKY)
def test_styled_values_are_literal_whatever_they_hold(value: str, other: str) -> None:
    text = styled("[red]error:[/red] {} [dim]and[/dim] [bold]{}[/bold]", value, other)
    # Literal, apart from masking (a value shaped like user:password@ is masked whoever registered it).
    # Control characters are written out (\\xNN), so a value cannot drive the terminal.
    assert text.plain == f"error: {visible(mask(value))} and {visible(mask(other))}"


@settings(deadline=None)
@given(value=TRICKY)
def test_a_console_prints_any_string_literally(value: str) -> None:
    assume("\t" not in value)  # rich expands tabs to spaces, which is fine
    buffer = io.StringIO()
    console = make_console(file=buffer, width=10_000, soft_wrap=True)
    console.print(value, end="")
    console.print(plain(value), end="")
    assert buffer.getvalue() == visible(mask(value)) * 2


def test_terminal_control_sequences_in_values_are_written_out() -> None:
    buffer = io.StringIO()
    console = make_console(file=buffer, force_terminal=True)
    console.print("a\x1b[2J\x1b]0;pwned\x07\rb")
    console.print(styled("[red]{}[/red]", "\x1b[31m"))
    out = buffer.getvalue()
    assert "\\x1b[2J" in out and "\\x1b]0;pwned\\x07\\x0db" in out and "\\x1b[31m" in out
    assert "\x1b[2J" not in out and "\x07" not in out and "\r" not in out


def test_the_template_keeps_its_styles_around_values() -> None:
    text = styled("[red]{}[/red] ok", "[/red]")
    assert text.plain == "[/red] ok"
    assert any(str(span.style) == "red" and (span.start, span.end) == (0, 6) for span in text.spans)


def test_registered_secrets_are_masked_in_styled_and_plain_text() -> None:
    register_secrets(["s3cr3t-value-for-console"])
    assert styled("[red]{}[/red]", "x s3cr3t-value-for-console y").plain == "x *** y"
    assert plain("s3cr3t-value-for-console").plain == "***"


def test_a_template_needs_one_value_per_placeholder() -> None:
    with pytest.raises(ValueError, match="placeholder"):
        styled("{} {}", "one")
