"""Version constants: Shoal's own, and the Docker Engine API versions it speaks."""

VERSION = "0.1.0"
SERVER_VERSION = f"shoal/{VERSION}"
API_VERSION = "1.41"  # what we advertise and the most we ask of engines: dockerd 20.10's version
MIN_API_VERSION = "1.24"
