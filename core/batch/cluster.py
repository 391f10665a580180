"""Starting or joining the Ray cluster a batch runs on.

By default a batch starts a local Ray instance sized to this machine's cores (or ``workers``),
bound to the loopback interface only: its servers listen on 127.0.0.1 and nothing is reachable
from, or sent to, another machine (usage statistics are off). With an address (``auto``,
``HOST:PORT`` of a head started by ``ray start --head``, or ``ray://HOST:10001`` through Ray
Client) the batch joins that cluster instead; every node must have EmoCap installed and see the
inputs and the output folder at the same paths.
"""

from __future__ import annotations

import logging
import os

from core.errors import EmoCapError

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


class ClusterError(EmoCapError):
    """Ray is not installed, or the cluster at the given address cannot be reached."""


def _ray():
    try:
        import ray
    except ImportError as err:  # pragma: no cover - ray is a dependency
        raise ClusterError(f"Ray is not installed ({err}); run scripts/setup.sh") from err
    return ray


def loopback_only() -> None:
    """Make a local Ray instance started from this process use 127.0.0.1 as its node address.
    Ray replaces a loopback ``_node_ip_address`` by the machine's routable address unless its
    cluster mode is off (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, read by Ray's constants at import
    and by the processes it starts); with it off every server binds to 127.0.0.1."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    _ray()
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False  # when ray was imported before the variable was set


def start_local(num_cpus: int, temp_dir: str | None = None) -> None:
    """Start a local Ray instance with ``num_cpus`` CPUs, on the loopback interface, without a
    dashboard."""
    loopback_only()
    ray = _ray()
    ray.init(num_cpus=num_cpus, _node_ip_address=LOOPBACK, include_dashboard=False, log_to_driver=False,
             logging_level=logging.WARNING, _temp_dir=temp_dir)
    log.info("started a local Ray instance with %d CPUs on %s", num_cpus, LOOPBACK)


def connect(address: str | None, workers: int | None) -> bool:
    """Make sure this process is connected to a Ray cluster: the one it already is connected to
    (a test's, the app's), the one at ``address``, or a new local instance. Returns whether a
    local instance was started here (the caller shuts it down)."""
    ray = _ray()
    if ray.is_initialized():
        return False
    if address:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        host = _reachable(address)
        if host in ("127.0.0.1", "localhost"):
            loopback_only()  # else Ray would look for a head at this machine's routable address
        try:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise ClusterError(f"cannot join the Ray cluster at {address}: {str(err).splitlines()[0]}") from err
        return False
    start_local(workers or os.cpu_count() or 1)
    return True


def _reachable(address: str) -> str | None:
    """The host of a HOST:PORT or ray://HOST:PORT address, after checking that something listens
    there (Ray itself would retry for minutes); None for "auto"."""
    import socket

    if address == "auto":
        return None
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"not a Ray address: {address} (use auto, HOST:PORT or ray://HOST:PORT)")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as err:
        raise ClusterError(f"cannot reach the Ray cluster at {address}: {err.strerror or err}") from err
    return host


def describe() -> str:
    """"local Ray (2 CPUs)" or "Ray cluster of 5 nodes (64 CPUs)"."""
    ray = _ray()
    cpus = int(ray.cluster_resources().get("CPU", 0))
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    addresses = {n.get("NodeManagerAddress") for n in nodes}
    if len(nodes) == 1 and addresses <= {LOOPBACK}:
        return f"local Ray ({cpus} CPUs)"
    return f"Ray cluster of {len(nodes)} node{'s' if len(nodes) != 1 else ''} ({cpus} CPUs)"


def cluster_cpus() -> int:
    return max(1, int(_ray().cluster_resources().get("CPU", 1)))


def shutdown() -> None:
    _ray().shutdown()
