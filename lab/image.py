"""Shoal's container image, built where no public registry is reachable.

The base is a Debian root filesystem made on this host with `debootstrap --variant=minbase
--include=python3` (from the host's own apt mirror), trimmed, cached as a tar and imported into an
engine; Shoal and its dependencies come as wheels built on this host from this checkout (`pip wheel`
with the host's package index); the repository's Dockerfile builds on a lab engine with the base
as its `BASE` build argument, and the result is pushed to the lab registry.
"""
from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from urllib.parse import quote, urlencode

from lab.daemons import REPO, api_checked, push_image
from lab.procs import LabError, progress
from shoal.version import VERSION

SUITE = "bookworm"  # its python3 is the 3.11 the wheels are built for
CACHE_DIR = Path("/var/cache/shoal")
BASE_REPO = "shoal-base"
# Left out of the base: package caches and lists, documentation, translations.
TRIM = ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man",
        "usr/share/info", "usr/share/locale")
BUILD_TIMEOUT = 600.0
SOURCES = ("pyproject.toml", "README.md", "shoal", "manager", "agent", "scheduler", "discovery", "lab")


def apt_mirror(suite: str = SUITE, sources: Path = Path("/etc/apt")) -> str | None:
    """The URI this host's apt uses for `suite` (deb822 `.sources` or `sources.list`), or None."""
    for path in sorted(sources.glob("sources.list.d/*.sources")):
        for stanza in path.read_text().split("\n\n"):
            fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, re.MULTILINE))
            if "deb" in fields.get("Types", "").split() and suite in fields.get("Suites", "").split():
                return fields.get("URIs", "").split()[0] or None
    listing = sources / "sources.list"
    if listing.exists():
        for line in listing.read_text().splitlines():
            words = re.sub(r"\[[^]]*\]", "", line).split()  # drop `[signed-by=...]` options
            if len(words) >= 3 and words[0] == "deb" and words[2] == suite:
                return words[1]
    return None


def base_rootfs(cache_dir: Path = CACHE_DIR, suite: str = SUITE) -> Path:
    """A tar of a minimal Debian `suite` with python3, made once with debootstrap and cached."""
    tar_path = cache_dir / f"debian-{suite}-python3.tar"
    if tar_path.exists():
        return tar_path
    if shutil.which("debootstrap") is None:
        raise LabError("debootstrap is missing (apt-get install debootstrap)")
    cache_dir.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rootfs-", dir=cache_dir) as tmp:
        root = Path(tmp) / "root"
        mirror = apt_mirror(suite)
        progress("debootstrap", suite=suite, mirror=mirror or "default")
        cmd = ["debootstrap", "--variant=minbase", "--include=python3", suite, str(root)]
        done = subprocess.run(cmd + ([mirror] if mirror else []), capture_output=True, text=True)
        if done.returncode != 0:
            raise LabError(f"debootstrap failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
        for rel in TRIM:
            for child in (root / rel).glob("*"):
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        partial = tar_path.with_suffix(".part")
        subprocess.run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."], check=True)
        partial.replace(tar_path)
    progress("base rootfs ready", path=tar_path, mib=tar_path.stat().st_size >> 20,
             took=f"{time.monotonic() - began:.1f}s")
    return tar_path


def import_base(addr: str, rootfs: Path, ref: str = f"{BASE_REPO}:{SUITE}") -> str:
    """`docker import` the base rootfs on one engine as `ref`."""
    repo, _, tag = ref.rpartition(":")
    query = urlencode({"fromSrc": "-", "repo": repo, "tag": tag, "changes": 'CMD ["python3"]'})
    with rootfs.open("rb") as body:
        api_checked(addr, "POST", f"/images/create?{query}", body,
                    {"Content-Type": "application/x-tar", "Content-Length": str(rootfs.stat().st_size)},
                    timeout=BUILD_TIMEOUT)
    progress("base imported", engine=addr, image=ref)
    return ref


def wheelhouse(dest: Path) -> list[Path]:
    """Shoal's wheel from this checkout, with its dependencies' wheels and pip's, in `dest`.

    Built from a copy of the sources, so no stale `build/` of the checkout ends up in the wheel."""
    began = time.monotonic()
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="shoal-src-") as src:
        for name in SOURCES:
            if (REPO / name).is_dir():
                shutil.copytree(REPO / name, Path(src) / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(REPO / name, Path(src) / name)
        cmd = [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
               "--wheel-dir", str(dest), src, "pip"]
        done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise LabError(f"pip wheel failed: {done.stderr[-3000:]}")
    wheels = sorted(dest.glob("*.whl"))
    progress("wheelhouse ready", wheels=len(wheels), took=f"{time.monotonic() - began:.1f}s")
    return wheels


def build_context(wheels: list[Path]) -> bytes:
    """The build context: the repository's Dockerfile and the wheels under wheels/."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(REPO / "Dockerfile", arcname="Dockerfile")
        for wheel in wheels:
            tar.add(wheel, arcname=f"wheels/{wheel.name}")
    return buf.getvalue()


def build(addr: str, context: bytes, ref: str, base: str) -> str:
    """`docker build --build-arg BASE=<base> -t <ref>` on one engine; the image ID."""
    began = time.monotonic()
    query = urlencode({"t": ref, "buildargs": json.dumps({"BASE": base}), "rm": "1", "forcerm": "1"})
    api_checked(addr, "POST", f"/build?{query}", context, {"Content-Type": "application/x-tar"},
                timeout=BUILD_TIMEOUT)
    image = json.loads(api_checked(addr, "GET", f"/images/{quote(ref, safe='')}/json"))
    progress("image built", engine=addr, image=ref, mib=image["Size"] >> 20,
             took=f"{time.monotonic() - began:.1f}s")
    return image["Id"]


def build_and_push(addr: str, registry: str, work_dir: Path) -> str:
    """The whole offline flow on engine `addr`: base, wheels, build, push; `<registry>/shoal:<version>`."""
    base = import_base(addr, base_rootfs())
    ref = f"{registry}/shoal:{VERSION}"
    build(addr, build_context(wheelhouse(work_dir / "wheels")), ref, base)
    push_image(addr, ref)
    progress("image pushed", image=ref)
    return ref
