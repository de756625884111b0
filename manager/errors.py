"""API errors and how they become Docker-style JSON responses."""
from __future__ import annotations

import json

from aiohttp import web

API_VERSION = "1.41"  # what we advertise: the engines' (dockerd 20.10) version
MIN_API_VERSION = "1.24"


class ApiError(Exception):
    """An error answered to the client as `{"message": ...}` with an HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def not_found(what: str, ref: str) -> ApiError:
    """404 in dockerd's words, e.g. `No such container: web`."""
    return ApiError(404, f"No such {what}: {ref}")


def name_conflict(name: str) -> ApiError:
    """409 for a container name already used anywhere in the cluster (classic Swarm's words)."""
    return ApiError(409, f"Conflict: The name {name} is already assigned. You have to delete "
                         f"(or rename) that container to be able to assign {name} to a container again.")


def json_object(raw: str | bytes, what: str) -> dict:
    """Decode JSON that must be an object; otherwise a 400 that starts with `what`."""
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, f"{what}: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, f"{what}: expected a JSON object")
    return data


def json_response(obj: object, status: int = 200) -> web.Response:
    """A JSON body the way dockerd writes it (compact, newline-terminated)."""
    body = json.dumps(obj, separators=(",", ":")).encode() + b"\n"
    return web.Response(body=body, status=status, content_type="application/json")


def error_response(status: int, message: str) -> web.Response:
    """dockerd's error shape: `{"message": "..."}`."""
    return json_response({"message": message}, status)
