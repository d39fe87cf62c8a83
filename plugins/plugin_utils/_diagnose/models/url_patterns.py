# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""URL patterns as the browsers read them: pure parsers and matchers, no I/O.

Three grammars, each implemented after its browser's source, never with substring checks:

- Chromium content-settings patterns (``CookiesAllowedForUrls``, ``CookiesBlockedForUrls``,
  ``CookiesSessionOnlyForUrls``, and the Local Network Access lists): ``parse_content_pattern``
  follows ``components/content_settings/core/common/content_settings_pattern_parser.cc``
  (``PatternParser::Parse``: ``pattern_parts``) and ``content_settings_pattern.cc``
  (``Builder::Canonicalize`` and ``Builder::Validate``: ``build_pattern``; ``Matches``;
  ``Compare``: ``compare_patterns``; ``ToString``: ``pattern_to_string``), judged by Chromium's
  own unit tests
  (``tests/unit/plugins/plugin_utils/_diagnose/models/test_chromium_pattern_vectors.py``). The host ends at whichever
  of ``:`` or ``/`` comes first (``http://localhost/x:y`` has no port); the host is
  percent-decoded before it is canonicalised (``[*.]%2Eexample.com`` is ``[*.].example.com``,
  invalid). Scheme, port and path are optional; no
  scheme or ``*://`` means any scheme; NO port means ANY port (``http://localhost`` matches
  ``http://localhost:43485``); ``[*.]host`` is the host and its subdomains; any other ``*`` in
  a host (``*.localhost``) and ``[*.].host`` are invalid; a path is ignored for http(s). An
  invalid pattern matches nothing. A policy entry may be a pair ``primary,secondary``
  (``parse_pattern_pair``, after ``content_settings_utils.cc`` ``ParsePatternString``).
- Chromium ``AuthServerAllowlist`` (``parse_auth_allowlist``): ``net/http/http_auth_filter.cc``
  hands the comma/semicolon separated list to ``ProxyBypassRules`` after the implicit rule
  ``<-loopback>``; each rule is ``[scheme://]host-pattern[:port]`` where the host pattern is a
  glob (``*`` and ``?``), a leading ``.`` means ``*.`` (suffix match, not the domain itself),
  IP literals and CIDR blocks match only URLs whose host is that IP, ``<local>`` matches
  host names without a dot, and a later rule overrides an earlier one
  (``net/base/scheme_host_port_matcher_rule.cc``, ``proxy_bypass_rules.cc``).
- Firefox ``Cookies`` policy origins (``parse_firefox_origin``): ``scheme://host[:port]`` with
  the scheme required. Firefox turns each entry into a content principal
  (``Policies.sys.mjs`` ``Cookies`` -> ``addAllowDenyPermissions`` ->
  ``createContentPrincipalFromOrigin``) and the permission manager keys a permission by the
  principal's origin, port included (``PermissionManager.cpp``, ``PermissionKey::CreateFromPrincipal``
  -> ``GetOriginFromPrincipal``); a lookup walks up to parent domains with the same scheme and
  port (``GetNextSubDomainPrincipal`` changes the host only). So an origin covers ONE port: the
  one it names, or the scheme's default (``http://localhost`` is port 80 only), and no Allow
  list can cover CM's per-session port in advance (docs/browser-policy.md).

"Covers localhost" means the entry matches ``http://localhost:<port>`` for EVERY port,
because NHS Credential Management's port differs per Windows session
(``covers_localhost_any_port``); "matches localhost" means it matches at least one port
(``matches_localhost_some_port``).
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import ipaddress
import re
import typing as t
from dataclasses import dataclass

#: Patterns compiled once, at import (in Ansible's main process, before the forks).
_AUTH_SEPARATORS = re.compile(r"[,;]")
_DECIMAL_NUMBER = re.compile(r"\d+")
_FIREFOX_ORIGIN = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://(\[[^\]]*\]|[^/:?#]*)(?::(\d+))?/?")
_HEX_NUMBER = re.compile(r"0[xX][0-9a-fA-F]*")
_HOST_AND_PORT = re.compile(r"(\[[^\]]+\]|[^:\[\]]+)(?::(\d+))?")
_NUMERIC_PART = re.compile(r"(0[xX][0-9a-fA-F]*|\d+)")
_OCTAL_NUMBER = re.compile(r"0[0-7]+")
_SIGNED_INT = re.compile(r"[+-]?\d+")
_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://(\[[^\]]*\]|[^/:?#]*)(?::(\d*))?(?:[/?#].*)?")

LOCALHOST = "localhost"
#: A port no pattern names, standing for "any other port" (any port not in a pattern behaves alike).
_MAX_PORT = 65535

_DOMAIN_WILDCARD = "[*.]"
#: Schemes Chromium registers as "non-wildcard-domain, non-port" (extensions, WebUI).
_NON_PORT_SCHEMES = frozenset({"chrome-extension", "chrome-search", "chrome", "chrome-untrusted", "devtools",
                               "isolated-app", "edge", "extension"})
_DEFAULT_PORTS = {"http": "80", "https": "443"}
#: Characters a URL host may not contain (WHATWG "forbidden host code points", less '*').
_FORBIDDEN_HOST = frozenset(" \t\n\r#/:<>?@[\\]^|%\"{}`")


# ---------------------------------------------------------------------------------------------
# URLs (only what the matchers need)

@dataclass(frozen=True)
class Url:
    """A parsed http(s) URL: lower-case scheme and host (IPv6 in brackets), port as text."""

    scheme: str
    host: str
    port: str  # explicit port, or "" when none was given (the scheme's default applies)

    @property
    def effective_port(self) -> str:
        return self.port or _DEFAULT_PORTS.get(self.scheme, "")


def parse_url(text: str) -> Url:
    """``scheme://host[:port][/path]`` -> Url; raises ValueError naming what is wrong."""
    match = _URL.fullmatch(text.strip())
    if not match:
        raise ValueError(f"not a URL of the form scheme://host[:port][/path]: {text!r}")
    scheme, raw_host, port = match.group(1).lower(), match.group(2), match.group(3) or ""
    host, _is_ip = canonical_host(raw_host)
    if not host:
        raise ValueError(f"URL {text!r} has no valid host")
    if port and port == _DEFAULT_PORTS.get(scheme):
        port = ""
    return Url(scheme, host, str(int(port)) if port else "")


def localhost_url(port: int, scheme: str = "http") -> Url:
    return Url(scheme, LOCALHOST, "" if str(port) == _DEFAULT_PORTS.get(scheme) else str(port))


# ---------------------------------------------------------------------------------------------
# Host canonicalisation (net::CanonicalizeHost, reduced to what policies contain)

def _ipv4_number(part: str) -> int | None:
    if _HEX_NUMBER.fullmatch(part):
        return int(part[2:] or "0", 16)
    if _OCTAL_NUMBER.fullmatch(part):
        return int(part, 8)
    if _DECIMAL_NUMBER.fullmatch(part) and not (len(part) > 1 and part.startswith("0")):
        return int(part)
    return None


def _looks_numeric(part: str) -> bool:
    return bool(_NUMERIC_PART.fullmatch(part))


def _canonical_ipv4(host: str) -> tuple[str | None, bool]:
    """(canonical dotted quad, True) for an IPv4 literal in any URL form (``127.1``,
    ``0x7f.0.0.1``); (None, True) for one that is broken; (None, False) when the host is not
    IPv4 at all (its last label is not a number)."""
    parts = host.split(".")
    if parts and parts[-1] == "" and len(parts) > 1:
        parts = parts[:-1]
    if not parts or not _looks_numeric(parts[-1]):
        return None, False
    numbers = [_ipv4_number(part) for part in parts]
    if len(parts) > 4 or any(number is None for number in numbers):
        return None, True
    values = [number for number in numbers if number is not None]
    if any(value > 255 for value in values[:-1]) or values[-1] >= 256 ** (5 - len(values)):
        return None, True
    address = values[-1]
    for index, value in enumerate(values[:-1]):
        address += value << (8 * (3 - index))
    return str(ipaddress.IPv4Address(address)), True


def _percent_decode(host: str) -> str | None:
    """A host with its ``%XX`` escapes decoded (UTF-8), as URL host canonicalisation does first
    (``%2E`` is a dot); None when the result is not UTF-8. A ``%`` not followed by two hex digits
    stays, and makes the host invalid."""
    if "%" not in host:
        return host
    data = bytearray()
    index = 0
    while index < len(host):
        escape = host[index + 1:index + 3]
        if host[index] == "%" and len(escape) == 2 and all(c in "0123456789abcdefABCDEF" for c in escape):
            data.append(int(escape, 16))
            index += 3
        else:
            data += host[index].encode("utf-8")
            index += 1
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def canonical_host(raw: str) -> tuple[str, bool]:
    """(canonical host, is an IP address) as Chromium canonicalises a host; ("", False) when
    the host is invalid. Lower case, IDN to punycode, IPv4 in dotted-quad form, IPv6 compressed
    in brackets."""
    host = raw.strip()
    if host.startswith("[") or host.endswith("]"):
        if not (host.startswith("[") and host.endswith("]")):
            return "", False
        try:
            return f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]", True
        except ValueError:
            return "", False
    if not host:
        return "", False
    host = _percent_decode(host)
    if host is None:
        return "", False
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return "", False
    host = host.lower()
    if any(char in _FORBIDDEN_HOST for char in host):
        return "", False
    ipv4, is_ipv4 = _canonical_ipv4(host)
    if is_ipv4:
        return (ipv4 or ""), bool(ipv4)
    return host, False


