"""file:// discovery: one address or range per line, comments, changes picked up while running."""
import asyncio
import logging
import os
from pathlib import Path

import pytest

from discovery import from_url
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


async def test_a_file_missing_at_start_is_retried_with_a_warning_and_picked_up(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cluster = tmp_path / "later"
    caplog.set_level(logging.WARNING, logger="discovery.static")
    async with MembershipWatcher(from_url(f"file://{cluster}", heartbeat=2)) as watcher:
        await asyncio.sleep(2.5)  # checked every second, at 0, 1 and 2 s
        assert watcher.current is None
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 2  # at 0 and 2 s: one per heartbeat, not one per check
        assert f"cannot read file={cluster} error=No such file or directory" in warnings[0]
        cluster.write_text("10.0.0.9:2375\n")
        took = await watcher.until(lambda s: s == {"10.0.0.9:2375"}, timeout=3)
        assert took < 1.5


async def test_an_unreadable_file_is_retried_until_it_can_be_read(tmp_path: Path) -> None:
    cluster = tmp_path / "cluster"
    cluster.mkdir()  # reading a directory fails, as an unreadable file does (root reads any file)
    async with MembershipWatcher(from_url(f"file://{cluster}", heartbeat=1)) as watcher:
        await asyncio.sleep(1.2)
        assert watcher.current is None
        cluster.rmdir()
        cluster.write_text("10.0.0.3:2375\n")
        await watcher.until(lambda s: s == {"10.0.0.3:2375"}, timeout=3)
