"""Diagnose: from a host's read results to findings (docs/architecture.md).

Options, the read plan, the facts built from the reads, the finding catalogue, the models of
browser policy, zones, URL patterns and Group Policy (``models/``), and one check per finding
(``checks/``)."""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this package are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