# ---------------------------------------------------------------------------------------------
# Chromium content-settings patterns
#
# Two stages, as in Chromium: ``pattern_parts`` cuts the text into parts
# (``PatternParser::Parse``, which calls a builder), ``build_pattern`` canonicalises and
# validates them (``ContentSettingsPattern::Builder::Build``: ``Canonicalize`` then ``Validate``).

@dataclass(frozen=True)
class PatternParts:
    """What ``PatternParser::Parse`` hands the builder, before canonicalisation. ``invalid``:
    the parser called ``Invalid()`` (the parts set before that are kept, as the builder has them)."""

    scheme: str = ""
    scheme_wildcard: bool = False
    host: str = ""
    domain_wildcard: bool = False
    port: str = ""
    port_wildcard: bool = False
    path: str = ""
    path_wildcard: bool = False
    invalid: bool = False


@dataclass(frozen=True)
class ContentPattern:
    """One parsed content-settings pattern. ``scheme``/``port`` None = wildcard (``port`` "" = a
    scheme without ports: file and the browser's own schemes); ``host`` "" with
    ``domain_wildcard`` = every host; ``path`` is kept for file:// (and the browser's own
    schemes) only, as Chromium ignores it elsewhere. ``error`` says why a pattern is invalid."""

    text: str
    valid: bool
    scheme: str | None = None
    host: str = ""
    domain_wildcard: bool = False
    port: str | None = None
    path: str | None = None
    error: str | None = None
    path_wildcard: bool = False

    @property
    def matches_all_hosts(self) -> bool:
        return self.valid and self.domain_wildcard and not self.host


