"""The admin dashboard at /dashboard: its own accounts, and owner-level tools behind that login."""
