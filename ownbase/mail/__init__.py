"""Mail backends and templates."""