def _invalid(text: str, why: str) -> ContentPattern:
    return ContentPattern(text, False, error=why)


def _find_first_of(text: str, chars: str, start: int) -> int:
    positions = [index for index in (text.find(char, start) for char in chars) if index >= 0]
    return min(positions) if positions else -1


def _cut(spec: str) -> tuple[str, str, str, str] | None:
    """(scheme, host, port, path) pieces of ``PatternParser::Parse``, or None for a bad spec
    (nothing after ``://``, ``[`` without ``]``): the host ends at whichever of ``:`` or ``/``
    comes first (after a bracketed ``[...]``), so ``http://localhost/x:y`` has no port."""
    scheme, start = "", 0
    separator = spec.find("://")
    if separator >= 0:
        scheme, start = spec[:separator], separator + 3
    if start >= len(spec):
        return None
    position = start
    if spec[position] == "[":
        position = spec.find("]", start)
        if position < 0:
            return None
    position = _find_first_of(spec, ":/", position)
    port = ""
    if position < 0:
        host, start = spec[start:], len(spec)
    elif spec[position] == "/":
        host, start = spec[start:position], position
    else:
        host, start = spec[start:position], position + 1
        if start < len(spec):
            slash = spec.find("/", start)
            end = len(spec) if slash < 0 else slash
            port, start = spec[start:end], end
    return scheme, host, port, spec[start:]


