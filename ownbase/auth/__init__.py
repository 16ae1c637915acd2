"""GoTrue-compatible authentication at /auth/v1."""
