"""rest service."""
