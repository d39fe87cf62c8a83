"""Chromium's own unit tests as the judge of the content-settings pattern parser.

The vectors in ``fixtures/chromium_content_settings_vectors.json`` were extracted by
``tools/chromium_pattern_vectors.py`` from chromium/chromium
``components/content_settings/core/common/content_settings_pattern_unittest.cc`` and
``content_settings_pattern_parser_unittest.cc`` (commits in the fixture's ``source``); each
names its test and line. Every vector the collection's model can express must agree with
Chromium; the others are counted by reason (docs/url-patterns.md lists them).
"""

from __future__ import annotations

import collections
import json
import pathlib
import typing as t

import pytest

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.url_patterns import (
    DISJOINT_ORDER_POST,
    DISJOINT_ORDER_PRE,
    IDENTITY,
    PREDECESSOR,
    SUCCESSOR,
    PatternParts,
    compare_patterns,
    content_pattern_matches,
    parse_content_pattern,
    parse_url,
    pattern_parts,
    pattern_to_string,
)

FIXTURE = pathlib.Path(__file__).resolve().parents[4] / "fixtures" / "chromium_content_settings_vectors.json"
DATA = json.loads(FIXTURE.read_text(encoding="utf-8"))
Vector = dict[str, t.Any]

#: Why a vector cannot be put to the collection (it has no URL path, no file-path canonicaliser).
NOT_MODELLED_URL = "the URL is file: or filesystem:; the collection matches http(s) URLs only (CM's)"
NOT_MODELLED_FILE_PATH = ("file:// path canonicalisation (GURL: %-escaping, '..') is not modelled; a "
                          "file:// pattern never matches http://localhost")


def not_modelled(vector: Vector) -> str | None:
    """Why the collection cannot express this vector, or None when it can."""
    url = vector.get("url", "")
    if url.startswith(("file:", "filesystem:")):
        return NOT_MODELLED_URL
    pattern = vector.get("pattern", "")
    if pattern.lower().startswith("file:") and vector["kind"] in ("to_string", "idempotent") and (
            not pattern.isascii() or "/../" in pattern or "/./" in pattern):
        return NOT_MODELLED_FILE_PATH
    return None


EXPRESSIBLE = [vector for vector in DATA["vectors"] if not_modelled(vector) is None]


def _id(vector: Vector) -> str:
    return f"{vector['test'].split('.')[-1]}:{vector['line']}:{vector['kind']}:{vector.get('pattern')!r}"


# -- what the collection answers, per kind of vector -------------------------------------------

_CALLS = {"WithSchemeWildcard": "scheme_wildcard", "WithDomainWildcard": "domain_wildcard",
          "WithPortWildcard": "port_wildcard", "WithPathWildcard": "path_wildcard", "Invalid": "invalid",
          "WithScheme": "scheme", "WithHost": "host", "WithPort": "port", "WithPath": "path"}


def parts_from_calls(calls: list[list[str]]) -> PatternParts:
    """The parts a builder holds after the mock's expected calls."""
    fields: dict[str, t.Any] = {}
    for call in calls:
        fields[_CALLS[call[0]]] = call[1] if len(call) > 1 else True
    return PatternParts(**fields)


_ORDER = {DISJOINT_ORDER_POST: -2, SUCCESSOR: -1, IDENTITY: 0, PREDECESSOR: 1, DISJOINT_ORDER_PRE: 2}


def operator_holds(operator: str, relation: str) -> bool:
    """``==``, ``!=``, ``<``, ``>`` of ContentSettingsPattern over ``Compare`` (the Relation enum
    runs DISJOINT_ORDER_POST = -2 .. DISJOINT_ORDER_PRE = 2)."""
    value = _ORDER[relation]
    return {"==": value == 0, "!=": value != 0, "<": value < 0, ">": value > 0}[operator]


