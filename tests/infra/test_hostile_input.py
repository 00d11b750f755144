"""Hostile stack files, Pulumi.yaml, waivers and policy config through the real CLI: one line naming the file and
key, exit 2, never a traceback, in bounded memory; and user text printed literally (no markup, no emoji)."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest
from typer.testing import CliRunner

from infra.cli import app
from infra.documents import MAX_BYTES, MAX_DEPTH, DocumentError, parse_json, parse_yaml

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()

VALID = """config:
  gantry:cloud: local
  gantry:environment: local
  gantry:tier: dev
  gantry:services:
    web: {namespace: web, image: "demo:v1", strategy: canary}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project whose program is Gantry's own (infra/), with its stack files under stacks/."""
    (tmp_path / "stacks").mkdir()
    (tmp_path / "Pulumi.yaml").write_text(f"name: hostile\nruntime: python\nmain: {REPO / 'infra'}\n"
                                          "stackConfigDir: stacks\n")
    return tmp_path


def stack(project: Path, body: str | bytes, name: str = "h") -> Path:
    path = project / "stacks" / f"Pulumi.{name}.yaml"
    if isinstance(body, bytes):
        path.write_bytes(body)
    else:
        path.write_text(body, encoding="utf-8")
    return path


def gantry(project: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, [*args, "--project", str(project)])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.stdout + result.stderr
    return result.exit_code, result.stdout, result.stderr


def render_error(project: Path, body: str | bytes) -> str:
    stack(project, body)
    code, out, err = gantry(project, "render", "--stack", "h")
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    # The file is named as the CLI shows it: relative to the working directory, else absolute.
    assert len(lines) == 1 and lines[0].startswith("error: ") and "stacks/Pulumi.h.yaml: " in lines[0], err
    return lines[0]


