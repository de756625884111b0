"""JSON in and out of the API: request bodies and filters read, answers written as dockerd writes them."""
from __future__ import annotations

import json

from aiohttp import web

from manager.errors import ApiError


def encode(obj: object) -> bytes:
    """Compact JSON, as dockerd writes it."""
    return json.dumps(obj, separators=(",", ":")).encode()


def json_object(raw: str | bytes, what: str) -> dict:
    """Decode JSON that must be an object; otherwise a 400 that starts with `what`."""
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, f"{what}: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, f"{what}: expected a JSON object")
    return data


async def read_json(request: web.Request) -> dict:
    """The request body as a JSON object ({} when empty); 400 when it is not one."""
    raw = await request.read()
    return json_object(raw, "invalid JSON in request body") if raw.strip() else {}


def parse_filters(raw: str | None) -> dict[str, list[str]]:
    """`{"label":{"a=b":true}}` and `{"label":["a=b"]}` both become `{"label": ["a=b"]}`."""
    if not raw:
        return {}
    return {k: list(v) for k, v in json_object(raw, f"invalid filter '{raw}'").items()}


def json_response(obj: object, status: int = 200) -> web.Response:
    """A JSON answer the way dockerd writes it (compact, newline-terminated)."""
    return web.Response(body=encode(obj) + b"\n", status=status, content_type="application/json")


def error_response(status: int, message: str) -> web.Response:
    """dockerd's error shape: `{"message": "..."}`."""
    return json_response({"message": message}, status)
