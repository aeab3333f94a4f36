"""The partition nemesis: one broker node at a time cut off from its Raft peers.

Every `pause` seconds it picks a random node, isolates it (every peer link to and from it
cut) for `hold` seconds, then heals. Only peer links are cut: clients still reach the
isolated node, so a leader that lost its majority must stop acknowledging, and clients
must find the leader the other two elect.

`NetworkFaults` is what it drives (ids, isolate, heal). `StromNetwork` implements it on
tests/python/cluster_util.py's `Cluster` started with `proxies=True`: a TCP proxy in front
of every node's peer port drops a pair's traffic while blocked.

`NodeFaults` keeps the broker nemesis (SIGKILL, restart) and this one from faulting two
nodes at once: each holds it from the fault until the node is whole again, so two of the
three nodes are always up and connected.
"""

from __future__ import annotations

import random
import threading
import time


class NetworkFaults:
    """The peer network of a cluster, for the partition nemesis."""

    def ids(self) -> list[int]:
        raise NotImplementedError

    def isolate(self, i: int) -> None:
        """Cuts node i off from every other node, both directions (clients still reach it)."""
        raise NotImplementedError

    def heal(self) -> None:
        """Restores every peer link."""
        raise NotImplementedError


class StromNetwork(NetworkFaults):
    def __init__(self, cluster):
        assert cluster.proxies, "the cluster must be started with proxies=True"
        self.c = cluster

    def ids(self) -> list[int]:
        return self.c.ids

    def isolate(self, i: int) -> None:
        self.c.isolate(i)

    def heal(self) -> None:
        self.c.heal()


class NodeFaults:
    """One node faulted (down or isolated) at a time."""

    def __init__(self):
        self._lock = threading.Lock()

    def acquire(self, stopping: threading.Event) -> bool:
        """Waits for the slot; False if `stopping` is set first."""
        while not self._lock.acquire(timeout=0.2):
            if stopping.is_set():
                return False
        if stopping.is_set():
            self._lock.release()
            return False
        return True

    def release(self) -> None:
        self._lock.release()


def partition_nemesis(net: NetworkFaults, slot: NodeFaults, rng: random.Random, stopping: threading.Event,
                      end: float, pause: tuple[float, float], hold: tuple[float, float], log, say) -> None:
    """Until `end` (time.monotonic()) or `stopping`: pause, isolate a random node for a
    `hold`, heal. `log(action, **fields)` records each fault in the history, `say` prints."""
    while not stopping.is_set() and time.monotonic() < end:
        if stopping.wait(rng.uniform(*pause)):
            return
        if not slot.acquire(stopping):
            return
        i = rng.choice(net.ids())
        seconds = rng.uniform(*hold)
        try:
            net.isolate(i)
            log("isolate-node", node=i)
            say(f"nemesis: node {i} isolated from its peers for {seconds:.1f}s")
            stopping.wait(seconds)
        finally:
            net.heal()  # also after a failed isolate: never leave a link cut
            log("heal-node", node=i)
            slot.release()
        say(f"nemesis: node {i} healed")
