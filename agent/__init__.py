"""The agent side of discovery: `shoal join` (with its engine check), `shoal list`, `shoal create`."""
