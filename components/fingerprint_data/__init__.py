"""fingerprint_data: the uncached first step that gives every later step an identity for the data."""
