"""HTTP plumbing shared by every service: caller resolution, client address, middleware."""
