"""Image archives in `docker save` format made offline, streamed as they are generated (nothing
is held whole): for loads of any size, and images with a chosen creation time."""
from __future__ import annotations

import hashlib
import json
import os
import tarfile
import time
from typing import Iterator

MIB = 1024 * 1024


def _header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = size, int(time.time())
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def _pad(size: int) -> bytes:
    return b"\0" * (-size % 512)


def image_archive(tag: str, mb: int = 0, created: str = "", labels: dict[str, str] | None = None) -> Iterator[bytes]:
    """One image `tag` whose one layer holds a file of `mb` MiB of random bytes (a few bytes when
    0), created at `created` (RFC 3339; none when empty), with image `labels`."""
    blob_size = mb * MIB or 16
    layer_size = 512 + blob_size + len(_pad(blob_size)) + 1024  # one member, then the end of the tar
    diff = hashlib.sha256()
    head = _header("blob", blob_size)
    diff.update(head)
    yield _header("layer.tar", layer_size) + head
    for _ in range(mb or 1):
        block = os.urandom(MIB if mb else blob_size)
        diff.update(block)
        yield block
    end = _pad(blob_size) + b"\0" * 1024
    diff.update(end)
    yield end + _pad(layer_size)
    config: dict = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["true"], "Labels": labels or {}},
                    "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff.hexdigest()}"]}}
    if created:
        config["created"] = created
    manifest = [{"Config": "config.json", "RepoTags": [tag], "Layers": ["layer.tar"]}]
    for name, data in (("config.json", json.dumps(config).encode()), ("manifest.json", json.dumps(manifest).encode())):
        yield _header(name, len(data)) + data + _pad(len(data))
    yield b"\0" * 1024
