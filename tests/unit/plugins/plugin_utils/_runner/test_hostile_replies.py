"""A host's reply is data from a machine a standard user may control (issue 17): whatever it
holds, ``parse_reply`` returns checked results or raises ``RunnerError`` with one readable line,
so that host fails alone and never hurts the controller or the other hosts' results."""

from __future__ import annotations

import base64
import gzip
import json
import time
import tracemalloc
import typing as t
import zlib

import pytest

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.operations import OPERATIONS
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.protocol import (
    REPLY_GZIP_PREFIX,
    CleanupError,
    RunnerError,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.reply import (
    _INFLATE_PIECE,
    REPLY_MAX_BYTES,
    REPLY_TYPES,
    parse_reply,
    type_matches,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._text import replace_surrogates

MIB = 1024 * 1024


def _reply(results: list[t.Any], **top: t.Any) -> str:
    return json.dumps({"runner": "nhs_cm", "protocol": 1, "ok": True, "results": results, **top})


def _packed(data: bytes) -> str:
    return REPLY_GZIP_PREFIX + base64.b64encode(data).decode("ascii")


def _bomb(mebibytes: int, level: int = 9) -> bytes:
    """A gzip stream of a reply line padded with ``mebibytes`` MiB of spaces: a few tens of KB."""
    packer = zlib.compressobj(level, zlib.DEFLATED, 31)
    head = packer.compress(b'{"runner": "nhs_cm", "protocol": 1, "ok": true, "results": [], "pad": "')
    block = b" " * MIB
    body = b"".join(packer.compress(block) for _mebibyte in range(mebibytes))
    return head + body + packer.compress(b'"}') + packer.flush()


def _refused(stdout: str | bytes, ops: list[dict[str, t.Any]] | None = None, stderr: str = "") -> str:
    with pytest.raises(RunnerError) as caught:
        parse_reply(stdout, stderr, 0, ops)
    message = str(caught.value)
    assert "\n" not in message and "\r" not in message and len(message) <= 600, message
    return message


# -- size ---------------------------------------------------------------------------------------

def test_a_reply_that_unpacks_to_65_mib_is_refused_in_one_line() -> None:
    bomb = _bomb(65)
    assert len(bomb) < 100 * 1024  # 65 MiB from under 100 KB of gzip
    assert _refused(_packed(bomb) + "\r\n", []) == "the runner's reply unpacks to more than 64 MiB; refused"


def test_a_compressed_reply_is_unpacked_a_piece_at_a_time() -> None:
    bomb = _bomb(160, level=1)  # gzip.decompress would hold all 160 MiB at once
    packed = _packed(bomb)
    tracemalloc.start()
    try:
        started = time.monotonic()
        assert "more than 64 MiB" in _refused(packed, [])
        elapsed = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 80 * MIB, f"{peak / MIB:.0f} MiB held at once"
    assert elapsed < 10


def test_a_reply_up_to_the_limit_is_unpacked() -> None:
    assert REPLY_MAX_BYTES == 64 * MIB
    reply = _reply([], pad=" " * (2 * MIB))
    assert parse_reply(_packed(gzip.compress(reply.encode())), "", 0, []) == []


@pytest.mark.parametrize("size", [_INFLATE_PIECE, 2 * _INFLATE_PIECE, _INFLATE_PIECE + 1])
def test_a_reply_of_a_whole_number_of_pieces_is_unpacked(size: int) -> None:
    head = _reply([], pad="")[:-2]  # ..."pad": "
    reply = head + " " * (size - len(head) - 2) + '"}'
    assert len(reply) == size
    assert parse_reply(_packed(gzip.compress(reply.encode())), "", 0, []) == []


def test_a_plain_reply_larger_than_the_limit_is_refused() -> None:
    huge = _reply([], pad="x" * (64 * MIB))
    assert _refused(huge, []) == "the runner's reply is larger than 64 MiB; refused"
    assert _refused(huge.encode(), []) == "the runner's reply is larger than 64 MiB; refused"


@pytest.mark.parametrize(("data", "why"), [
    (gzip.compress(_reply([]).encode())[:-9], "ends before the end of its gzip stream"),
    (gzip.compress(_reply([]).encode()) + b"more", "data after the end of the gzip stream"),
    (gzip.compress(_reply([]).encode())[:10], "ends before the end of its gzip stream"),
    (b"", "ends before the end of its gzip stream"),
    (zlib.compress(_reply([]).encode()), "incorrect header check"),
], ids=["truncated", "trailing-data", "header-only", "empty", "zlib-not-gzip"])
def test_a_broken_gzip_stream_is_one_readable_line(data: bytes, why: str) -> None:
    message = _refused(_packed(data), [])
    assert message.startswith("the runner's compressed reply cannot be unpacked (") and why in message


def test_a_compressed_reply_of_non_ascii_text_is_refused() -> None:
    message = _refused("NHS-CM-GZIP:bm90IGFzY2lp\u00e9==", [])
    assert message.startswith("the runner's compressed reply cannot be unpacked")


def test_json_nested_too_deeply_is_one_readable_line() -> None:
    deep = '{"runner": "nhs_cm", "protocol": 1, "ok": true, "results": ' + "[" * 200000 + "]" * 200000 + "}"
    assert _refused(deep, []) == "the runner's reply is not usable JSON: it is nested too deeply"
    assert _refused(_packed(gzip.compress(deep.encode())), []).endswith("nested too deeply")


def test_a_huge_stderr_is_cut_to_one_line() -> None:
    stderr = "#< CLIXML\r\n" + "x" * (8 * MIB)
    started = time.monotonic()
    message = _refused("", stderr=stderr)
    assert time.monotonic() - started < 5
    assert message.startswith("the runner returned no output (exit code 0): #< CLIXML xxx")


# -- field types ----------------------------------------------------------------------------------

SAMPLES: dict[str, t.Any] = {"str": "x", "int": 7, "bool": True, "dict": {}, "list": [], "null": None}
#: Values that are no JSON type of the table's and every JSON type, for the wrong-type cases.
WRONG: list[t.Any] = [True, 1, 1.5, "1", [], {}, None]
SHAPED = {  # dict fields whose content the collection relies on: a valid sample of each
    ("backup_load", "backup"): {"id": "b1", "saved_at": "2026-11-25T03:40:00Z", "entries": [], "missing_keys": []},
    ("reg_write", "previous"): {"type": "REG_DWORD", "data": 1},
}


def _sample(spec: str) -> t.Any:
    return SAMPLES[spec.split("|")[0]]


def _item(items: dict[str, str]) -> dict[str, t.Any]:
    return {key: _sample(spec) for key, spec in items.items()}


def valid_result(name: str) -> dict[str, t.Any]:
    """An ok result of ``name`` with every reply field of its declared type (lists with one item)."""
    result: dict[str, t.Any] = {"ok": True}
    for field, spec in OPERATIONS[name]["reply"].items():
        value = SHAPED.get((name, field), _sample(spec["type"]))
        if isinstance(spec.get("items"), dict):
            value = [_item(spec["items"])]
        result[field] = value
    return result


def _wrong(spec: str) -> t.Any:
    return next(value for value in WRONG if not type_matches(spec, value))


def test_every_declared_reply_type_is_known_to_the_checks() -> None:
    for name, op in OPERATIONS.items():
        for field, spec in op["reply"].items():
            assert all(part in REPLY_TYPES for part in spec["type"].split("|")), (name, field)
            items = spec.get("items")
            specs = [items] if isinstance(items, str) else list((items or {}).values())
            assert all(part in REPLY_TYPES for item in specs for part in item.split("|")), (name, field)


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_a_result_of_the_declared_types_is_accepted(name: str) -> None:
    result = valid_result(name)
    assert parse_reply(_reply([result]), "", 0, [{"op": name}]) == [result]


FIELDS = [(name, field) for name in sorted(OPERATIONS) for field in OPERATIONS[name]["reply"]]


@pytest.mark.parametrize(("name", "field"), FIELDS, ids=[f"{n}.{f}" for n, f in FIELDS])
def test_a_field_of_the_wrong_type_fails_the_host_naming_op_field_and_type(name: str, field: str) -> None:
    spec = OPERATIONS[name]["reply"][field]["type"]
    result = dict(valid_result(name), **{field: _wrong(spec)})
    message = _refused(_reply([result]), [{"op": name}])
    expected = " or ".join(spec.split("|"))
    assert message.startswith(f"the runner's reply is malformed: results[0] ({name}) field '{field}' must be "
                              f"{expected}, not ")


ITEMS = [(name, field, key) for name, field in FIELDS
         if isinstance(OPERATIONS[name]["reply"][field].get("items"), dict)
         for key in OPERATIONS[name]["reply"][field]["items"]]


@pytest.mark.parametrize(("name", "field", "key"), ITEMS, ids=[f"{n}.{f}.{k}" for n, f, k in ITEMS])
def test_a_list_element_of_the_wrong_type_fails_the_host(name: str, field: str, key: str) -> None:
    spec = OPERATIONS[name]["reply"][field]["items"][key]
    result = valid_result(name)
    result[field] = [_item(OPERATIONS[name]["reply"][field]["items"]), dict(result[field][0], **{key: _wrong(spec)})]
    message = _refused(_reply([result]), [{"op": name}])
    assert message.startswith(f"the runner's reply is malformed: results[0] ({name}) {field}[1].{key} must be "
                              f"{' or '.join(spec.split('|'))}, not ")


@pytest.mark.parametrize(("name", "field", "key", "value", "shown"), [
    ("process_list", "processes", "pid", True, "bool"),  # a bool is no int
    ("process_list", "processes", "session", "1", "str"),
    ("process_list", "processes", "user", 5, "int"),
    ("tcp_listeners", "listeners", "port", 43487.0, "float"),
    ("user_hives_read", "profiles", "keys", [], "list"),
    ("user_hives_read", "profiles", "loaded", 1, "int"),  # an int is no bool
    ("service_query", "services", "pid", None, "null"),
])
def test_the_item_types_the_brief_names(name: str, field: str, key: str, value: t.Any, shown: str) -> None:
    result = valid_result(name)
    result[field] = [dict(result[field][0], **{key: value})]
    expected = " or ".join(OPERATIONS[name]["reply"][field]["items"][key].split("|"))
    assert _refused(_reply([result]), [{"op": name}]).endswith(f"{field}[0].{key} must be {expected}, not {shown}")


def test_a_list_element_that_is_no_object_fails_the_host() -> None:
    result = {"ok": True, "listeners": ["127.0.0.1:43487"]}
    assert _refused(_reply([result]), [{"op": "tcp_listeners"}]).endswith(
        "(tcp_listeners) listeners[0] must be an object with address, port, pid, not str")


def test_error_results_are_checked_too() -> None:
    kind = {"ok": False, "error": "evil\nkind" * 100, "message": "x"}
    assert "has unknown error kind 'evil" in _refused(_reply([kind]), [{"op": "os_info"}])
    message = {"ok": False, "error": "failed", "message": {"deep": []}}
    assert _refused(_reply([message]), [{"op": "os_info"}]).endswith("field 'message' must be str or null, not dict")
    fine = {"ok": False, "error": "busy", "message": None}
    assert parse_reply(_reply([fine]), "", 0, [{"op": "os_info"}]) == [fine]


# -- registry nodes -------------------------------------------------------------------------------

def _reg(values: t.Any = None, subkeys: t.Any = None, **extra: t.Any) -> dict[str, t.Any]:
    return {"ok": True, "exists": True, "values": {} if values is None else values,
            "subkeys": {} if subkeys is None else subkeys, **extra}


REG = [{"op": "reg_read", "key": "HKLM\\SOFTWARE\\X", "depth": 4}]
GOOD_VALUES = {"": {"type": "REG_SZ", "data": "a"}, "e": {"type": "REG_EXPAND_SZ", "data": "%x%"},
               "m": {"type": "REG_MULTI_SZ", "data": ["a", "b"]}, "d": {"type": "REG_DWORD", "data": 4294967295},
               "q": {"type": "REG_QWORD", "data": 2 ** 64 - 1}, "b": {"type": "REG_BINARY", "data": "00ff"},
               "n": {"type": "REG_NONE", "data": None}}


def _deep(levels: int) -> dict[str, t.Any]:
    node: dict[str, t.Any] = {"values": dict(GOOD_VALUES), "subkeys": {"below": None}}
    for _round in range(levels):
        node = {"values": {}, "subkeys": {"k": node, "denied": {"values": {}, "subkeys": {}, "error": "access_denied"}}}
    return node


def test_registry_nodes_of_the_documented_shape_are_accepted() -> None:
    result = _reg(GOOD_VALUES, {"s": _deep(3)})
    assert parse_reply(_reply([result]), "", 0, REG) == [result]


@pytest.mark.parametrize(("result", "where"), [
    (_reg({"v": "REG_SZ"}), "values['v'] must be a value {type, data}, not str"),
    (_reg({"v": {"type": "REG_EVIL", "data": 1}}),
     "values['v'].type must be one of REG_SZ, REG_EXPAND_SZ, REG_MULTI_SZ, REG_DWORD, REG_QWORD, REG_BINARY, "
     "REG_NONE, not 'REG_EVIL'"),
    (_reg({"v": {"type": None, "data": 1}}), "values['v'].type must be one of REG_SZ"),
    (_reg({"v": {"type": "REG_DWORD", "data": "1"}}), "values['v'].data must be int for REG_DWORD, not str"),
    (_reg({"v": {"type": "REG_DWORD", "data": True}}), "values['v'].data must be int for REG_DWORD, not bool"),
    (_reg({"v": {"type": "REG_MULTI_SZ", "data": ["a", 1]}}), "values['v'].data must be list[str] for REG_MULTI_SZ"),
    (_reg({"v": {"type": "REG_SZ"}}), "values['v'].data must be str for REG_SZ, not null"),
    (_reg({"v": {"type": "REG_BINARY", "data": []}}), "values['v'].data must be str or null for REG_BINARY"),
    (_reg(subkeys={"s": "x"}), "subkeys['s'] must be a key {values, subkeys}, not str"),
    (_reg(subkeys={"s": {"values": {}}}), "subkeys['s'].subkeys must be dict, not null"),
    (_reg(subkeys={"s": {"values": [], "subkeys": {}}}), "subkeys['s'].values must be dict, not list"),
    (_reg(subkeys={"s": {"values": {}, "subkeys": {}, "error": 5}}), "subkeys['s'].error must be str or null"),
    (_reg(subkeys={"s": {"values": {"x\ny": {"type": "REG_SZ", "data": 1}}, "subkeys": {}}}),
     "subkeys['s'].values['x\\ny'].data must be str for REG_SZ, not int"),
    (_reg(subkeys={"s": _deep(5)}), "must be null (a read goes at most 4 levels down), not dict"),
], ids=["value-not-object", "unknown-type", "type-null", "dword-str", "dword-bool", "multi-sz-int", "no-data",
        "binary-list", "subkey-str", "subkey-no-subkeys", "subkey-values-list", "subkey-error-int",
        "name-with-newline", "too-deep"])
def test_a_registry_node_of_the_wrong_shape_fails_the_host(result: dict[str, t.Any], where: str) -> None:
    message = _refused(_reply([result]), REG)
    assert message.startswith("the runner's reply is malformed: results[0] (reg_read) ")
    assert where in message


def test_the_keys_of_user_hives_are_checked_as_nodes() -> None:
    profile = {"sid": "S-1-5-21-1-2-3-1001", "user": None, "path": None, "loaded": True, "mounted_as": None,
               "error": None, "keys": {"Software\\X": {"exists": True, "values": dict(GOOD_VALUES), "subkeys": {},
                                                       "error": None}}}
    ops = [{"op": "user_hives_read", "paths": [["Software\\X", 0]]}]
    good = {"ok": True, "profiles": [profile]}
    assert parse_reply(_reply([good]), "", 0, ops) == [good]
    for node, where in ((None, "keys['Software\\\\X'] must be a key {values, subkeys}, not null"),
                        ({"values": {}, "subkeys": {}, "error": None}, "keys['Software\\\\X'].exists must be bool"),
                        ({"exists": "yes", "values": {}, "subkeys": {}}, ".exists must be bool, not str"),
                        ({"exists": True, "values": {"v": {"type": "REG_SZ", "data": 1}}, "subkeys": {}},
                         "keys['Software\\\\X'].values['v'].data must be str for REG_SZ")):
        bad = {"ok": True, "profiles": [dict(profile, keys={"Software\\X": node})]}
        message = _refused(_reply([bad]), ops)
        assert message.startswith("the runner's reply is malformed: results[0] (user_hives_read) profiles[0].")
        assert where in message


@pytest.mark.parametrize(("backup", "where"), [
    ({"id": "b1", "saved_at": "t", "entries": {}, "missing_keys": []}, "backup.entries must be list, not dict"),
    ({"id": "b1", "saved_at": "t", "entries": ["reg"], "missing_keys": []},
     "backup.entries[0] must be an entry {kind, ...}, not str"),
    ({"id": "b1", "saved_at": "t", "entries": [], "missing_keys": [{"key": 1, "view": "64"}]},
     "backup.missing_keys[0] must be {key: str, view: str}, not dict"),
    ({"saved_at": "t", "entries": [], "missing_keys": []}, "backup.id must be str, not null"),
])
def test_a_backup_of_the_wrong_shape_fails_the_host(backup: dict[str, t.Any], where: str) -> None:
    message = _refused(_reply([{"ok": True, "backup": backup}]), [{"op": "backup_load", "id": "b1"}])
    assert message == f"the runner's reply is malformed: results[0] (backup_load) {where}"


def test_the_previous_value_of_a_write_is_checked() -> None:
    ops = [{"op": "reg_write", "key": "HKLM\\SOFTWARE\\X", "name": "v", "type": "REG_SZ", "data": "a"}]
    assert _refused(_reply([{"ok": True, "previous": {"type": "REG_SZ", "data": 1}, "created_key": False}]),
                    ops).endswith("(reg_write) previous.data must be str for REG_SZ, not int")


# -- surrogates -----------------------------------------------------------------------------------

def test_unpaired_surrogates_in_a_reply_become_replacement_characters() -> None:
    odd = {"ok": True, "files": [{"path": "C:\\Users\\\ud800odd\\x.exe", "exists": True, "version": None}]}
    text = _reply([odd])  # json.dumps writes the surrogate as \ud800
    assert "\\ud800" in text
    for stdout in (text, _packed(gzip.compress(text.encode("ascii"))), text.replace("\\ud800", "\ud800")):
        (result,) = parse_reply(stdout, "", 0, [{"op": "file_info", "paths": ["C:\\x.exe"]}])
        assert result["files"][0]["path"] == "C:\\Users\\\ufffdodd\\x.exe"
        json.dumps(result, ensure_ascii=False).encode("utf-8")  # strict: no surrogate is left


def test_surrogates_in_names_are_replaced_and_pairs_kept() -> None:
    values = {"\udc80name": {"type": "REG_SZ", "data": "\U0001f600 \udbff"}, "b": {"type": "REG_SZ", "data": "x"}}
    (result,) = parse_reply(_reply([_reg(values)]), "", 0, REG)
    assert list(result["values"]) == ["\ufffdname", "b"]  # the order is kept
    assert result["values"]["\ufffdname"]["data"] == "\U0001f600 \ufffd"


def test_replace_surrogates_walks_without_recursion() -> None:
    deep: list[t.Any] = ["\ud800"]
    for _round in range(50000):
        deep = [deep]
    replace_surrogates(deep)
    inner = deep
    while isinstance(inner[0], list):
        inner = inner[0]
    assert inner == ["\ufffd"]


def test_a_failure_message_with_a_surrogate_is_encodable() -> None:
    refused = _reply([], ok=False, error="failed", message="cannot read C:\\\ud800")
    assert _refused(refused).encode("utf-8").endswith("C:\\\ufffd".encode())


# -- the top level --------------------------------------------------------------------------------

def test_busy_says_another_run_is_in_progress() -> None:
    busy = _reply([], ok=False, error="busy", message="the mutex Global\\nhs_cm is held")
    assert _refused(busy) == ("another run of nhs_cm.remediation holds this PC, so nothing was done; run again "
                              "when it has finished (the mutex Global\\nhs_cm is held)")
    assert _refused(_reply([], ok=False, error="busy")) == ("another run of nhs_cm.remediation holds this PC, so "
                                                            "nothing was done; run again when it has finished")


def test_an_unknown_failure_kind_is_shown_short_on_one_line() -> None:
    message = _refused(_reply([], ok=False, error="x\n" * 5000, message="m"))
    assert message.startswith("the runner refused the request (unknown error kind 'x\\nx\\n")
    assert message.endswith(": m")
    assert _refused(_reply([], ok=False, error=["a"], message="m")) == (
        "the runner refused the request (unknown error kind list): m")


def test_a_foreign_protocol_value_is_shown_short() -> None:
    assert _refused(_reply([], protocol="9" * 10000)).startswith("the runner speaks protocol '999")
    assert len(_refused(_reply([], protocol="9" * 10000))) < 120
    assert _refused(_reply([], protocol={"a": 1})) == "the runner speaks protocol dict, this collection 1"


def test_a_cleanup_error_still_gives_the_results() -> None:
    os_info = {"ok": True, "product": "p", "version": "v", "computer_name": "c", "emulated": False}
    with pytest.raises(CleanupError) as caught:
        parse_reply(_reply([os_info], cleanup_error="the hive HKU\\nhs_cm_1 stays loaded\n(in use)"), "", 0,
                    [{"op": "os_info"}])
    assert str(caught.value) == ("the operations ran, but the runner's cleanup failed: the hive HKU\\nhs_cm_1 "
                                 "stays loaded (in use)")
    assert caught.value.results == [os_info]
