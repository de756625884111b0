"""Images across engines: how a reference matches a cached image, and pulling one onto an engine."""
from __future__ import annotations

import asyncio
import functools
import json
import re
from typing import Any, AsyncIterator
from urllib.parse import urlencode

from manager.cluster.engine import Engine
from manager.errors import ApiError, engine_error
from scheduler.node import repo_name

DEFAULT_REGISTRY_PREFIXES = ("docker.io/", "index.docker.io/", "library/")


def normalize_ref(ref: str) -> str:
    """busybox -> busybox:latest; docker.io/library/x -> x:latest."""
    for prefix in DEFAULT_REGISTRY_PREFIXES:
        ref = ref.removeprefix(prefix)
    if "@" not in ref and ":" not in ref.rsplit("/", 1)[-1]:
        ref += ":latest"
    return ref


def image_matches(image: dict, ref: str) -> bool:
    """Does an /images/json entry match an ID, ID prefix or (tag-aware) reference?"""
    image_id = image["Id"]
    if ref in (image_id, image_id.split(":", 1)[-1]) or (
            len(ref) >= 4 and image_id.split(":", 1)[-1].startswith(ref.removeprefix("sha256:"))):
        return True
    wanted = normalize_ref(ref)
    return any(normalize_ref(tag) == wanted for tag in image.get("RepoTags") or ())


def image_named(image: dict, name: str) -> bool:
    """Does an image answer to `name` as `docker save` means it: an ID, or a reference; a
    repository without a tag names every tag of it."""
    last = name.rsplit("/", 1)[-1]
    if "@" in name or ":" in last:
        return image_matches(image, name)
    repo = normalize_ref(name).rsplit(":", 1)[0]
    return image_matches(image, name) or any(
        normalize_ref(tag).rsplit(":", 1)[0] == repo for tag in image.get("RepoTags") or ())


def tag_matches_reference(tag: str, reference: str) -> bool:
    """The `reference` filter of `docker images`: the whole tag or its repository, against a
    pattern as Go's path.Match reads it (`busy*`, `*:latest`; `*` stops at `/`)."""
    pattern = _glob(reference)
    return bool(pattern.fullmatch(tag) or pattern.fullmatch(repo_name(tag)))


@functools.lru_cache(maxsize=256)
def _glob(pattern: str) -> re.Pattern:
    parts, rest = [], pattern
    while rest:
        char, rest = rest[0], rest[1:]
        if char == "*":
            parts.append("[^/]*")
        elif char == "?":
            parts.append("[^/]")
        elif char == "[" and "]" in rest:
            body, rest = rest.split("]", 1)
            parts.append("[" + body + "]")  # Go negates with ^, as re does
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts))


async def messages(engine: Engine, path: str, query: str, headers: Any = None, data: Any = None,
                   stall: float | None = None) -> AsyncIterator[dict]:
    """A POST whose answer is a stream of JSON progress messages (pull, import, load) on one engine:
    the messages as they come, then the engine's image list is refreshed. A refusal, an error
    message, or (with `stall`, for pulls) no message for `stall` seconds raises ApiError."""
    stalled = ApiError(500, f"pull stalled on {engine.label}: no progress for {stall:g}s"
                       ) if stall else None
    try:  # a registry that does not answer is not the engine's failure: no engine deadline then
        resp = await asyncio.wait_for(engine.open("POST", path, query=query, headers=headers, data=data,
                                                  **({"head": None} if stall else {})), stall)
    except asyncio.TimeoutError:
        raise stalled from None
    async with resp:
        if resp.status != 200:
            raw = await resp.read()
            try:
                body: object = json.loads(raw)
            except ValueError:
                body = raw.decode(errors="replace").strip()
            raise engine_error(resp.status, body)
        while True:
            try:
                line = await asyncio.wait_for(resp.content.readline(), stall)
            except asyncio.TimeoutError:
                raise stalled from None
            if not line:
                break
            message = _message(line)
            if message.get("error"):
                raise ApiError(500, message["error"])
            yield message
    await engine.refresh_images()


def _message(line: bytes) -> dict:
    """One progress message (an empty one for blank lines or anything that is not a JSON object)."""
    try:
        message = json.loads(line) if line.strip() else {}
    except ValueError:
        return {}
    return message if isinstance(message, dict) else {}


def pull(engine: Engine, query: str, headers: dict[str, str] | None = None) -> AsyncIterator[dict]:
    """`POST /images/create?<query>` (a pull) on one engine: its progress messages; it ends after
    the engine's `pull_stall` seconds without one."""
    return messages(engine, "/images/create", query, headers, stall=engine.options.pull_stall)


async def pull_on(engine: Engine, image: str, auth: str | None) -> None:
    """Pull one image on one engine, to completion; raises ApiError(404) on failure."""
    headers = {"X-Registry-Auth": auth} if auth else None
    try:
        async for _ in pull(engine, urlencode({"fromImage": image}), headers):
            pass
    except ApiError as exc:
        raise ApiError(404, f"No such image: {image} ({exc.message})") from None