def answer(vector: Vector) -> t.Any:
    pattern = parse_content_pattern(vector["pattern"])
    kind = vector["kind"]
    if kind == "valid":
        return pattern.valid
    if kind == "to_string":
        return pattern_to_string(pattern)
    if kind == "matches":
        return content_pattern_matches(pattern, parse_url(vector["url"]))
    if kind == "compare":
        return compare_patterns(pattern, parse_content_pattern(vector["other"]))
    if kind == "operator":
        return operator_holds(vector["operator"], compare_patterns(pattern, parse_content_pattern(vector["other"])))
    if kind == "parse":
        return pattern_parts(vector["pattern"])
    if kind == "idempotent":
        canonical = pattern_to_string(pattern)
        again = parse_content_pattern(canonical)
        return (pattern.valid, again.valid, pattern_to_string(again) == canonical,
                compare_patterns(pattern, again))
    raise AssertionError(f"unknown kind {kind}")


def expected(vector: Vector) -> t.Any:
    if vector["kind"] == "parse":
        return parts_from_calls(vector["calls"])
    if vector["kind"] == "idempotent":
        return (True, True, True, IDENTITY)
    return vector["expect"]


@pytest.mark.parametrize("vector", EXPRESSIBLE, ids=_id)
def test_the_collection_agrees_with_chromium(vector: Vector) -> None:
    assert answer(vector) == expected(vector), f"{vector['file']}:{vector['line']} ({vector['test']})"


def test_the_vectors_name_their_source() -> None:
    files = DATA["source"]["files"]
    assert all(len(commit) == 40 for commit in files.values())
    for vector in DATA["vectors"] + DATA["not_expressible"]:
        assert vector["file"] in files and vector["line"] > 0 and vector["test"]


def test_how_many_vectors_are_judged() -> None:
    """The fixture is what it was when the docs were written (docs/url-patterns.md)."""
    kinds = collections.Counter(vector["kind"] for vector in EXPRESSIBLE)
    assert len(DATA["vectors"]) == 264
    assert len(EXPRESSIBLE) == 264 - sum(1 for vector in DATA["vectors"] if not_modelled(vector))
    assert set(kinds) == {"valid", "to_string", "matches", "compare", "operator", "parse", "idempotent"}


@pytest.mark.parametrize(("pattern", "url"), [
    # parser_unittest ParsePatterns: Chromium decodes %2E and rejects "[*.]" + ".youtube.com";
    # read as "every host" it would claim to cover localhost when Chrome ignores the entry.
    ("[*.]%2Eyoutube.com", "http://localhost:43485"),
    ("[*.]%2elocalhost", "http://localhost:43485"),
])
def test_an_escaped_dot_after_the_domain_wildcard_is_invalid(pattern: str, url: str) -> None:
    parsed = parse_content_pattern(pattern)
    assert not parsed.valid
    assert not content_pattern_matches(parsed, parse_url(url))


@pytest.mark.parametrize(("pattern", "valid", "port", "matches_localhost_43485"), [
    # the host ends at whichever of ':' or '/' comes first (IdempotencyOfCanonicalization's
    # "https://foo/:/bar/:/baz"): a ':' in the path is not a port
    ("http://localhost/x:y", True, None, True),
    ("[*.]nhs.uk/page:1", True, None, False),
    ("[*.]localhost/page:1", True, None, True),
    ("http://localhost:43485/x:y", True, "43485", True),
])
def test_a_colon_in_the_path_is_not_a_port(pattern: str, valid: bool, port: str | None,
                                           matches_localhost_43485: bool) -> None:
    parsed = parse_content_pattern(pattern)
    assert parsed.valid is valid
    assert parsed.port == port
    assert content_pattern_matches(parsed, parse_url("http://localhost:43485")) is matches_localhost_43485


@pytest.mark.parametrize(("host", "canonical"), [
    ("%6Cocalhost", "localhost"), ("LOCAL%48OST", "localhost"), ("%31%32%37.0.0.1", "127.0.0.1"),
    ("local%zzhost", ""), ("local%2Fhost", ""), ("%ff", ""),
])
def test_hosts_are_percent_decoded_before_canonicalising(host: str, canonical: str) -> None:
    assert parse_content_pattern(host).valid is bool(canonical)
    assert parse_content_pattern(host).host == canonical