def _is_non_port_scheme(scheme: str) -> bool:
    return scheme in _NON_PORT_SCHEMES  # compared as written, as Chromium compares it


def pattern_parts(spec: str) -> PatternParts:
    """``PatternParser::Parse``: the parts the builder receives (never raises)."""
    if spec == "*":
        return PatternParts(scheme_wildcard=True, domain_wildcard=True, port_wildcard=True)
    pieces = _cut(spec) if spec else None
    if pieces is None:
        return PatternParts()  # nothing set: Build finds it invalid
    scheme, host, port, path = pieces
    parts: dict[str, t.Any] = {"scheme": scheme} if scheme and scheme != "*" else {"scheme_wildcard": True}
    non_port = _is_non_port_scheme(scheme)
    if host:
        if host == "*" or host.startswith(_DOMAIN_WILDCARD):
            if non_port:
                return PatternParts(**parts, invalid=True)
            parts["domain_wildcard"] = True
            if host != "*":
                parts["host"] = host[len(_DOMAIN_WILDCARD):]
        elif "*" in host:
            return PatternParts(**parts, invalid=True)
        else:
            parts["host"] = host
    port_allowed = not non_port and scheme.lower() != "file"
    if port:
        if not port_allowed:
            return PatternParts(**parts, invalid=True)
        if port == "*":
            parts["port_wildcard"] = True
        elif not port.isascii() or not port.isdigit():
            return PatternParts(**parts, invalid=True)
        else:
            parts["port"] = port
    elif port_allowed:
        parts["port_wildcard"] = True
    if path:
        if path[1:] == "*":
            parts["path_wildcard"] = True
        else:
            parts["path"] = path
    return PatternParts(**parts)


def _canonical_pattern_host(parts: PatternParts, scheme: str) -> tuple[str, str | None]:
    """(host, None) after ``Builder::Canonicalize``, or ("", why the pattern is invalid)."""
    if scheme == "file":
        return ("", None) if not parts.host else ("", "a file:// pattern has no host")
    canonical, is_ip = canonical_host(parts.host) if parts.host else ("", False)
    if is_ip and parts.domain_wildcard:
        return "", "[*.] cannot be used with an IP address"
    if parts.domain_wildcard and canonical.startswith("."):
        return "", "[*.] must not be followed by a dot ([*.].host, or an escaped dot such as %2E)"
    if canonical.endswith(".."):
        return "", "host ends with two dots"
    if len(canonical) >= 2 and canonical.endswith("."):
        canonical = canonical[:-1]
    # A host holding '*', or one that cannot be canonicalised, is cleared: with [*.] the pattern
    # then matches every host, as in Chromium.
    return ("" if "*" in parts.host else canonical), None


def build_pattern(text: str, parts: PatternParts) -> ContentPattern:
    """``Builder::Build``: canonicalise and validate the parts (never raises)."""
    if parts.invalid:
        return _invalid(text, "the pattern cannot be parsed (a '*' inside a host, a port that is not '*' or "
                              "digits, or a wildcard or port the scheme does not allow)")
    scheme = parts.scheme.lower()
    host, why = _canonical_pattern_host(parts, scheme)
    if why:
        return _invalid(text, why)
    path = None if parts.path_wildcard or not parts.path else parts.path
    if scheme == "file":
        if parts.domain_wildcard or host or parts.port:
            return _invalid(text, "a file:// pattern has no host or port")
        if parts.path_wildcard or (path and path != "/" and "*" not in path):
            return ContentPattern(text, True, "file", "", False, "", path, None, parts.path_wildcard)
        return _invalid(text, "a file:// pattern needs a full path")
    if _is_non_port_scheme(scheme) and not parts.port and not parts.port_wildcard:
        return ContentPattern(text, True, scheme, host, False, "", path, None, parts.path_wildcard)
    if not scheme and not parts.scheme_wildcard:
        return _invalid(text, "empty pattern" if not text else "no scheme, host or port")
    if not host and not parts.domain_wildcard:
        return _invalid(text, f"host {parts.host!r} is not a valid host name or IP address" if parts.host
                        else "no host")
    if not parts.port and not parts.port_wildcard:
        return _invalid(text, "no port")
    if scheme and scheme not in ("http", "https"):
        return _invalid(text, f"scheme {scheme!r} is not http, https or *")
    return ContentPattern(text, True, scheme or None, host, parts.domain_wildcard,
                          None if parts.port_wildcard else parts.port, None)


