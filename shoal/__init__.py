"""Shoal: the `shoal` console script and the few leaf modules every command shares."""
