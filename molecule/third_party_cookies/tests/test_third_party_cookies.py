"""After the third_party_cookies role: Chrome and Edge let CM's page at http://localhost keep cookies.

Read as an administrator would on the PC, with ``reg query``: the browsers' machine policy
(HKLM) and each signed-in user's policy (HKU\\<sid>); a machine value wins over the user's.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from windows_tools import Windows

BROWSERS = {"chrome": r"SOFTWARE\Policies\Google\Chrome", "edge": r"SOFTWARE\Policies\Microsoft\Edge"}
# Chromium URL patterns that cover http://localhost:<any port>.
LOCALHOST = re.compile(r"^(?:(?:\*|https?)://)?(?:\[\*\.\])?(?:localhost|\*)(?::(?:\*|\d+))?(?:/.*)?$",
                       re.IGNORECASE)


def roots(windows: Windows) -> list[str]:
    """Where the policies are, highest first: the machine, then each signed-in user."""
    return ["HKLM", *(f"HKU\\{sid}" for sid in windows.user_sids())]


def effective_dword(windows: Windows, browser: str, name: str) -> int | None:
    for root in roots(windows):
        found = windows.reg_dword(f"{root}\\{BROWSERS[browser]}", name)
        if found is not None:
            return found
    return None


def url_list(windows: Windows, browser: str, name: str) -> list[str]:
    """A list policy (values 1, 2, ... of a subkey): the machine's when it has one, else the users'."""
    for root in roots(windows):
        values = windows.reg_values(f"{root}\\{BROWSERS[browser]}\\{name}")
        if values:
            return [data for _type, data in values.values()]
    return []


@pytest.mark.parametrize("browser", sorted(BROWSERS))
def test_third_party_cookies_are_allowed_for_localhost(windows: Windows, browser: str) -> None:
    if effective_dword(windows, browser, "BlockThirdPartyCookies") == 1:
        allowed = url_list(windows, browser, "CookiesAllowedForUrls")
        assert any(LOCALHOST.match(entry) for entry in allowed), allowed


@pytest.mark.parametrize("browser", sorted(BROWSERS))
def test_cookies_are_not_blocked_by_default_for_localhost(windows: Windows, browser: str) -> None:
    if effective_dword(windows, browser, "DefaultCookiesSetting") == 2:
        allowed = url_list(windows, browser, "CookiesAllowedForUrls")
        assert any(LOCALHOST.match(entry) for entry in allowed), allowed


@pytest.mark.parametrize("browser", sorted(BROWSERS))
def test_localhost_is_on_no_cookie_block_list(windows: Windows, browser: str) -> None:
    for root in roots(windows):
        values = windows.reg_values(f"{root}\\{BROWSERS[browser]}\\CookiesBlockedForUrls") or {}
        assert not [data for _type, data in values.values() if LOCALHOST.match(data)], root