def parse_content_pattern(text: str) -> ContentPattern:
    """Parse one Chromium content-settings pattern (never raises)."""
    return build_pattern(text, pattern_parts(text))


def pattern_to_string(pattern: ContentPattern) -> str:
    """The canonical form (``ContentSettingsPattern::ToString``); "" for an invalid pattern."""
    if not pattern.valid:
        return ""
    if pattern.scheme is None and pattern.matches_all_hosts and pattern.port is None:
        return "*"
    text = f"{pattern.scheme}://" if pattern.scheme is not None else ""
    if pattern.scheme == "file":
        return text + ("/*" if pattern.path_wildcard else pattern.path or "")
    if pattern.domain_wildcard:
        text += _DOMAIN_WILDCARD if pattern.host else "*"
    text += pattern.host
    if pattern.scheme in _NON_PORT_SCHEMES:
        return text + (pattern.path or "/")
    return text + (f":{pattern.port}" if pattern.port is not None else "")


# ContentSettingsPattern::Compare. A smaller number sorts first and, for patterns that match
# the same URL, wins (PREDECESSOR: more specific).
IDENTITY, PREDECESSOR, SUCCESSOR = "IDENTITY", "PREDECESSOR", "SUCCESSOR"
DISJOINT_ORDER_PRE, DISJOINT_ORDER_POST = "DISJOINT_ORDER_PRE", "DISJOINT_ORDER_POST"


def _compare_domain_names(a: str, b: str) -> int:
    """Label by label from the right (``CompareDomainNames``): -1, 0 or 1."""
    left, right = a.split("."), b.split(".")
    while left and right:
        label_a, label_b = left.pop(), right.pop()
        if label_a != label_b:
            return -1 if label_a < label_b else 1
    return (len(left) > 0) - (len(right) > 0)


def _disjoint(result: int) -> str:
    return DISJOINT_ORDER_PRE if result < 0 else DISJOINT_ORDER_POST


def _compare_host(a: ContentPattern, b: ContentPattern) -> str:
    if not a.domain_wildcard and not b.domain_wildcard:
        result = _compare_domain_names(a.host, b.host)
        return IDENTITY if result == 0 else _disjoint(result)
    if a.domain_wildcard and b.domain_wildcard and a.host == b.host:
        return IDENTITY
    if a.domain_wildcard and _is_subdomain_or_equal(b.host, a.host):
        return SUCCESSOR
    if b.domain_wildcard and _is_subdomain_or_equal(a.host, b.host):
        return PREDECESSOR
    return _disjoint(_compare_domain_names(a.host, b.host))


def _compare_specific(a: str | None, b: str | None) -> str:
    """Port, scheme or path: a wildcard (None) is the successor; equal values are identical;
    otherwise the larger string sorts first (DISJOINT_ORDER_PRE)."""
    if a is None or b is None:
        return IDENTITY if a is b else (SUCCESSOR if a is None else PREDECESSOR)
    if a == b:
        return IDENTITY
    return DISJOINT_ORDER_PRE if a > b else DISJOINT_ORDER_POST


def _compare_path(a: ContentPattern, b: ContentPattern) -> str:
    if a.scheme != "file" or b.scheme != "file":
        return IDENTITY
    if a.path_wildcard != b.path_wildcard:
        return SUCCESSOR if a.path_wildcard else PREDECESSOR
    return _compare_specific(a.path or "", b.path or "")


def compare_patterns(a: ContentPattern, b: ContentPattern) -> str:
    """``ContentSettingsPattern::Compare``: host, then port, then scheme, then (file) path; a
    disjoint part decides at once, otherwise the first part that is not identical."""
    if not a.valid or not b.valid:
        return IDENTITY if a.valid == b.valid else (DISJOINT_ORDER_POST if not a.valid else DISJOINT_ORDER_PRE)
    relations = [_compare_host(a, b), _compare_specific(a.port, b.port), _compare_specific(a.scheme, b.scheme),
                 _compare_path(a, b)]
    for relation in relations:
        if relation in (DISJOINT_ORDER_PRE, DISJOINT_ORDER_POST):
            return relation
    return next((relation for relation in relations if relation != IDENTITY), IDENTITY)


