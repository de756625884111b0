"""Version constants: Shoal's own, and the Docker Engine API versions it speaks."""

VERSION = "0.1.0"
CLASSIC_VERSION = "1.2.9"  # the classic Swarm release whose API and behaviour Shoal keeps
# `docker version` / `docker info` "Server Version": tools that grep for classic Swarm's
# `swarm/` prefix keep working, and Shoal's own name and version follow.
SERVER_VERSION = f"swarm/{CLASSIC_VERSION}-compatible (shoal {VERSION})"
API_VERSION = "1.41"  # what we advertise and the most we ask of engines: dockerd 20.10's version
MIN_API_VERSION = "1.24"
