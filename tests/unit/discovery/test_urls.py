"""Discovery URLs: which backend, which addresses, and clear errors for everything else."""
import contextlib

import pytest

from discovery import DiscoveryError, from_url


async def first_members(url: str) -> frozenset[str]:
    async with contextlib.aclosing(from_url(url).watch()) as updates:
        return await anext(updates)


@pytest.mark.parametrize("url, members", [
    ("nodes://10.0.0.1:2375,10.0.0.2:2375", {"10.0.0.1:2375", "10.0.0.2:2375"}),
    ("10.0.0.1:2375,node-b.example:2376", {"10.0.0.1:2375", "node-b.example:2376"}),
    ("nodes://10.0.0.[10:12]:2375", {"10.0.0.10:2375", "10.0.0.11:2375", "10.0.0.12:2375"}),
    ("10.0.[1:2].5:2375, 10.0.0.9:2375", {"10.0.1.5:2375", "10.0.2.5:2375", "10.0.0.9:2375"}),
])
async def test_static_lists_and_ranges(url: str, members: set[str]) -> None:
    assert await first_members(url) == members


@pytest.mark.parametrize("url, message", [
    ("", "no engine address"),
    ("nodes://10.0.0.1", "invalid address '10.0.0.1'"),
    ("10.0.0.1:99999", "invalid address '10.0.0.1:99999'"),
    ("nodes://10.0.0.[20:10]:2375", r"invalid range \[20:10\]"),
    ("file://", "file:// discovery needs a path"),
    ("consul://10.0.0.1:8500/swarm", r"unsupported discovery consul:// \(supported: etcd://, nodes://, file://"),
    ("zk://10.0.0.1:2181/swarm", "unsupported discovery zk://"),
    ("etcd://10.0.0.1/cluster", "bad etcd endpoint '10.0.0.1'"),
    ("etcd:///cluster", "bad etcd endpoint ''"),
])
def test_bad_urls_are_explained(url: str, message: str) -> None:
    with pytest.raises(DiscoveryError, match=message):
        from_url(url)


def test_token_explains_the_service_is_gone_and_shows_etcd() -> None:
    with pytest.raises(DiscoveryError) as err:
        from_url("token://0123456789abcdef0123456789abcdef")
    assert "no longer exists" in str(err.value)
    assert "etcd://<etcd-host>:2379/0123456789abcdef0123456789abcdef" in str(err.value)


@pytest.mark.parametrize("options, message", [
    ({"kv.bogus": "1"}, "unknown discovery option 'kv.bogus'"),
    ({"kv.certfile": "/c.pem"}, "missing kv.cacertfile, kv.keyfile"),
    ({"kv.cacertfile": "/nonexistent/ca.pem", "kv.certfile": "/nonexistent/c.pem",
      "kv.keyfile": "/nonexistent/k.pem"}, "cannot read kv.cacertfile /nonexistent/ca.pem: No such file"),
])
def test_bad_options_are_explained(options: dict[str, str], message: str) -> None:
    with pytest.raises(DiscoveryError, match=message):
        from_url("etcd://127.0.0.1:2379/cluster", options)


@pytest.mark.parametrize("url", ["nodes://10.0.0.1:2375", "file:///etc/hosts"])
async def test_static_backends_cannot_be_joined(url: str) -> None:
    with pytest.raises(DiscoveryError, match="cannot be joined"):
        await from_url(url).register("10.0.0.1:2375", ttl=180, heartbeat=60)


@pytest.mark.parametrize("url, options, key", [
    ("etcd://127.0.0.1:2379/cluster", {}, "/cluster/docker/swarm/shoal/overlay/swarm"),
    ("etcd://127.0.0.1:2379/a/b", {"kv.path": "mine/nodes"}, "/a/b/mine/shoal/overlay/swarm"),
])
def test_the_cluster_state_lives_beside_the_nodes_directory(url, options, key) -> None:
    assert from_url(url, options).state_key("overlay", "swarm") == key
