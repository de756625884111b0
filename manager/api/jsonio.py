"""JSON in and out of the API: request bodies read and validated, filters parsed, answers written as
dockerd writes them.

Every handler that reads a body does it with `body = await read_model(call, SomeBody)` (models in
manager.api.models): size-limited, decoded, validated, or a 4xx naming what is wrong.
"""
from __future__ import annotations

import asyncio
import itertools
import json
from typing import Callable, Iterator, Sequence, TypeVar

import orjson
from aiohttp import web

from manager.api.call import Call
from manager.api.models import Body, Filters, validate
from manager.errors import ApiError

MAX_BODY = 2 * 1024 * 1024  # JSON bodies; streamed ones (build contexts, archives, load, import) are not read
B = TypeVar("B", bound=Body)
T = TypeVar("T")


def encode(obj: object) -> bytes:
    """Compact JSON, as dockerd writes it (UTF-8, not \\u-escaped). orjson: 30 networks' inspect
    rows took 27 µs here, json 217; json, \\u-escaped, for what orjson refuses: an integer past 64
    bits, or a lone surrogate, that a client sent."""
    try:
        return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(obj, separators=(",", ":")).encode()


def list_chunks(rows: Sequence[T], encode_row: Callable[[T], bytes], size: int) -> Iterator[bytes]:
    """A JSON list of `rows` (newline-terminated), `size` rows encoded at a time: the chunks join
    to the whole list; one chunk when it is short."""
    for start in range(0, max(len(rows), 1), size):
        body = b",".join([encode_row(row) for row in rows[start:start + size]])
        yield (b"," if start else b"[") + body + (b"]\n" if start + size >= len(rows) else b"")


async def stream_json(request: web.Request, chunks: Iterator[bytes]) -> web.StreamResponse:
    """An answer written chunk by chunk as it is encoded (a large list is never joined in memory);
    a plain answer with a length when it all fits in the first chunk."""
    first = next(chunks)
    if first.endswith(b"]\n"):
        return web.Response(body=first, content_type="application/json")
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    for chunk in itertools.chain([first], chunks):
        await resp.write(chunk)
        # a write waits only when the client reads slower than this writes: without a turn here,
        # `ps -a` of 150,000 rows held the loop 0.5 s and the refreshes due meanwhile then all ran
        # at once, in front of the next request (a create after it took 20 ms more)
        await asyncio.sleep(0)
    await resp.write_eof()
    return resp


async def parts_response(request: web.Request, parts: list[bytes]) -> web.StreamResponse:
    """A JSON answer of known length written part by part (its parts are never joined)."""
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.content_length = sum(len(part) for part in parts)
    await resp.prepare(request)
    for part in parts:
        await resp.write(part)
    await resp.write_eof()
    return resp


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


def decode(raw: str | bytes, what: str) -> object:
    """Strict JSON (no NaN or Infinity, as Go's decoder); otherwise a 400 that starts with `what`."""
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise ApiError(400, f"{what}: {reason}") from None


def json_object(raw: str | bytes, what: str) -> dict:
    """Decode JSON that must be an object; otherwise a 400 that starts with `what`."""
    data = decode(raw, what)
    if not isinstance(data, dict):
        raise ApiError(400, f"{what}: expected a JSON object")
    return data


async def read_body(call: Call) -> bytes:
    """The whole request body; 413 when it is over MAX_BODY."""
    length = call.request.content_length
    if length is not None and length > MAX_BODY:
        raise _too_large(length)
    try:
        return await call.request.read()
    except web.HTTPRequestEntityTooLarge:
        raise _too_large(None) from None


def _too_large(length: int | None) -> ApiError:
    size = f" ({length} bytes)" if length is not None else ""
    return ApiError(413, f"request body too large{size}: the limit is {MAX_BODY // (1024 * 1024)} MiB")


async def read_model(call: Call, model: type[B]) -> B:
    """The request body validated as `model` (an empty body is `{}`); `.raw` is the JSON object."""
    raw = await read_body(call)
    data = json_object(raw, "invalid JSON in request body") if raw.strip() else {}
    return validate(model, data, "invalid request body")


def parse_filters(raw: str | None) -> dict[str, list[str]]:
    """`{"label":{"a=b":true}}` and `{"label":["a=b"]}` both become `{"label": ["a=b"]}`."""
    if not raw:
        return {}
    what = f"invalid filter '{raw if len(raw) <= 100 else raw[:97] + '...'}'"
    return validate(Filters, decode(raw, what), what).values()


def json_response(obj: object, status: int = 200) -> web.Response:
    """A JSON answer the way dockerd writes it (compact, newline-terminated)."""
    return web.Response(body=encode(obj) + b"\n", status=status, content_type="application/json")


def error_response(status: int, message: str) -> web.Response:
    """dockerd's error shape: `{"message": "..."}`."""
    return json_response({"message": message}, status)
