"""API errors: what the client is answered as `{"message": ...}` with an HTTP status (no HTTP here)."""
from __future__ import annotations


class ApiError(Exception):
    """An error answered to the client as `{"message": ...}` with an HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def as_api_error(exc: BaseException) -> ApiError:
    """Any failure as an ApiError (its own status and message when it has them, else a 500)."""
    if isinstance(exc, ApiError):
        return exc
    return ApiError(getattr(exc, "status", 500), getattr(exc, "message", None) or str(exc))


def engine_error(status: int, body: object) -> ApiError:
    """An engine's error answer (a decoded `{"message": ...}` or plain text) with its status."""
    message = body.get("message") if isinstance(body, dict) else body
    return ApiError(status, str(message or f"status {status}"))


def not_found(what: str, ref: str) -> ApiError:
    """404 in dockerd's words, e.g. `No such container: web`."""
    return ApiError(404, f"No such {what}: {ref}")


def name_conflict(name: str) -> ApiError:
    """409 for a container name already used anywhere in the cluster (classic Swarm's words)."""
    return ApiError(409, f"Conflict: The name {name} is already assigned. You have to delete "
                         f"(or rename) that container to be able to assign {name} to a container again.")
