"""tables service."""