def bomb(levels: int = 9, width: int = 9) -> str:
    lines = ["config:", "  gantry:cloud: local", f"  gantry:x0: &a0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"  gantry:x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- the loader, through the CLI


def test_an_alias_bomb_is_refused_before_expansion_in_bounded_memory(project: Path) -> None:
    stack(project, bomb())  # 9**9 = 387 million strings once expanded
    tracemalloc.start()
    try:
        code, _, err = gantry(project, "render", "--stack", "h")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 2
    assert "stacks/Pulumi.h.yaml: config.gantry:x" in err and "aliases expanded" in err
    # The expansion would need tens of GiB; refusing it costs a few MiB of composing, whatever the budget.
    assert peak < 64 * 1024 * 1024, peak


def test_a_recursive_alias_is_refused(project: Path) -> None:
    line = render_error(project, VALID + "  gantry:tags: &t {a: *t}\n")
    assert "config.gantry:tags.a: alias *t refers to a value that contains it" in line


@pytest.mark.parametrize("body", [
    "config:\n  gantry:x: " + "[" * 50_000 + "\n",
    "config:\n  gantry:x: " + "{a: " * 50_000 + "\n",
    "config:\n  gantry:x: " + "[" * 50_000 + "]" * 50_000 + "\n",
    "config:\n  gantry:x:\n" + "".join("  " * (i + 2) + "- \n" for i in range(200)),
])
def test_50000_nested_openers_are_a_clean_error(project: Path, body: str) -> None:
    line = render_error(project, body)
    assert f"must nest at most {MAX_DEPTH} levels deep" in line


def test_depth_just_over_the_limit_names_the_key(project: Path) -> None:
    line = render_error(project, VALID + "  gantry:tags: " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "\n")
    assert "config.gantry:tags[0][0]" in line and f"must nest at most {MAX_DEPTH} levels deep" in line
    assert len(line) < 400


def test_depth_at_the_limit_loads() -> None:
    doc = parse_yaml("a: " + "[" * (MAX_DEPTH - 1) + "1" + "]" * (MAX_DEPTH - 1), "f.yaml")
    assert isinstance(doc, dict)


@pytest.mark.parametrize(("body", "key", "line"), [
    (VALID + "  gantry:tier: prod\n", "config.gantry:tier", 7),
    (VALID.replace("    web: {namespace: web,", "    web: {namespace: web, namespace: api,"),
     "config.gantry:services.web.namespace", 6),
    ("config:\n  gantry:cloud: local\nconfig:\n  gantry:cloud: aws\n", "config", 3),
])
def test_a_duplicate_key_is_refused_naming_it(project: Path, body: str, key: str, line: int) -> None:
    text = render_error(project, body)
    assert f"stacks/Pulumi.h.yaml: {key}: key is set twice" in text and f"(line {line})" in text


def test_a_merge_key_is_not_a_duplicate() -> None:
    doc = parse_yaml("base: &b {x: 1, y: 1}\nc:\n  <<: *b\n  y: 2\n", "f.yaml")
    assert doc == {"base": {"x": 1, "y": 1}, "c": {"x": 1, "y": 2}}


def test_a_5000_digit_integer_is_refused_naming_the_key(project: Path) -> None:
    line = render_error(project, VALID + "  gantry:sandbox:\n    rateRps: " + "7" * 5000 + "\n")
    assert "config.gantry:sandbox.rateRps: integers must fit in 64 bits" in line
    assert "(5000 characters)" in line and len(line) < 300


@pytest.mark.parametrize("literal", ["0x" + "f" * 17, "0b" + "1" * 65, "18446744073709551616", "-" + "9" * 30])
def test_integers_wider_than_64_bits_are_refused_in_any_notation(literal: str) -> None:
    with pytest.raises(DocumentError, match=r"a: integers must fit in 64 bits"):
        parse_yaml(f"a: {literal}\n", "f.yaml")


def test_64_bit_integers_load() -> None:
    assert parse_yaml("a: 18446744073709551615\nb: -9223372036854775808\nc: 0xff\n", "f.yaml") == {
        "a": 2**64 - 1, "b": -(2**63), "c": 255}


def test_a_date_where_a_number_belongs_names_the_key(project: Path) -> None:
    line = render_error(project, VALID + "  gantry:sandbox:\n    rateRps: 2024-01-01\n")
    assert "gantry:sandbox.rateRps must be a number, but '2024-01-01' was given" in line


def test_dates_load_as_the_text_written_as_pulumi_gives_them(project: Path) -> None:
    stack(project, VALID + "  gantry:tags: {since: 2024-01-01, at: 2024-01-01T10:00:00Z}\n")
    code, _, err = gantry(project, "render", "--stack", "h", "--format", "json")
    assert code == 0, err
    assert parse_yaml("a: 2024-01-01\nb: !!timestamp 2001-12-14t21:59:43.10-05:00\n", "f.yaml") == {
        "a": "2024-01-01", "b": "2001-12-14t21:59:43.10-05:00"}


def test_a_value_over_the_size_limit_is_refused_without_echoing_it(project: Path) -> None:
    huge = "x" * (2 * 1024 * 1024)
    line = render_error(project, VALID + f"  gantry:environment: {huge}\n")
    assert f"must be at most {MAX_BYTES // 1024} KiB" in line and "xxxxxxxxxx" not in line


def test_a_large_value_in_an_error_is_cut(project: Path) -> None:
    big = "y" * 900_000
    line = render_error(project, VALID.replace("gantry:environment: local", f"gantry:environment: {big}"))
    assert line.startswith("error: stacks/Pulumi.h.yaml: gantry:environment must be a string matching")
    assert "(900000 characters)" in line and len(line) < 400


def test_a_huge_key_is_cut_in_errors(project: Path) -> None:
    line = render_error(project, VALID + "  ? gantry:" + "k" * 500_000 + "\n  : 1\n")
    assert "is not a known key" in line and "(500000 characters)" in line and len(line) < 600


@pytest.mark.parametrize("bad", [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80abc"])
def test_non_utf8_bytes_are_refused_naming_the_file_and_line(project: Path, bad: bytes) -> None:
    line = render_error(project, VALID.encode() + b"  gantry:tags: {a: " + bad + b"}\n")
    assert "stacks/Pulumi.h.yaml: must be UTF-8 text, but byte 0x" in line and "on line 7" in line


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b[31m"])
def test_control_characters_are_refused_naming_the_line(project: Path, char: str) -> None:
    line = render_error(project, VALID + f"  gantry:tags: {{a: '{char}'}}\n")
    assert "is not valid YAML" in line and "on line 7" in line


@pytest.mark.parametrize("tag", ["!!binary aGVsbG8=", "!!set {a, b}", "!!omap [a: 1]", "!!python/name:os.system",
                                 "!custom x"])
def test_tags_beyond_the_core_ones_are_refused_naming_the_key(project: Path, tag: str) -> None:
    line = render_error(project, VALID + f"  gantry:tags:\n    a: {tag}\n")
    assert "config.gantry:tags.a: tag " in line and "is not supported" in line


def test_image_tags_over_the_oci_limit_are_refused(project: Path) -> None:
    ok = VALID.replace("demo:v1", "demo:" + "t" * 128)
    stack(project, ok)
    assert gantry(project, "render", "--stack", "h", "--format", "json")[0] == 0
    line = render_error(project, VALID.replace("demo:v1", "demo:" + "t" * 129))
    assert "gantry:services.web.image tag must be at most 128 characters" in line
    code, _, err = gantry(project, "rollout", "start", "--stack", "h", "--service", "web",
                          "--image", "demo:" + "t" * 129)
    assert code == 2 and "--image tag must be at most 128 characters" in err


def test_a_hostile_pulumi_yaml_is_refused_by_every_command(project: Path) -> None:
    stack(project, VALID)
    (project / "Pulumi.yaml").write_text("name: a\nname: b\nruntime: python\n")
    for args in (["render", "--stack", "h"], ["check", "--stack", "h"], ["stacks"],
                 ["rollout", "start", "--stack", "h", "--service", "web", "--image", "demo:v2"]):
        code, _, err = gantry(project, *args)
        assert code == 2, args
        assert "Pulumi.yaml: name: key is set twice" in err, (args, err)


def test_hostile_waivers_and_policy_config_are_refused(project: Path) -> None:
    stack(project, VALID)
    waivers = project / "waivers.yaml"
    waivers.write_text(bomb())
    code, _, err = gantry(project, "check", "--stack", "h", "--waivers", str(waivers))
    assert code == 2 and "aliases expanded" in err and len(err.strip().splitlines()) == 1
    config = project / "policy.json"
    config.write_text('{"workload-ha": "advisory", "workload-ha": "mandatory"}')
    code, _, err = gantry(project, "check", "--stack", "h", "--policy-config", str(config))
    assert code == 2 and "workload-ha: key is set twice" in err
    config.write_text("[" * 50_000)
    code, _, err = gantry(project, "check", "--stack", "h", "--policy-config", str(config))
    assert code == 2 and f"must nest at most {MAX_DEPTH} levels deep" in err


def test_json_limits_match_yaml_limits() -> None:
    with pytest.raises(DocumentError, match="integers must fit in 64 bits"):
        parse_json('{"a": ' + "1" * 5000 + "}", "p.json")
    with pytest.raises(DocumentError, match="nest at most"):
        parse_json("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "p.json")
    assert parse_json('{\n\t"a": [1, 2]\n}', "p.json") == {"a": [1, 2]}  # tabs are fine in JSON


# --------------------------------------------------------------------------- user text is never markup


MARKUP = ["[/red]", "^[a-z][a-z0-9-]{0,30}$", ":cloud:", "[bold]x[/bold]", "a\\", "[link=http://x]y[/link]"]


@pytest.mark.parametrize("value", MARKUP)
def test_markup_in_an_invalid_value_prints_literally(project: Path, value: str) -> None:
    line = render_error(project, VALID.replace("gantry:environment: local",
                                               f"gantry:environment: {json.dumps(value)}"))
    assert f"but {value!r} was given" in line
    # The constraint itself is a regex full of brackets: it must survive too.
    assert "must be a string matching ^[a-z][a-z0-9-]{0,30}$" in line
    assert "\u2601" not in line  # no cloud emoji


def test_markup_in_a_programs_names_and_outputs_renders_literally(tmp_path: Path) -> None:
    (tmp_path / "stacks").mkdir()
    (tmp_path / "prog").mkdir()
    (tmp_path / "Pulumi.yaml").write_text("name: marks\nruntime: python\nmain: prog\nstackConfigDir: stacks\n")
    (tmp_path / "stacks" / "Pulumi.dev.yaml").write_text("config: {}\n")
    (tmp_path / "prog" / "__main__.py").write_text(f"""import pulumi

class Thing(pulumi.ComponentResource):
    def __init__(self, name: str) -> None:
        super().__init__("acme:[/red]:Thing", name)
        self.register_outputs({{}})

for i, text in enumerate({MARKUP!r}):
    Thing(f"t{{i}}-{{text}}")
    pulumi.export(f"[bold]k{{i}}", text)
""")
    result = runner.invoke(app, ["render", "--stack", "dev", "--project", str(tmp_path)], terminal_width=200)
    assert result.exit_code == 0, result.stderr
    for i, text in enumerate(MARKUP):
        assert f"t{i}-{text}" in result.stdout and f"[bold]k{i}" in result.stdout
        assert f"{text} " in result.stdout  # the output's value, literal
    assert "acme:[/red]:Thing" in result.stdout and "\u2601" not in result.stdout


def test_markup_in_a_stack_name_and_an_unknown_key_prints_literally(project: Path) -> None:
    stack(project, VALID + '  "gantry:[/red]:cloud:": 1\n', name="x[red]:cloud:")
    code, out, err = gantry(project, "stacks")
    flat = " ".join(line.strip("│ ") for line in out.splitlines())  # the table may wrap the cell
    assert code == 1 and "x[red]:cloud:" in out and 'invalid gantry:["[/red]:cloud:"]' in out, out
    assert "is not a known key" in flat
    code, _, err = gantry(project, "render", "--stack", "x[red]:cloud:")
    assert code == 2 and "Pulumi.x[red]:cloud:.yaml: " in err and "\u2601" not in err
    code, _, err = gantry(project, "check", "--stack", "[/bold]nope")
    assert code == 2 and "[/bold]nope" in err


# --------------------------------------------------------------------------- both event sources


HOSTILE = {
    "bomb": (bomb(), "aliases expanded"),
    "recursive": ("a: &r [1, *r]\n", "refers to a value that contains it"),
    "deep": ("a: " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "\n", "levels deep"),
    "duplicate": ("a: 1\nb: 2\na: 3\n", "a: key is set twice"),
    "wide int": ("a: " + "1" * 5000 + "\n", "a: integers must fit in 64 bits"),
    "tag": ("a: !!binary aGk=\n", "a: tag tag:yaml.org,2002:binary is not supported"),
    "nul": ("a: '\x00'\n", "character #x0000 on line 1"),
}


@pytest.mark.parametrize("loader", ["_LimitedLoader", "_PyLimitedLoader"])
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_libyaml_and_pure_python_events_get_the_same_limits(monkeypatch: pytest.MonkeyPatch, loader: str,
                                                            case: str) -> None:
    from infra import documents

    monkeypatch.setattr(documents, "_LimitedLoader", getattr(documents, loader))
    text, message = HOSTILE[case]
    with pytest.raises(DocumentError, match=message.replace("[", r"\[").replace("*", r"\*")):
        parse_yaml(text, "f.yaml")
    assert parse_yaml("base: &b {x: 1}\nc: {<<: *b, d: 2024-01-01}\n", "f.yaml") == {
        "base": {"x": 1}, "c": {"x": 1, "d": "2024-01-01"}}