def _is_subdomain_or_equal(sub: str, domain: str) -> bool:
    if not domain or sub == domain:
        return True
    return len(sub) > len(domain) and sub.endswith("." + domain)


def content_pattern_matches(pattern: ContentPattern, url: Url) -> bool:
    """``ContentSettingsPattern::Matches`` for an http(s) URL; an invalid pattern matches nothing."""
    if not pattern.valid:
        return False
    if pattern.scheme is not None and pattern.scheme != url.scheme:
        return False
    host = url.host[:-1] if len(url.host) > 1 and url.host.endswith(".") else url.host
    if pattern.domain_wildcard:
        if not _is_subdomain_or_equal(host, pattern.host):
            return False
    elif pattern.host != host:
        return False
    if pattern.scheme in _NON_PORT_SCHEMES:
        return True
    return pattern.port is None or pattern.port == url.effective_port


def _pattern(entry: ContentPattern | str) -> ContentPattern:
    return entry if isinstance(entry, ContentPattern) else parse_content_pattern(entry)


def covers_localhost_any_port(entry: ContentPattern | str) -> bool:
    """True when the pattern matches ``http://localhost:<port>`` for every port."""
    pattern = _pattern(entry)
    if not pattern.valid or pattern.port is not None:
        return False
    return content_pattern_matches(pattern, localhost_url(1))


def matches_localhost_some_port(entry: ContentPattern | str) -> bool:
    """True when the pattern matches ``http://localhost:<port>`` for at least one port."""
    pattern = _pattern(entry)
    if not pattern.valid:
        return False
    if pattern.port is None:
        return content_pattern_matches(pattern, localhost_url(1))
    if not pattern.port or int(pattern.port) > _MAX_PORT:
        return False
    return content_pattern_matches(pattern, localhost_url(int(pattern.port)))


def localhost_ports_named(patterns: list[ContentPattern]) -> set[int]:
    """The ports that patterns name explicitly (1..65535)."""
    ports = set()
    for pattern in patterns:
        if pattern.valid and pattern.port and pattern.port.isdigit() and 0 < int(pattern.port) <= _MAX_PORT:
            ports.add(int(pattern.port))
    return ports


def representative_ports(named: set[int]) -> list[int]:
    """Every named port plus one port no pattern names: together they stand for all ports."""
    other = next(port for port in range(43485, 43485 + len(named) + 2) if port not in named)
    return sorted(named | {other})


def _host_rank(pattern: ContentPattern) -> tuple[int, int]:
    if not pattern.domain_wildcard:
        return (0, 0)
    return (1, -(pattern.host.count(".") + 1) if pattern.host else 0)


def precedence_key(pattern: ContentPattern) -> tuple[tuple[int, int], int, int]:
    """Sort key after ``ContentSettingsPattern::Compare`` for patterns that match the same URL:
    a smaller key is more specific and wins (host first, then port, then scheme)."""
    return (_host_rank(pattern), 0 if pattern.port is not None else 1, 0 if pattern.scheme is not None else 1)


@dataclass(frozen=True)
class PatternPair:
    text: str
    primary: ContentPattern
    secondary: ContentPattern | None  # None = any top-level site (single pattern, or an invalid second one)
    error: str | None = None

    @property
    def valid(self) -> bool:
        return self.primary.valid


def parse_pattern_pair(text: str) -> PatternPair:
    """A policy list entry: one pattern, or ``primary,secondary`` (whitespace trimmed). More than
    two parts is invalid; an invalid secondary becomes "any site", as Chromium's policy provider
    does."""
    if not text:
        return PatternPair(text, _invalid(text, "empty entry"), None, "empty entry")
    parts = [part.strip() for part in text.split(",")]
    if len(parts) > 2:
        return PatternPair(text, _invalid(text, "more than two comma-separated patterns"), None,
                           "more than two comma-separated patterns")
    primary = parse_content_pattern(parts[0])
    secondary = parse_content_pattern(parts[1]) if len(parts) == 2 else None
    if secondary is not None and (not secondary.valid or (secondary.matches_all_hosts and secondary.port is None
                                  and secondary.scheme is None)):
        secondary = None
    return PatternPair(text, primary, secondary, primary.error)


