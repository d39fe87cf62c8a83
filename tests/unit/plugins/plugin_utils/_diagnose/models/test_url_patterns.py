"""URL patterns as Chrome, Edge and Firefox read them (nhs-cm-domain.md 4.2, 4.4, 4.5)."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.url_patterns import (
    auth_allowlist_decision,
    auth_covers_localhost_any_port,
    canonical_host,
    content_pattern_matches,
    covers_localhost_any_port,
    firefox_localhost_port,
    firefox_matches_localhost_some_port,
    firefox_origin_matches,
    glob_match,
    is_explicit,
    localhost_url,
    matches_localhost_some_port,
    pair_applies,
    parse_auth_allowlist,
    parse_content_pattern,
    parse_firefox_origin,
    parse_pattern_pair,
    parse_url,
    precedence_key,
)

# -- the content-settings table: (pattern, valid, covers every port, matches some port) -----------
CONTENT_TABLE = [
    # nhs-cm-domain.md 4.2, "Consequences": these cover every port
    ("[*.]localhost", True, True, True),
    ("localhost", True, True, True),
    ("http://localhost", True, True, True),
    ("http://localhost:*", True, True, True),
    ("*://localhost", True, True, True),
    ("http://[*.]localhost", True, True, True),
    ("*://[*.]localhost:*", True, True, True),
    ("[*.]localhost:*", True, True, True),
    # one port only
    ("http://localhost:43485", True, False, True),
    ("localhost:43485", True, False, True),
    ("[*.]localhost:55000", True, False, True),
    ("http://localhost:80", True, False, True),
    # https never matches http
    ("https://localhost", True, False, False),
    ("https://[*.]localhost", True, False, False),
    ("https://localhost:43485", True, False, False),
    # invalid: match nothing
    ("*.localhost", False, False, False),
    ("[*.].localhost", False, False, False),
    ("http://*.localhost", False, False, False),
    ("local*host", False, False, False),
    ("http://localhost:abc", False, False, False),
    ("http://localhost:4348*", False, False, False),
    ("localhost..", False, False, False),
    ("", False, False, False),
    ("http://", False, False, False),
    ("ftp://localhost", False, False, False),
    ("[*.]127.0.0.1", False, False, False),
    ("http://[::1", False, False, False),
    ("file://localhost/x", False, False, False),
    # other hosts
    ("[*.]nhs.uk", True, False, False),
    ("https://[*.]nhs.uk", True, False, False),
    ("localhost.nhs.uk", True, False, False),
    ("[*.]sub.localhost", True, False, False),
    ("127.0.0.1", True, False, False),
    ("http://127.0.0.1:*", True, False, False),
    ("[::1]", True, False, False),
    ("http://[::1]:43485", True, False, False),
    ("file:///C:/x.html", True, False, False),
    # the spelling does not matter
    ("LOCALHOST", True, True, True),
    ("HTTP://LocalHost", True, True, True),
    ("[*.]LOCALHOST", True, True, True),
    ("localhost.", True, True, True),
    # paths are parsed and ignored
    ("http://localhost/PRS/GetPortNumber", True, True, True),
    ("[*.]localhost/*", True, True, True),
    ("http://localhost:43487/PRS", True, False, True),
    # every host: the pattern matches localhost (the policy layer decides what that means)
    ("*", True, True, True),
    ("http://*", True, True, True),
    ("*://*:*", True, True, True),
    ("[*.]", True, True, True),
]


@pytest.mark.parametrize(("pattern", "valid", "covers", "some_port"), CONTENT_TABLE)
def test_content_patterns(pattern: str, valid: bool, covers: bool, some_port: bool) -> None:
    parsed = parse_content_pattern(pattern)
    assert parsed.valid is valid, parsed.error
    assert covers_localhost_any_port(pattern) is covers
    assert matches_localhost_some_port(pattern) is some_port
    if not valid:
        assert parsed.error


@pytest.mark.parametrize(("pattern", "url", "matches"), [
    ("http://localhost", "http://localhost:43485/signingHub", True),
    ("http://localhost", "http://localhost/", True),
    ("http://localhost:80", "http://localhost/", True),
    ("http://localhost:80", "http://localhost:8080/", False),
    ("https://localhost", "https://localhost:443/", True),
    ("https://localhost:443", "https://localhost/", True),
    ("[*.]nhs.uk", "https://ers.nhs.uk", True),
    ("[*.]nhs.uk", "https://nhs.uk", True),
    ("[*.]nhs.uk", "https://evilnhs.uk", False),
    ("https://[*.]spineservices.nhs.uk", "https://am.nhsidentity.spineservices.nhs.uk", True),
    ("[*.]ers.nhs.uk", "https://nhs.uk", False),
    ("127.0.0.1", "http://127.0.0.1:43485", True),
    ("127.0.0.1", "http://localhost:43485", False),
    ("localhost", "http://127.0.0.1:43485", False),
    ("0x7f.0.0.1", "http://127.0.0.1/", True),
    ("127.1", "http://127.0.0.1/", True),
    ("[::1]", "http://[::1]:43485/", True),
    ("[0:0:0:0:0:0:0:1]", "http://[::1]/", True),
    ("http://[::1]:*", "http://[::1]:1/", True),
    ("localhost", "http://localhost.:1/", True),
])
def test_content_pattern_matches_urls(pattern: str, url: str, matches: bool) -> None:
    assert content_pattern_matches(parse_content_pattern(pattern), parse_url(url)) is matches


@pytest.mark.parametrize(("host", "expected"), [
    ("LocalHost", ("localhost", False)),
    ("127.0.0.1", ("127.0.0.1", True)),
    ("127.1", ("127.0.0.1", True)),
    ("2130706433", ("127.0.0.1", True)),
    ("0177.0.0.1", ("127.0.0.1", True)),
    ("256.0.0.1", ("", False)),
    ("1.2.3.4.5", ("", False)),
    ("[::1]", ("[::1]", True)),
    ("[::ffff:127.0.0.1]", ("[::ffff:7f00:1]", True)),
    ("[nope]", ("", False)),
    ("bad host", ("", False)),
    ("bücher.example", ("xn--bcher-kva.example", False)),
    ("", ("", False)),
])
def test_hosts_are_canonicalised_as_chromium_does(host: str, expected: tuple[str, bool]) -> None:
    assert canonical_host(host) == expected


def test_precedence_host_then_port_then_scheme() -> None:
    def key(text: str) -> object:
        return precedence_key(parse_content_pattern(text))
    ordered = ["http://localhost:43485", "localhost:43485", "http://localhost", "localhost", "[*.]localhost", "*"]
    assert sorted(ordered, key=key) == ordered
    assert key("[*.]a.localhost") < key("[*.]localhost")


@pytest.mark.parametrize(("entry", "valid", "secondary"), [
    ("[*.]localhost", True, None),
    ("  [*.]localhost  ", True, None),
    ("http://localhost,https://[*.]nhs.uk", True, "https://[*.]nhs.uk"),
    ("http://localhost, *", True, None),
    ("http://localhost,*.nhs.uk", True, None),
    ("a,b,c", False, None),
    ("", False, None),
    ("*.localhost,[*.]nhs.uk", False, "[*.]nhs.uk"),
])
def test_pattern_pairs(entry: str, valid: bool, secondary: str | None) -> None:
    pair = parse_pattern_pair(entry)
    assert pair.valid is valid
    assert (pair.secondary.text if pair.secondary else None) == secondary


def test_a_pair_applies_only_under_its_top_level_sites() -> None:
    pair = parse_pattern_pair("[*.]localhost,https://[*.]nhs.uk")
    assert pair_applies(pair, localhost_url(43485), parse_url("https://ers.nhs.uk"))
    assert not pair_applies(pair, localhost_url(43485), parse_url("https://example.com"))


@pytest.mark.parametrize(("entry", "explicit"), [
    ("[*.]localhost", True), ("*", False), ("http://*", False), ("*,https://ers.nhs.uk", True),
    ("[*.]localhost,*", True),
])
def test_explicit_rules(entry: str, explicit: bool) -> None:
    assert is_explicit(parse_pattern_pair(entry)) is explicit


# -- AuthServerAllowlist ------------------------------------------------------------------------
AUTH_TABLE = [
    ("localhost", True),
    ("LOCALHOST", True),
    ("*localhost", True),
    ("*", True),
    ("*.nhs.uk,localhost", True),
    ("*.nhs.uk;localhost", True),
    (" localhost , *.nhs.uk ", True),
    ("http://localhost", True),
    ("<local>", True),
    ("local?ost", True),
    ("*.nhs.uk", False),
    (".localhost", False),  # a leading dot is a suffix match: *.localhost, not localhost itself
    ("*.localhost", False),
    ("https://localhost", False),
    ("localhost:43485", False),  # one port only
    ("localhost:43485,localhost:43487", False),
    ("127.0.0.1", False),  # an IP rule matches URLs whose host is that IP, never 'localhost'
    ("127.0.0.0/8", False),
    ("[::1]", False),
    ("localhost:abc", False),  # invalid rule, ignored
    ("", False),
    ("<-loopback>", False),
    ("localhost,<-loopback>", False),  # a later rule overrides an earlier one
    ("<-loopback>,localhost", True),
]


@pytest.mark.parametrize(("value", "covers"), AUTH_TABLE)
def test_auth_server_allowlist(value: str, covers: bool) -> None:
    assert auth_covers_localhost_any_port(parse_auth_allowlist(value)) is covers


def test_auth_rules_for_other_urls() -> None:
    rules = parse_auth_allowlist("127.0.0.1,*.nhs.uk,10.0.0.0/8,https://secure.example")
    assert auth_allowlist_decision(rules, parse_url("http://127.0.0.1:43485"))[0] is True
    assert auth_allowlist_decision(rules, parse_url("https://ers.nhs.uk"))[0] is True
    assert auth_allowlist_decision(rules, parse_url("https://nhs.uk"))[0] is False
    assert auth_allowlist_decision(rules, parse_url("http://10.1.2.3"))[0] is True
    assert auth_allowlist_decision(rules, parse_url("http://secure.example"))[0] is False
    assert [rule.kind for rule in parse_auth_allowlist("a:99999, b:1,<LOCAL>")] == ["invalid", "hostname", "local"]


@pytest.mark.parametrize(("text", "pattern", "matches"), [
    ("localhost", "*", True), ("localhost", "local*", True), ("localhost", "?ocalhost", True),
    ("localhost", "*.localhost", False), ("a.b", "a.?", True), ("a+b", "a+b", True), ("ab", "a", False),
])
def test_glob(text: str, pattern: str, matches: bool) -> None:
    assert glob_match(text, pattern) is matches


# -- Firefox origins ----------------------------------------------------------------------------
# Firefox keys a cookie permission by the principal's origin, port included, and an origin
# without a port is the scheme's default port (Policies.sys.mjs addAllowDenyPermissions ->
# createContentPrincipalFromOrigin; PermissionManager.cpp GetOriginFromPrincipal; docs/browser-policy.md)
@pytest.mark.parametrize(("origin", "valid", "localhost_port"), [
    ("http://localhost", True, 80),
    ("http://localhost/", True, 80),
    ("HTTP://LOCALHOST", True, 80),
    ("http://localhost:80", True, 80),
    ("http://localhost:43485", True, 43485),
    ("http://localhost:043487", True, 43487),
    ("https://localhost", True, None),
    ("localhost", False, None),
    ("http://127.0.0.1", True, None),
    ("http://", False, None),
    ("http://sub.localhost", True, None),
    ("http://localhost:0", False, None),
    ("http://localhost:70000", False, None),
])
def test_firefox_origins_cover_one_port(origin: str, valid: bool, localhost_port: int | None) -> None:
    parsed = parse_firefox_origin(origin)
    assert parsed.valid is valid
    assert firefox_localhost_port(parsed) == localhost_port
    assert firefox_matches_localhost_some_port(parsed) is (localhost_port is not None)
    for port in (80, 43485, 43487):
        assert firefox_origin_matches(parsed, localhost_url(port)) is (port == localhost_port)


def test_a_firefox_origin_covers_its_subdomains_on_its_port_only() -> None:
    parsed = parse_firefox_origin("http://nhs.uk:8080")
    assert firefox_origin_matches(parsed, parse_url("http://ers.nhs.uk:8080"))
    assert not firefox_origin_matches(parsed, parse_url("http://ers.nhs.uk"))


def test_urls_are_checked() -> None:
    with pytest.raises(ValueError, match="not a URL"):
        parse_url("localhost:43485")
    with pytest.raises(ValueError, match="no valid host"):
        parse_url("http://bad host/")
    assert parse_url("HTTP://LocalHost:80/x") == parse_url("http://localhost")


# -- properties ---------------------------------------------------------------------------------
ports = st.integers(min_value=1, max_value=65535)
schemes = st.sampled_from(["", "http://", "https://", "*://", "HTTP://"])
hosts = st.sampled_from(["localhost", "LocalHost", "[*.]localhost", "*", "[*.]", "nhs.uk", "[*.]nhs.uk",
                         "127.0.0.1", "*.localhost", "[*.].localhost", "localhost."])
port_parts = st.one_of(st.just(""), st.just(":*"), ports.map(lambda p: f":{p}"))
paths = st.sampled_from(["", "/", "/*", "/PRS/GetPortNumber"])


def _expected(scheme: str, host: str, port: str, url_port: int) -> bool:
    """The rule of nhs-cm-domain.md 4.2, written independently of the parser."""
    if host in ("*.localhost", "[*.].localhost"):
        return False
    if scheme.lower() not in ("", "http://", "*://"):
        return False
    if host.lower().rstrip(".") not in ("localhost", "[*.]localhost", "*", "[*.]"):
        return False
    return port in ("", ":*") or port == f":{url_port}"


@given(schemes, hosts, port_parts, paths, ports)
def test_composed_patterns_follow_the_rule(scheme: str, host: str, port: str, path: str, url_port: int) -> None:
    pattern = f"{scheme}{host}{port}{path}"
    assert content_pattern_matches(parse_content_pattern(pattern), localhost_url(url_port)) is \
        _expected(scheme, host, port, url_port)


@given(st.text(max_size=40))
def test_parsing_never_raises_and_invalid_matches_nothing(text: str) -> None:
    parsed = parse_content_pattern(text)
    if not parsed.valid:
        assert not covers_localhost_any_port(parsed)
        assert not matches_localhost_some_port(parsed)
    parse_pattern_pair(text)
    parse_auth_allowlist(text)
    parse_firefox_origin(text)


@given(st.text(alphabet="[]*.:/lochstpwxyz0123456789", max_size=30), ports)
def test_covering_every_port_means_matching_each_one(text: str, port: int) -> None:
    parsed = parse_content_pattern(text)
    if covers_localhost_any_port(parsed):
        assert matches_localhost_some_port(parsed)
        assert content_pattern_matches(parsed, localhost_url(port))


@given(st.text(alphabet="[]*.:/lochstpLOCHST0123456789", max_size=30))
def test_ascii_case_does_not_matter(text: str) -> None:
    assume(text.lower() != text.upper())
    assert covers_localhost_any_port(text.lower()) is covers_localhost_any_port(text.upper())
    assert matches_localhost_some_port(text.lower()) is matches_localhost_some_port(text.upper())


@given(st.sampled_from(["[*.]localhost", "http://localhost", "localhost:43485", "*://localhost:*"]), paths)
def test_a_path_changes_nothing(pattern: str, path: str) -> None:
    assert covers_localhost_any_port(pattern + path) is covers_localhost_any_port(pattern)
    assert matches_localhost_some_port(pattern + path) is matches_localhost_some_port(pattern)


@given(st.lists(st.sampled_from(["localhost", "*.nhs.uk", "localhost:43485", "<-loopback>", "127.0.0.1", ".localhost"]),
                max_size=5))
def test_appending_localhost_to_an_allowlist_always_covers_it(rules: list[str]) -> None:
    assert auth_covers_localhost_any_port(parse_auth_allowlist(",".join([*rules, "localhost"])))
