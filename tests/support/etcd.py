"""The `etcd` fixture: a real etcd (the lab's launcher) for the tests of one module."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from lab.etcd import EtcdServer


@pytest.fixture(scope="module")
def etcd() -> Iterator[EtcdServer]:
    """A running etcd for the tests of one module."""
    with EtcdServer() as server:
        yield server
