"""The runner: what goes to a Windows host and what comes back (docs/architecture.md).

The host code (the ``*.ps1`` files, one concern each), the protocol (``protocol``: names, bootstrap
and errors; ``operations``: the operation tables; ``assembly``: the host code cut per request;
``request``: validation and standard input; ``reply``: reply parsing) and the action base class
(``action``) that sends one request per call."""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this package are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
