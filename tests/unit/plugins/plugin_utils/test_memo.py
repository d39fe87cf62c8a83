# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The per-process caches of diagnose (_memo.memo): keys by type and value, fresh copies, eviction."""

from __future__ import annotations

import typing as t

import pytest

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._memo import memo, same


def _counting(maxsize: int = 4, fresh: t.Callable[[t.Any], t.Any] | None = None):
    calls: list[t.Any] = []

    def make(*args: t.Any) -> dict[str, t.Any]:
        calls.append(args)
        return {"args": list(args), "items": [1, 2]}

    wrapped = memo(maxsize)(make) if fresh is None else memo(maxsize, fresh=fresh)(make)
    return wrapped, calls


def test_the_same_arguments_are_worked_out_once() -> None:
    cached, calls = _counting()
    assert cached({"a": 1}, [1, 2]) == cached({"a": 1}, [1, 2]) == {"args": [{"a": 1}, [1, 2]], "items": [1, 2]}
    assert len(calls) == 1
    assert cached.cache_info() == (1, 1, 4, 1)


def test_arguments_equal_in_json_but_of_other_types_are_other_keys() -> None:
    cached, calls = _counting()
    cached([1, 2])
    cached((1, 2))  # a tuple where a list was: the callee must see it (validate_ops refuses tuples)
    cached({1: "x"})
    cached({"1": "x"})
    cached(True)
    cached(1)
    assert len(calls) == 6


def test_a_caller_that_changes_its_result_changes_nothing_cached() -> None:
    cached, _calls = _counting()
    first = cached("x")
    first["items"].append(3)
    assert cached("x")["items"] == [1, 2]


def test_same_hands_out_the_cached_object_for_immutable_results() -> None:
    make_calls: list[str] = []

    @memo(2, fresh=same)
    def encode(text: str) -> bytes:
        make_calls.append(text)
        return text.encode()

    assert encode("a") is encode("a")
    assert make_calls == ["a"]


def test_the_oldest_result_goes_first_when_full() -> None:
    cached, calls = _counting(maxsize=2)
    cached("a")
    cached("b")
    cached("c")  # "a" goes
    cached("b")
    assert len(calls) == 3
    cached("a")
    assert len(calls) == 4
    assert cached.cache_info().currsize == 2


def test_errors_are_raised_and_not_kept() -> None:
    attempts: list[int] = []

    @memo(4)
    def fails(value: int) -> int:
        attempts.append(value)
        raise ValueError(f"bad {value}")

    for _attempt in range(2):
        with pytest.raises(ValueError, match="bad 1"):
            fails(1)
    assert attempts == [1, 1]
    assert fails.cache_info().currsize == 0


def test_arguments_that_cannot_show_themselves_are_worked_out_every_time() -> None:
    class Opaque:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    cached, calls = _counting()
    cached(Opaque())
    cached(Opaque())
    assert len(calls) == 2
    assert cached.cache_info().currsize == 0


def test_cache_clear_and_a_bad_size() -> None:
    cached, calls = _counting()
    cached("a")
    cached.cache_clear()
    assert cached.cache_info() == (0, 0, 4, 0)
    cached("a")
    assert len(calls) == 2
    with pytest.raises(ValueError, match="maxsize must be at least 1"):
        memo(0)(lambda: None)
