# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Per-process caches of pure functions whose arguments are data (dicts and lists).

``functools.lru_cache`` needs hashable arguments; diagnose's options and operations are dicts
and lists. ``memo`` keeps a function's results by ``repr`` of its arguments instead: types and
values, so a tuple and a list, or the dict keys ``1`` and ``'1'``, are different keys (a JSON key
would make them one, and hand the second caller the result worked out for the first). Each call gets
``fresh(result)``, so a caller that changes what it got back changes nothing cached. Arguments
whose ``repr`` fails are not cached. The oldest result goes first when ``maxsize`` are kept.

Ansible forks a worker per host and task, and a worker keeps nothing of its own when it exits:
these caches pay off because diagnose fills them in the main process before the forks
(``prepare_before_fork`` in _diagnose/run.py; docs/performance.md).
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import copy
import functools
import marshal
import typing as t

R = t.TypeVar("R")


class CacheInfo(t.NamedTuple):
    hits: int
    misses: int
    maxsize: int
    currsize: int


class Memo(t.Generic[R]):
    """``make`` with its results kept by ``repr`` of the arguments (module docstring)."""

    def __init__(self, make: t.Callable[..., R], maxsize: int, fresh: t.Callable[[R], R]) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, not {maxsize}")
        self._make = make
        self._maxsize = maxsize
        self._fresh = fresh
        self._results: dict[str, R] = {}
        self._hits = 0
        self._misses = 0
        functools.update_wrapper(self, make)

    def __call__(self, *args: t.Any) -> R:
        try:
            key = repr(args)
        except Exception:  # an argument that cannot show itself: work it out every time
            return self._make(*args)
        if key in self._results:
            self._hits += 1
            return self._fresh(self._results[key])
        self._misses += 1
        result = self._make(*args)  # raises before anything is kept
        if len(self._results) >= self._maxsize:
            del self._results[next(iter(self._results))]
        self._results[key] = result
        return self._fresh(result)

    def cache_info(self) -> CacheInfo:
        return CacheInfo(self._hits, self._misses, self._maxsize, len(self._results))

    def cache_clear(self) -> None:
        self._results.clear()
        self._hits = self._misses = 0


def copy_data(value: R) -> R:
    """A deep copy of ``value``: through ``marshal`` when it is plain data (dicts, lists, tuples,
    str, int, ... - several times faster than ``copy.deepcopy``), else ``copy.deepcopy``."""
    try:
        return t.cast(R, marshal.loads(marshal.dumps(value)))
    except ValueError:  # an object marshal does not know (a dataclass, ...)
        return copy.deepcopy(value)


def memo(maxsize: int, fresh: t.Callable[[t.Any], t.Any] = copy_data
         ) -> t.Callable[[t.Callable[..., R]], Memo[R]]:
    """Decorator: ``@memo(32)``; ``fresh=same`` for a result nobody can change (bytes, str)."""
    return lambda make: Memo(make, maxsize, fresh)


def same(value: R) -> R:
    """``fresh`` for immutable results: the cached object itself."""
    return value
