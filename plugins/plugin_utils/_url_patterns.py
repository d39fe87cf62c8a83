# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""URL patterns as the browsers read them: pure parsers and matchers, no I/O.

Three grammars, each implemented after its browser's source, never with substring checks:

- Chromium content-settings patterns (``CookiesAllowedForUrls``, ``CookiesBlockedForUrls``,
  ``CookiesSessionOnlyForUrls``): ``parse_content_pattern`` follows
  ``components/content_settings/core/common/content_settings_pattern_parser.cc``
  (``PatternParser::Parse``) and ``content_settings_pattern.cc`` (``Builder::Canonicalize``,
  ``Builder::Validate``, ``Matches``, ``Compare``). Scheme, port and path are optional; no
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
  the scheme required. Inference (not confirmed by a Mozilla source): an origin without a port
  is taken to cover every port of that host, so that ``http://localhost`` (Mozilla's own
  example) is not reported; an explicit port covers that port only.

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
from dataclasses import dataclass

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
    match = re.fullmatch(r"([A-Za-z][A-Za-z0-9+.-]*)://(\[[^\]]*\]|[^/:?#]*)(?::(\d*))?(?:[/?#].*)?", text.strip())
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
    if re.fullmatch(r"0[xX][0-9a-fA-F]*", part):
        return int(part[2:] or "0", 16)
    if re.fullmatch(r"0[0-7]+", part):
        return int(part, 8)
    if re.fullmatch(r"\d+", part) and not (len(part) > 1 and part.startswith("0")):
        return int(part)
    return None


def _looks_numeric(part: str) -> bool:
    return bool(re.fullmatch(r"(0[xX][0-9a-fA-F]*|\d+)", part))


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

@dataclass(frozen=True)
class ContentPattern:
    """One parsed content-settings pattern. ``scheme``/``port`` None = wildcard; ``host`` "" with
    ``domain_wildcard`` = every host. ``error`` says why an invalid pattern is invalid."""

    text: str
    valid: bool
    scheme: str | None = None
    host: str = ""
    domain_wildcard: bool = False
    port: str | None = None
    path: str | None = None
    error: str | None = None

    @property
    def matches_all_hosts(self) -> bool:
        return self.valid and self.domain_wildcard and not self.host


def _invalid(text: str, why: str) -> ContentPattern:
    return ContentPattern(text, False, error=why)


def _split_pattern(spec: str) -> tuple[str, str, str, str] | str:
    """(scheme, host, port, path) pieces as PatternParser::Parse cuts them, or an error text."""
    scheme = ""
    start = 0
    separator = spec.find("://")
    if separator >= 0:
        scheme, start = spec[:separator], separator + 3
    if start >= len(spec):
        return "nothing after the scheme"
    if scheme.lower() == "file":
        slash = spec.find("/", start)
        return (scheme, spec[start:slash], "", spec[slash:]) if slash >= 0 else (scheme, spec[start:], "", "")
    position = start
    if spec[position] == "[":
        position = spec.find("]", start)
        if position < 0:
            return "'[' without ']'"
    colon = spec.find(":", position)
    port = ""
    if colon < 0:
        slash = spec.find("/", start)
        end = len(spec) if slash < 0 else slash
        host = spec[start:end]
        start = end
    else:
        host = spec[start:colon]
        start = colon + 1
        if start < len(spec):
            slash = spec.find("/", start)
            end = len(spec) if slash < 0 else slash
            port = spec[start:end]
            start = end
    slash = spec.find("/", start)
    path = spec[slash:] if slash >= 0 else ""
    return scheme, host, port, path


def parse_content_pattern(text: str) -> ContentPattern:
    """Parse one Chromium content-settings pattern (never raises)."""
    spec = text
    if spec == "*":
        return ContentPattern(text, True, None, "", True, None, None)
    if not spec:
        return _invalid(text, "empty pattern")
    pieces = _split_pattern(spec)
    if isinstance(pieces, str):
        return _invalid(text, pieces)
    raw_scheme, raw_host, raw_port, raw_path = pieces
    scheme = None if raw_scheme in ("", "*") else raw_scheme.lower()
    non_port = scheme in _NON_PORT_SCHEMES
    domain_wildcard = False
    host = raw_host
    if raw_host:
        if raw_host == "*":
            if non_port:
                return _invalid(text, f"'*' host is not allowed with scheme {scheme}")
            domain_wildcard, host = True, ""
        elif raw_host.startswith(_DOMAIN_WILDCARD):
            if non_port:
                return _invalid(text, f"'[*.]' is not allowed with scheme {scheme}")
            domain_wildcard, host = True, raw_host[len(_DOMAIN_WILDCARD):]
        elif "*" in raw_host:
            return _invalid(text, "'*' inside a host name is not a wildcard (use [*.]domain)")
    if raw_port and raw_port != "*" and not raw_port.isdigit():
        return _invalid(text, f"port {raw_port!r} is not '*' or digits")
    port: str | None = raw_port if raw_port and raw_port != "*" else None
    if not raw_port and (non_port or scheme == "file"):
        port = ""
    path = None if not raw_path or raw_path[1:] == "*" else raw_path
    return _validate(text, scheme, host, domain_wildcard, port, path)


