"""What Windows and the browsers make of the settings diagnose reads: pure functions over facts."""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this package are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
