"""Extract the test vectors of Chromium's content-settings pattern unit tests as data.

Usage::

    python tools/chromium_pattern_vectors.py PATTERN_UNITTEST PARSER_UNITTEST COMMITS_JSON > OUT.json

``PATTERN_UNITTEST`` and ``PARSER_UNITTEST`` are copies of Chromium's
``components/content_settings/core/common/content_settings_pattern_unittest.cc`` and
``content_settings_pattern_parser_unittest.cc``; ``COMMITS_JSON`` is ``{"pattern": "<sha>",
"parser": "<sha>"}``, the chromium/chromium commits they were read at. The output is the fixture
``tests/unit/fixtures/chromium_content_settings_vectors.json``, read by
``tests/unit/plugins/plugin_utils/_diagnose/models/test_chromium_pattern_vectors.py``.

Only data is taken (pattern strings, URLs, expected results), each with its test name and line.
A statement is one vector when it has one of these forms (a variable assigned
``Pattern("...")`` or ``ContentSettingsPattern::FromString("...")`` in the same test is
replaced by that call first):

- ``EXPECT_TRUE|FALSE(Pattern("p").IsValid())`` -> ``valid``
- ``EXPECT_STREQ|EQ("c", Pattern("p").ToString()...)`` -> ``to_string``
- ``EXPECT_TRUE|FALSE(Pattern("p").Matches(GURL("u")))`` -> ``matches``
- ``EXPECT_EQ(ContentSettingsPattern::R, Pattern("a").Compare(Pattern("b")))`` -> ``compare``
- ``EXPECT_TRUE|FALSE(Pattern("a") OP Pattern("b"))`` with OP ``==`` ``!=`` ``<`` ``>`` -> ``operator``
- a ``PatternParser::Parse("p", &builder)`` after its mock's ``EXPECT_CALL``\\ s -> ``parse``
  (the builder calls it must make), or after a real builder whose ``Build().IsValid()`` is
  checked -> ``valid``
- each spec of ``IdempotencyOfCanonicalization`` -> ``idempotent``

Every other ``EXPECT_`` statement is listed under ``not_expressible`` with its test, line and
the Chromium API it exercises (no code is copied, only the data above).
"""

from __future__ import annotations

import json
import pathlib
import re
import sys
import typing as t

PATTERN_FILE = "components/content_settings/core/common/content_settings_pattern_unittest.cc"
PARSER_FILE = "components/content_settings/core/common/content_settings_pattern_parser_unittest.cc"

_LITERAL = r'"((?:[^"\\]|\\.)*)"'
_PATTERN = r'Pattern\(\s*' + _LITERAL + r'\s*\)'
_TEST = re.compile(r"TEST\(\s*(\w+),\s*(\w+)\s*\)")


def c_string(literal: str) -> str:
    """The text of a C string literal's body (``\\xHH`` bytes decoded as UTF-8)."""
    data = bytearray()
    index = 0
    while index < len(literal):
        char = literal[index]
        if char == "\\" and literal[index + 1] == "x":
            data.append(int(literal[index + 2:index + 4], 16))
            index += 4
        elif char == "\\":
            data += literal[index + 1].encode()
            index += 2
        else:
            data += char.encode()
            index += 1
    return data.decode("utf-8")


def _without_comment(line: str) -> str:
    """The line without a trailing ``//`` comment (one inside a string literal stays)."""
    quoted = False
    index = 0
    while index < len(line):
        char = line[index]
        if char == "\\" and quoted:
            index += 2
            continue
        if char == '"':
            quoted = not quoted
        elif not quoted and line.startswith("//", index):
            return line[:index].rstrip()
        index += 1
    return line


def statements(text: str) -> t.Iterator[tuple[int, str, str]]:
    """(first line, test name, statement joined on one line) for each statement inside a TEST."""
    test = ""
    buffer: list[str] = []
    start = 0
    pending_test = ""
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("TEST("):
            pending_test = stripped
        elif pending_test:
            pending_test += " " + stripped
        if pending_test:
            match = _TEST.search(pending_test)
            if match:
                test, pending_test = match.group(2), ""
            continue
        if not stripped or stripped.startswith("//") or stripped in ("{", "}"):
            continue
        if not buffer:
            start = number
        code = _without_comment(stripped)
        buffer.append(code)
        if code.endswith((";", "{")):
            joined = re.sub(r'"\s+"', "", " ".join(buffer))  # adjacent literals concatenate
            yield start, test, joined
            buffer = []


