"""The runner: what goes to a Windows host and what comes back (docs/architecture.md).

The host code (the ``*.ps1`` files, one concern each), the protocol (bootstrap, operation tables,
request building, reply parsing) and the action base class that sends one request per call."""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this package are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
