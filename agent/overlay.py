"""`shoal join --overlay-join`: put this host's engine into the cluster's swarm-mode overlay, with
the join the manager keeps in its cluster state under the discovery prefix in etcd (`overlay/swarm`:
the swarm cluster ID, its managers' `ip:2377`, a worker join token)."""
from __future__ import annotations

import asyncio
import json
import logging
import ssl

import aiohttp

from agent.engine import engine_url
from discovery.etcd import EtcdDiscovery
from discovery.etcd_store import StoreError

log = logging.getLogger(__name__)
JOINED_STATES = ("active", "pending")  # pending: a join is under way


async def overlay_join(discovery: EtcdDiscovery, engine: str, advertise_ip: str, retry: float,
                       tls: ssl.SSLContext | None = None) -> None:
    """Join the local engine to the swarm-mode overlay once (nothing to do when it is already in a
    swarm); until the manager has published how, or while a join fails, try again every `retry`."""
    base, socket = engine_url(engine, tls is not None)
    connector = aiohttp.UnixConnector(path=socket) if socket else aiohttp.TCPConnector(ssl=tls or True)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        while True:
            try:
                if await _try_join(session, base, discovery, engine, advertise_ip):
                    return
            except (aiohttp.ClientError, TimeoutError, StoreError, ValueError, KeyError) as err:
                log.warning("agent: overlay join failed engine=%s error=%s", engine, err)
            except Exception:  # a bug must not end the agent's registration with it
                log.exception("agent: overlay join error engine=%s", engine)
            await asyncio.sleep(retry)


async def _try_join(session: aiohttp.ClientSession, base: str, discovery: EtcdDiscovery, engine: str,
                    advertise_ip: str) -> bool:
    """One attempt; True when the engine is in a swarm now."""
    async with session.get(f"{base}/info") as resp:
        state = ((await resp.json()).get("Swarm") or {}).get("LocalNodeState")
    if state in JOINED_STATES:
        log.info("agent: engine already in a swarm-mode cluster engine=%s state=%s", engine, state)
        return True
    kept = await discovery.read_state("overlay", "swarm")
    if kept is None:
        log.info("agent: waiting for the manager to keep the overlay join key=%s",
                 discovery.state_key("overlay", "swarm"))
        return False
    join = json.loads(kept)
    body = {"ListenAddr": "0.0.0.0:2377", "AdvertiseAddr": advertise_ip, "RemoteAddrs": join["managers"],
            "JoinToken": join["token"]}
    async with session.post(f"{base}/swarm/join", json=body) as resp:
        if resp.status != 200:
            raise ValueError(f"swarm join answered {resp.status}: {(await resp.text()).strip()}")
    log.info("agent: engine joined the swarm-mode overlay engine=%s cluster=%s managers=%s", engine,
             join["cluster"], ",".join(join["managers"]))
    return True