def _resolve(statement: str, variables: dict[str, str]) -> str:
    statement = statement.replace("ContentSettingsPattern::FromString(", "Pattern(")
    statement = re.sub(r"Pattern\(std::string\(\)\)", 'Pattern("")', statement)
    for name, literal in variables.items():
        statement = re.sub(rf"(?<![\w\"]){name}(?=\s*\.)", f'Pattern("{literal}")', statement)
        statement = re.sub(rf"\(\s*{name}\s*\)", f'(Pattern("{literal}"))', statement)
    return statement


def _assignment(statement: str, variables: dict[str, str], unknown: dict[str, str]) -> bool:
    """Record ``name = Pattern("...")`` in ``variables``; any other value in ``unknown`` (with
    where it comes from, as the reason its vectors cannot be expressed)."""
    declared = re.fullmatch(r"ContentSettingsPattern\s+(\w+);", statement)
    if declared:
        unknown[declared.group(1)] = "default-constructed pattern"
        return True
    match = re.fullmatch(r"(?:ContentSettingsPattern\s+)?(\w+)\s*=\s*(.*);", statement)
    if not match:
        return False
    name, value = match.group(1), match.group(2)
    literal = re.fullmatch(r"(?:ContentSettingsPattern::FromString|Pattern)\(\s*" + _LITERAL + r"\s*\)", value)
    variables.pop(name, None)
    unknown.pop(name, None)
    if literal:
        variables[name] = literal.group(1)
    else:
        unknown[name] = _reason(value)
    return True


def _vector(statement: str) -> dict[str, t.Any] | None:
    forms: list[tuple[str, t.Callable[[re.Match[str]], dict[str, t.Any]]]] = [
        (r"EXPECT_(TRUE|FALSE)\(\s*(!?)" + _PATTERN + r"\s*\.IsValid\(\)\);",
         lambda m: {"kind": "valid", "pattern": c_string(m.group(3)),
                    "expect": (m.group(1) == "TRUE") != (m.group(2) == "!")}),
        (r"EXPECT_(?:STREQ|EQ)\(\s*(?:std::string\()?" + _LITERAL + r"\)?,\s*" + _PATTERN
         + r"\s*\.ToString\(\)(?:\.c_str\(\))?\);",
         lambda m: {"kind": "to_string", "pattern": c_string(m.group(2)), "expect": c_string(m.group(1))}),
        (r"EXPECT_(TRUE|FALSE)\(\s*" + _PATTERN + r"\s*\.Matches\(\s*GURL\(\s*" + _LITERAL + r"\s*\)\)\);",
         lambda m: {"kind": "matches", "pattern": c_string(m.group(2)), "url": c_string(m.group(3)),
                    "expect": m.group(1) == "TRUE"}),
        (r"EXPECT_EQ\(\s*ContentSettingsPattern::(\w+),\s*" + _PATTERN + r"\s*\.Compare\(\s*" + _PATTERN
         + r"\s*\)\);",
         lambda m: {"kind": "compare", "pattern": c_string(m.group(2)), "other": c_string(m.group(3)),
                    "expect": m.group(1)}),
        (r"EXPECT_(TRUE|FALSE)\(\s*" + _PATTERN + r"\s*(==|!=|<|>)\s*" + _PATTERN + r"\s*\);",
         lambda m: {"kind": "operator", "pattern": c_string(m.group(2)), "operator": m.group(3),
                    "other": c_string(m.group(4)), "expect": m.group(1) == "TRUE"}),
    ]
    for regex, make in forms:
        match = re.fullmatch(regex, statement)
        if match:
            return make(match)
    return None


_CALL = re.compile(r"EXPECT_CALL\(builder,\s*(\w+)\((?:" + _LITERAL + r")?\)\)")


def _reason(statement: str) -> str:
    for needle, reason in (("FromURLToSchemefulSitePattern", "FromURLToSchemefulSitePattern"),
                           ("FromURLNoWildcard", "FromURLNoWildcard"), ("FromURL", "FromURL"),
                           ("Wildcard()", "Wildcard()"), ("ToRepresentativeUrl", "ToRepresentativeUrl"),
                           ("MatchesSingleOrigin", "MatchesSingleOrigin"), ("GetScheme", "GetScheme"),
                           ("HasDomainWildcard", "HasDomainWildcard"),
                           ("ToDomainWildcardPattern", "ToDomainWildcardPattern"),
                           ("ToHostOnlyPattern", "ToHostOnlyPattern"), ("less(", "CompareDomains"),
                           ("ContainerEq", "CompareDomains"), ("IntPort", "GURL"), ("url.port", "GURL"),
                           ("PatternParser::ToString", "SerializePatterns"),
                           ("ContentSettingsPattern()", "default-constructed pattern"),
                           ("pattern_str", "loop over a list of chrome:// patterns"),
                           ("->Build()", "built without the parser"), ("GURL(", "GURL")):
        if needle in statement:
            return reason
    return "other"


