# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Kerberos connection errors become one line that says what failed and what to check. The texts
are those of pykerberos, kinit and ansible-core 2.19's winrm connection (seen against a real KDC in
tests/integration/test_kerberos.py)."""

from __future__ import annotations

import pytest

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.action import _reason, kerberos_reason

NO_SPN = ("kerberos: authGSSClientStep() failed: (('Unspecified GSS failure.  Minor code may provide more "
          "information', 851968), ('Server HTTP/10.1.2.3@TRUST.NHS.UK not found in Kerberos database', "
          "-1765328377))")
NO_TICKET = ('kerberos: authGSSClientInit() failed: (("No credentials were supplied, or the credentials were '
             'unavailable or inaccessible", 458752), ("Can\'t find client principal svc@TRUST.NHS.UK in cache '
             'collection", -1765328243))')
EXPIRED = ("kerberos: authGSSClientStep() failed: (('Unspecified GSS failure.  Minor code may provide more "
           "information', 851968), ('Ticket expired', -1765328352))")
BINDINGS = ("kerberos: authGSSClientStep() failed: (('Incorrect channel bindings were supplied', 262144), "
            "('Success', 100001))")
KINIT = ("Kerberos auth failure for principal svc@TRUST.NHS.UK: kinit: Password incorrect while getting initial "
         "credentials")


@pytest.mark.parametrize(("text", "expected"), [
    (NO_SPN, "kerberos: Server HTTP/10.1.2.3@TRUST.NHS.UK not found in Kerberos database (no SPN for the name "
             "the host is reached by: use its DNS name as the domain knows it, not an address or an alias)"),
    (NO_SPN + ": " + NO_SPN, "kerberos: Server HTTP/10.1.2.3@TRUST.NHS.UK not found in Kerberos database (no SPN"),
    (NO_TICKET, "kerberos: Can't find client principal svc@TRUST.NHS.UK in cache collection (no ticket for this "
                "account: kinit first"),
    (EXPIRED, "kerberos: Ticket expired (kinit again"),
    (BINDINGS, "kerberos: Incorrect channel bindings were supplied"),
    ("kerberos: the specified credentials were rejected by the server",
     "kerberos: the specified credentials were rejected by the server (the PC refused the ticket: is the account "
     "in its Administrators group, its clock within 5 minutes of the domain's"),
])
def test_kerberos_errors_name_the_problem_and_what_to_check(text: str, expected: str) -> None:
    assert kerberos_reason(text).startswith(expected)


@pytest.mark.parametrize("text", [
    KINIT,  # kinit says it well already
    "ntlm: the specified credentials were rejected by the server",
    "basic: the specified credentials were rejected by the server",
    "ntlm: HTTPConnectionPool(host='10.1.2.3', port=5985): Max retries exceeded",
])
def test_other_errors_are_left_as_they_are(text: str) -> None:
    assert kerberos_reason(text) == text


def test_the_reason_is_one_line_within_300_characters() -> None:
    reason = _reason(ConnectionError(NO_SPN + "\n" + NO_SPN))
    assert reason.startswith("cannot run the runner on the host: kerberos: Server HTTP/10.1.2.3@")
    assert "\n" not in reason and len(reason) <= 300