def pair_applies(pair: PatternPair, url: Url, top_level: Url) -> bool:
    if not content_pattern_matches(pair.primary, url):
        return False
    return pair.secondary is None or content_pattern_matches(pair.secondary, top_level)


def pair_precedence_key(pair: PatternPair) -> tuple[tuple[tuple[int, int], int, int], tuple[tuple[int, int], int, int]]:
    wildcard = ((1, 0), 1, 1)
    return precedence_key(pair.primary), (precedence_key(pair.secondary) if pair.secondary else wildcard)


def is_explicit(pair: PatternPair) -> bool:
    """Chromium exempts a site from third-party-cookie blocking only through an explicit rule:
    one whose primary or secondary pattern does not match every host."""
    return not pair.primary.matches_all_hosts or (pair.secondary is not None and not pair.secondary.matches_all_hosts)


# ---------------------------------------------------------------------------------------------
# Chromium AuthServerAllowlist (ProxyBypassRules)

@dataclass(frozen=True)
class AuthRule:
    """One rule of an AuthServerAllowlist. ``kind``: ``hostname`` (glob ``pattern``), ``ip``,
    ``cidr``, ``local`` (``<local>``: names without a dot), ``subtract_loopback``
    (``<-loopback>``), or ``invalid`` (ignored)."""

    text: str
    kind: str
    scheme: str | None = None
    pattern: str = ""
    port: int | None = None
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    error: str | None = None


def _auth_rule(raw: str) -> AuthRule:
    text = raw.strip()
    if text.casefold() == "<local>":
        return AuthRule(text, "local")
    if text.casefold() == "<-loopback>":
        return AuthRule(text, "subtract_loopback")
    rest, scheme = text, None
    separator = rest.find("://")
    if separator >= 0:
        scheme, rest = rest[:separator].lower(), rest[separator + 3:]
        if not scheme:
            return AuthRule(text, "invalid", error="empty scheme")
    if not rest:
        return AuthRule(text, "invalid", error="no host")
    if "/" in rest:
        try:
            return AuthRule(text, "cidr", scheme, network=ipaddress.ip_network(rest.strip("[]"), strict=False))
        except ValueError:
            return AuthRule(text, "invalid", error=f"{rest!r} is not a CIDR block")
    host, port = _host_and_port(rest)
    if host is not None:
        try:
            address = ipaddress.ip_address(host.strip("[]"))
            return AuthRule(text, "ip", scheme, pattern=str(address), port=port,
                            network=ipaddress.ip_network(address))
        except ValueError:
            pass
    pattern, port = rest, None
    colon = rest.rfind(":")
    if colon >= 0:
        digits = rest[colon + 1:]
        if not _SIGNED_INT.fullmatch(digits) or not 0 <= int(digits) <= _MAX_PORT:
            return AuthRule(text, "invalid", error=f"port {digits!r} is not 0..65535")
        pattern, port = rest[:colon], int(digits)
    if pattern.startswith("."):
        pattern = "*" + pattern
    return AuthRule(text, "hostname", scheme, pattern=pattern.lower(), port=port)


def _host_and_port(text: str) -> tuple[str | None, int | None]:
    match = _HOST_AND_PORT.fullmatch(text)
    if match:
        return match.group(1), int(match.group(2)) if match.group(2) else None
    if text.count(":") > 1:  # a bare IPv6 literal
        return text, None
    return None, None


def parse_auth_allowlist(value: str) -> list[AuthRule]:
    """The rules of an AuthServerAllowlist value (``,`` or ``;`` separated), in order, empty
    entries skipped; invalid rules are returned with kind ``invalid``."""
    return [_auth_rule(part) for part in _AUTH_SEPARATORS.split(value) if part.strip()]