def _validate(text: str, scheme: str | None, host: str, domain_wildcard: bool, port: str | None,
              path: str | None) -> ContentPattern:
    if scheme == "file":
        if domain_wildcard or host or port:
            return _invalid(text, "a file:// pattern has no host or port")
        if path is None or path == "/" or "*" in path:
            return _invalid(text, "a file:// pattern needs a full path")
        return ContentPattern(text, True, "file", "", False, "", path)
    canonical = ""
    if host and domain_wildcard and "*" in host:
        host = ""  # Canonicalize clears a host holding '*': "[*.]*.x" matches every host, as in Chromium
    if host:
        canonical, is_ip = canonical_host(host)
        if is_ip and domain_wildcard:
            return _invalid(text, "[*.] cannot be used with an IP address")
        if domain_wildcard and canonical.startswith("."):
            return _invalid(text, "[*.] must not be followed by a dot ([*.].host)")
        if canonical.endswith(".."):
            return _invalid(text, "host ends with two dots")
        if len(canonical) >= 2 and canonical.endswith("."):
            canonical = canonical[:-1]
    if scheme in _NON_PORT_SCHEMES and port == "":
        return ContentPattern(text, bool(canonical), scheme, canonical, False, "", path,
                              None if canonical else "no host")
    if not canonical and not domain_wildcard:
        return _invalid(text, f"host {host!r} is not a valid host name or IP address" if host else "no host")
    if scheme is not None and scheme not in ("http", "https"):
        return _invalid(text, f"scheme {scheme!r} is not http, https or *")
    return ContentPattern(text, True, scheme, canonical, domain_wildcard, port, path)


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
        if not re.fullmatch(r"[+-]?\d+", digits) or not 0 <= int(digits) <= _MAX_PORT:
            return AuthRule(text, "invalid", error=f"port {digits!r} is not 0..65535")
        pattern, port = rest[:colon], int(digits)
    if pattern.startswith("."):
        pattern = "*" + pattern
    return AuthRule(text, "hostname", scheme, pattern=pattern.lower(), port=port)


def _host_and_port(text: str) -> tuple[str | None, int | None]:
    match = re.fullmatch(r"(\[[^\]]+\]|[^:\[\]]+)(?::(\d+))?", text)
    if match:
        return match.group(1), int(match.group(2)) if match.group(2) else None
    if text.count(":") > 1:  # a bare IPv6 literal
        return text, None
    return None, None


def parse_auth_allowlist(value: str) -> list[AuthRule]:
    """The rules of an AuthServerAllowlist value (``,`` or ``;`` separated), in order, empty
    entries skipped; invalid rules are returned with kind ``invalid``."""
    return [_auth_rule(part) for part in re.split(r"[,;]", value) if part.strip()]


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
    port: str | None = None  # None: no port given (taken to cover every port; see the module doc)
    error: str | None = None


def parse_firefox_origin(text: str) -> FirefoxOrigin:
    match = re.fullmatch(r"([A-Za-z][A-Za-z0-9+.-]*)://(\[[^\]]*\]|[^/:?#]*)(?::(\d+))?/?", text.strip())
    if not match:
        return FirefoxOrigin(text, False, error="not an origin of the form scheme://host[:port]")
    host, _is_ip = canonical_host(match.group(2))
    if not host:
        return FirefoxOrigin(text, False, error="no valid host")
    return FirefoxOrigin(text, True, match.group(1).lower(), host, match.group(3))


def firefox_origin_matches(origin: FirefoxOrigin, url: Url) -> bool:
    """Firefox permission lookup: same scheme, the host or a parent domain of it, and (when the
    origin names one) the same port."""
    if not origin.valid or origin.scheme != url.scheme:
        return False
    if not _is_subdomain_or_equal(url.host, origin.host):
        return False
    return origin.port is None or str(int(origin.port)) == url.effective_port


def firefox_covers_localhost_any_port(origin: FirefoxOrigin) -> bool:
    return origin.valid and origin.port is None and firefox_origin_matches(origin, localhost_url(1))


def firefox_matches_localhost_some_port(origin: FirefoxOrigin) -> bool:
    if not origin.valid:
        return False
    port = int(origin.port) if origin.port is not None else 1
    return 0 < port <= _MAX_PORT and firefox_origin_matches(origin, localhost_url(port))
