"""ImageRef: the one image grammar (OCI reference), its parts, and the errors that name the part at fault."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from components.errors import InputError
from components.image import ImageRef, ImageRefError
from components.validation import check_image

DIGEST = "sha256:" + "0f" * 32


@pytest.mark.parametrize(("text", "domain", "repository", "tag", "digest"), [
    ("demo:v1", None, "demo", "v1", None),
    ("ghcr.io/acme/web:1.4.0", "ghcr.io", "acme/web", "1.4.0", None),
    ("localhost:5000/web:v2_rc-1", "localhost:5000", "web", "v2_rc-1", None),
    ("localhost/web:2", "localhost", "web", "2", None),
    (f"ghcr.io/acme/web@{DIGEST}", "ghcr.io", "acme/web", None, DIGEST),
    (f"ghcr.io/acme/web:1.4.0@{DIGEST}", "ghcr.io", "acme/web", "1.4.0", DIGEST),
    ("acme/web__x:1", None, "acme/web__x", "1", None),
    ("registry.example.com:443/a/b/c:9", "registry.example.com:443", "a/b/c", "9", None),
])
def test_references_parse_into_their_parts(text: str, domain: str | None, repository: str, tag: str | None,
                                           digest: str | None) -> None:
    ref = ImageRef.parse(text)
    assert (ref.domain, ref.repository, ref.tag, ref.digest) == (domain, repository, tag, digest)
    assert str(ref) == text


@pytest.mark.parametrize("text", [
    "ghcr.io/acme/web", "web:latest", "ghcr.io/acme/web:latest", "web:", "Web:1", "web:1@sha256:abc",
    "web@sha512:" + "0" * 128, "web:.1", "-web:1", "web//x:1", "bad_host.io:x/web:1", "", "web:1 ; rm -rf /",
    "localhost:5000/web",  # a port is not a tag
])
def test_unpinned_or_malformed_references_are_refused(text: str) -> None:
    with pytest.raises(ImageRefError, match=r"must be .* but .* was given"):
        ImageRef.parse(text, "--image")


def test_errors_name_the_part_and_join_the_gantry_tree() -> None:
    with pytest.raises(ImageRefError, match=r"^--image tag must be at most 128 characters") as info:
        ImageRef.parse("demo:" + "t" * 129, "--image")
    assert isinstance(info.value, InputError) and isinstance(info.value, ValueError)
    with pytest.raises(ImageRefError, match=r"^image name must be at most 255 characters"):
        ImageRef.parse("a" * 256 + ":1")
    with pytest.raises(ImageRefError, match=r"^image must be an image pinned by"):
        ImageRef.parse(42)


@pytest.mark.parametrize(("text", "version"), [
    ("ghcr.io/acme/web:1.4.0", "1.4.0"), (f"ghcr.io/acme/web@{DIGEST}", "sha256-0f0f0f0f0f0f"),
    ("web:_internal_", "internal"),
])
def test_version_is_label_safe(text: str, version: str) -> None:
    assert ImageRef.parse(text).version == version


def test_check_image_reports_through_the_same_grammar() -> None:
    assert check_image("image", "demo:v1") == []
    (v,) = check_image("canaryImage", "demo:latest")
    assert (v.field, v.value) == ("canaryImage", "demo:latest")
    (t,) = check_image("image", "demo:" + "t" * 200)
    assert t.field == "image tag"


@given(st.from_regex(r"[a-z0-9]{1,8}(/[a-z0-9]{1,8}){0,2}", fullmatch=True),
       st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True).filter(lambda t: t != "latest"))
def test_any_name_and_tag_round_trip(name: str, tag: str) -> None:
    ref = ImageRef.parse(f"{name}:{tag}")
    assert (ref.name, ref.tag) == (name, tag) and ImageRef.parse(str(ref)) == ref
