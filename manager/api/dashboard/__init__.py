"""The read-only web dashboard: a page served from the package, fed live over server-sent events."""
