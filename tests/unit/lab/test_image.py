"""The image builder's choice of Debian mirror: the host's own apt sources."""
from __future__ import annotations

from pathlib import Path

from lab.image import apt_mirror


def test_mirror_from_deb822_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/security\nSuites: bookworm-security\n\n"
        "Types: deb deb-src\nURIs: http://mirror.example/debian http://other.example/debian\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n")
    assert apt_mirror("bookworm", tmp_path) == "http://mirror.example/debian"


def test_mirror_from_sources_list_with_options(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text(
        "# comment\ndeb-src http://src.example/debian bookworm main\n"
        "deb [signed-by=/usr/share/keyrings/k.gpg arch=amd64] http://list.example/debian bookworm main\n")
    assert apt_mirror("bookworm", tmp_path) == "http://list.example/debian"


def test_no_mirror_when_the_suite_is_not_configured(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text("deb http://list.example/debian trixie main\n")
    assert apt_mirror("bookworm", tmp_path) is None
