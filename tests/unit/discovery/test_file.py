"""file:// discovery: one address or range per line, comments, changes picked up while running."""
import os
from pathlib import Path

import pytest

from discovery import DiscoveryError, from_url
from discovery.watcher import MembershipWatcher


async def test_file_lines_comments_ranges_and_live_changes(tmp_path: Path) -> None:
    cluster = tmp_path / "cluster"
    cluster.write_text("# engines\n10.0.0.1:2375\n\n  10.0.1.[1:2]:2375  # rack 2\nnot-an-address\n")
    async with MembershipWatcher(from_url(f"file://{cluster}", heartbeat=1)) as watcher:
        await watcher.until(lambda s: s == {"10.0.0.1:2375", "10.0.1.1:2375", "10.0.1.2:2375"}, timeout=2)

        cluster.write_text("10.0.0.1:2375\n10.0.0.7:2375\n")
        await watcher.until(lambda s: s == {"10.0.0.1:2375", "10.0.0.7:2375"}, timeout=3)

        replacement = tmp_path / "new"                      # editors replace the file: a new inode
        replacement.write_text("10.0.0.8:2375\n")
        os.replace(replacement, cluster)
        await watcher.until(lambda s: s == {"10.0.0.8:2375"}, timeout=3)


async def test_a_vanished_file_keeps_the_last_membership(tmp_path: Path) -> None:
    cluster = tmp_path / "cluster"
    cluster.write_text("10.0.0.1:2375\n")
    async with MembershipWatcher(from_url(f"file://{cluster}", heartbeat=1)) as watcher:
        await watcher.until(lambda s: s == {"10.0.0.1:2375"}, timeout=2)
        cluster.unlink()
        with pytest.raises(AssertionError, match="still"):
            await watcher.until(lambda s: s != {"10.0.0.1:2375"}, timeout=1.5)
        cluster.write_text("10.0.0.2:2375\n")
        await watcher.until(lambda s: s == {"10.0.0.2:2375"}, timeout=3)


async def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DiscoveryError, match=f"cannot read discovery file {tmp_path}/nope: No such file"):
        await anext(from_url(f"file://{tmp_path}/nope").watch())