def _pattern_file(text: str) -> tuple[list[dict[str, t.Any]], list[dict[str, t.Any]]]:
    vectors, skipped = [], []
    variables: dict[str, str] = {}
    unknown: dict[str, str] = {}
    current = ""
    for line, test, statement in statements(text):
        if test != current:
            current, variables, unknown = test, {}, {}
        if not statement.startswith("EXPECT_"):
            _assignment(statement, variables, unknown)
            continue
        vector = _vector(_resolve(statement, variables))
        where = {"file": PATTERN_FILE, "test": f"ContentSettingsPatternTest.{test}", "line": line}
        if vector is None:
            origin = next((why for name, why in unknown.items() if re.search(rf"\b{name}\b", statement)), None)
            skipped.append({**where, "reason": origin or _reason(statement)})
        else:
            vectors.append({**where, **vector})
    return vectors, skipped


def _parser_file(text: str) -> tuple[list[dict[str, t.Any]], list[dict[str, t.Any]]]:
    vectors, skipped = [], []
    calls: list[list[str]] = []
    in_specs = False
    for line, test, statement in statements(text):
        where = {"file": PARSER_FILE, "test": f"ContentSettingsPatternParserTest.{test}", "line": line}
        call = _CALL.match(statement)
        if call:
            calls.append([call.group(1)] + ([c_string(call.group(2))] if call.group(2) is not None else []))
            continue
        parse = re.match(r"content_settings::PatternParser::Parse\(\s*" + _LITERAL + r",\s*(&builder|real_builder)",
                         statement)
        if parse and parse.group(2) == "&builder":
            vectors.append({**where, "kind": "parse", "pattern": c_string(parse.group(1)), "calls": calls})
            calls = []
        elif parse:
            vectors.append({**where, "kind": "valid", "pattern": c_string(parse.group(1)), "expect": False})
        elif statement.startswith("const std::string pattern_specs[]"):
            in_specs = True
        elif in_specs:
            for literal in re.findall(_LITERAL, statement):
                vectors.append({**where, "kind": "idempotent", "pattern": c_string(literal)})
            in_specs = not statement.endswith("};")
        elif statement.startswith("EXPECT_") and "real_builder->Build().IsValid()" not in statement:
            reason = "idempotent" if test == "IdempotencyOfCanonicalization" else _reason(statement)
            skipped.append({**where, "reason": reason})
    return vectors, skipped


def _specs(text: str) -> list[tuple[int, str]]:
    """The lines of the pattern_specs array (one literal a line), for ``idempotent`` vectors."""
    lines = text.splitlines()
    first = next(index for index, line in enumerate(lines) if "pattern_specs[]" in line)
    found = []
    for index in range(first + 1, len(lines)):
        if lines[index].strip().startswith("};"):
            break
        for literal in re.findall(_LITERAL, lines[index]):
            found.append((index + 1, c_string(literal)))
    return found


def main(argv: list[str]) -> int:
    pattern_text = pathlib.Path(argv[0]).read_text(encoding="ascii")
    parser_text = pathlib.Path(argv[1]).read_text(encoding="ascii")
    commits = json.loads(pathlib.Path(argv[2]).read_text(encoding="utf-8"))
    vectors, skipped = _pattern_file(pattern_text)
    parser_vectors, parser_skipped = _parser_file(parser_text)
    specs = dict((literal, number) for number, literal in _specs(parser_text))
    for vector in parser_vectors:
        if vector["kind"] == "idempotent":
            vector["line"] = specs[vector["pattern"]]
    out = {
        "source": {"repository": "https://github.com/chromium/chromium",
                   "files": {PATTERN_FILE: commits["pattern"], PARSER_FILE: commits["parser"]},
                   "extracted_by": "tools/chromium_pattern_vectors.py"},
        "vectors": vectors + parser_vectors,
        "not_expressible": skipped + parser_skipped,
    }
    sys.stdout.write(dump(out))
    return 0


def dump(out: dict[str, t.Any]) -> str:
    """JSON with one vector a line (small, and a diff shows which vectors changed)."""
    lines = ["{", f' "source": {json.dumps(out["source"], ensure_ascii=False)},']
    for index, key in enumerate(("vectors", "not_expressible")):
        rows = [f"  {json.dumps(item, ensure_ascii=False)}" for item in out[key]]
        lines.append(f' "{key}": [\n' + ",\n".join(rows) + "\n ]" + ("," if index == 0 else ""))
    return "\n".join(lines) + "\n}\n"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