def glob_match(text: str, pattern: str) -> bool:
    """``base::MatchPattern``: ``*`` any run of characters, ``?`` one character."""
    regex = "".join(".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern)
    return re.fullmatch(regex, text, re.DOTALL) is not None


def _is_loopback_host(host: str) -> bool:
    if host == LOCALHOST or host.endswith("." + LOCALHOST):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _ip_of(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def auth_rule_result(rule: AuthRule, url: Url) -> str | None:
    """"include", "exclude" or None (no match) for one rule and URL."""
    if rule.kind == "invalid":
        return None
    if rule.kind == "subtract_loopback":
        return "exclude" if _is_loopback_host(url.host) else None
    if rule.kind == "local":
        return "include" if "." not in url.host and _ip_of(url.host) is None else None
    if rule.scheme is not None and rule.scheme != url.scheme:
        return None
    if rule.port is not None and str(rule.port) != url.effective_port:
        return None
    if rule.kind in ("ip", "cidr"):
        address = _ip_of(url.host)
        return "include" if address is not None and rule.network is not None and address in rule.network else None
    return "include" if glob_match(url.host, rule.pattern) else None


def auth_allowlist_decision(rules: list[AuthRule], url: Url) -> tuple[bool, AuthRule | None]:
    """(credentials allowed, the rule that decided) for ``url``; the implicit ``<-loopback>``
    comes first and later rules override earlier ones, as in Chromium."""
    for rule in reversed([AuthRule("<-loopback>", "subtract_loopback"), *rules]):
        result = auth_rule_result(rule, url)
        if result is not None:
            return result == "include", rule
    return False, None


def auth_covers_localhost_any_port(rules: list[AuthRule]) -> bool:
    """True when the allowlist lets the browser send Windows credentials to
    ``http://localhost:<port>`` for every port."""
    named = {rule.port for rule in rules if rule.port is not None}
    other = next(port for port in range(43485, 43485 + len(named) + 2) if port not in named)
    return all(auth_allowlist_decision(rules, localhost_url(port))[0] for port in sorted(named | {other}))


def auth_rule_matches_localhost(rule: AuthRule) -> bool:
    """True when this rule on its own would include ``http://localhost`` on some port."""
    port = rule.port if rule.port is not None else 43485
    return auth_rule_result(rule, localhost_url(port)) == "include"


# ---------------------------------------------------------------------------------------------
# Firefox Cookies policy origins

@dataclass(frozen=True)
class FirefoxOrigin:
    text: str
    valid: bool
    scheme: str = ""
    host: str = ""
    port: str | None = None  # None: no port given (the scheme's default port; see the module doc)
    error: str | None = None

    @property
    def effective_port(self) -> str:
        return str(int(self.port)) if self.port else _DEFAULT_PORTS.get(self.scheme, "")


def parse_firefox_origin(text: str) -> FirefoxOrigin:
    match = _FIREFOX_ORIGIN.fullmatch(text.strip())
    if not match:
        return FirefoxOrigin(text, False, error="not an origin of the form scheme://host[:port]")
    host, _is_ip = canonical_host(match.group(2))
    if not host:
        return FirefoxOrigin(text, False, error="no valid host")
    if match.group(3) is not None and not 0 < int(match.group(3)) <= _MAX_PORT:
        return FirefoxOrigin(text, False, error=f"port {match.group(3)} is not 1..65535")
    return FirefoxOrigin(text, True, match.group(1).lower(), host, match.group(3))


def firefox_origin_matches(origin: FirefoxOrigin, url: Url) -> bool:
    """Firefox permission lookup: same scheme and port (the origin's, or the scheme's default),
    and the host or a parent domain of it."""
    if not origin.valid or origin.scheme != url.scheme:
        return False
    if not _is_subdomain_or_equal(url.host, origin.host):
        return False
    return origin.effective_port == url.effective_port


def firefox_localhost_port(origin: FirefoxOrigin) -> int | None:
    """The one port of ``http://localhost`` this origin covers, or None."""
    if not origin.valid or not origin.effective_port.isdigit():
        return None
    port = int(origin.effective_port)
    return port if firefox_origin_matches(origin, localhost_url(port)) else None


def firefox_matches_localhost_some_port(origin: FirefoxOrigin) -> bool:
    return firefox_localhost_port(origin) is not None
