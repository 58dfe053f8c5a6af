"""Finding, verifying and (where online) downloading weight files; the manifest is the only table."""
