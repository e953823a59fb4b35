"""A real Ray cluster on this machine: a head and more nodes, each a `ray start --block`.

Every node is its own process group (``start_new_session``), bound to loopback only
(``--node-ip-address=127.0.0.1``, the dashboard off), with its own free ports, one CPU by
default and a custom resource named after it (``{"where_head": 1}``) so a test
can see where a trial ran. Token authentication is on, as the README's cluster steps do
it: a fresh token is written to a file in the cluster's directory and every node and
driver gets ``RAY_AUTH_MODE=token`` and ``RAY_AUTH_TOKEN_PATH`` (see :attr:`env`).
:meth:`close` kills every node's process group (SIGKILL), whatever happened.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import secrets
import signal
import socket
import subprocess
import sys
import time
from typing import IO, Any

import symbolic_nas as sn

ROOT = pathlib.Path(__file__).resolve().parents[2]

#: ``ray`` of this interpreter, kept on loopback. Ray replaces a loopback address with the
#: host's network address, and its servers then listen on every interface, unless
#: ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (in :attr:`LocalCluster.env`: every node's
#: processes and every driver get it), with which ``ray start`` refuses to join a second
#: node: this launcher lets it join and keeps ``--node-ip-address=127.0.0.1`` as given.
RAY = [
    sys.executable,
    "-c",
    "import sys; from ray._private import ray_constants, services; "
    "ray_constants.ENABLE_RAY_CLUSTER = True; "
    "services.resolve_ip_for_localhost = lambda host: host; "
    "from ray.scripts.scripts import main; sys.argv[0] = 'ray'; main()",
]


def free_ports(n: int) -> list[int]:
    """``n`` different TCP ports free on 127.0.0.1 just now."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(n):
            s = stack.enter_context(socket.socket())
            s.bind(("127.0.0.1", 0))
            ports.append(int(s.getsockname()[1]))
        return ports


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclasses.dataclass
class Node:
    """One ``ray start --block`` process group."""

    name: str
    process: subprocess.Popen[bytes]
    log: pathlib.Path
    _log_file: IO[bytes]

    def kill(self) -> None:
        """SIGKILLs the node's whole process group (raylet, workers, agents)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)
        self._log_file.close()


class LocalCluster:
    """A head node and worker nodes on loopback (see the module docstring).

    Args:
        root: A directory of its own for tokens, logs and Ray's session files (its path
            must be short: Ray's Unix sockets live under it).
        auth: Whether to turn on Ray's token authentication.
        token: The token file to use (one driver process keeps the first token it read);
            None: a new one in ``root``.
    """

    def __init__(
        self, root: pathlib.Path, *, auth: bool = True, token: pathlib.Path | None = None
    ) -> None:
        self.root = root
        self.port = free_ports(1)[0]
        self.address = f"127.0.0.1:{self.port}"
        self.nodes: dict[str, Node] = {}
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        self.env.update(RAY_USAGE_STATS_ENABLED="0", RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")
        # The nodes have this checkout "installed"; a lost node is noticed in seconds.
        self.env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
        )
        self.env.update(RAY_health_check_period_ms="1000", RAY_health_check_failure_threshold="5")
        if auth:
            if token is None:
                token = root / "auth_token"
                token.write_text(secrets.token_hex(32))
                token.chmod(0o600)
            self.env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token))
        else:
            self.env["RAY_AUTH_MODE"] = "disabled"

    def start(self, name: str, *, num_cpus: int = 1, timeout: float = 120.0) -> Node:
        """Starts a node (the first one is the head) and returns once its ports answer."""
        head = not self.nodes
        flags = (
            "--node-manager-port",
            "--object-manager-port",
            "--dashboard-agent-listen-port",
            "--dashboard-agent-grpc-port",
            "--runtime-env-agent-port",
            "--metrics-export-port",
            "--ray-client-server-port",
        )
        ports = dict(zip(flags, free_ports(len(flags)), strict=True))
        if not head:
            del ports["--ray-client-server-port"]
        args = [
            *RAY,
            "start",
            "--block",
            "--node-ip-address=127.0.0.1",
            f"--num-cpus={num_cpus}",
            "--num-gpus=0",
            f'--resources={{"where_{name}": 1}}',
            "--object-store-memory=100000000",
            "--include-log-monitor=false",
            "--disable-usage-stats",
            *(f"{flag}={port}" for flag, port in ports.items()),
        ]
        if head:
            args += [
                "--head",
                f"--port={self.port}",
                "--include-dashboard=false",
                f"--temp-dir={self.root / 'ray'}",
            ]
        else:
            args += [f"--address={self.address}"]
        log = self.root / f"{name}.log"
        log_file = log.open("wb")
        process = subprocess.Popen(
            args,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
        )
        node = self.nodes[name] = Node(name, process, log, log_file)
        deadline = time.monotonic() + timeout
        while not _port_open(self.port if head else ports["--node-manager-port"]):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"ray node {name!r} did not start within {timeout:g} s "
                    f"(exit code {process.poll()}):\n{self.tail(name)}"
                )
            time.sleep(0.5)
        return node

    def tail(self, name: str, lines: int = 30) -> str:
        """The end of a node's `ray start` output."""
        with contextlib.suppress(OSError):
            return "\n".join(self.nodes[name].log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def kill(self, name: str) -> None:
        """SIGKILLs one node's process group."""
        self.nodes[name].kill()

    def close(self) -> None:
        """SIGKILLs every node's process group, workers first, then the head."""
        for node in reversed(list(self.nodes.values())):
            node.kill()

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


# ---------------------------------------------------------------------- the driver


@sn.evaluator(input="tokens")
class NodeEvaluator:
    """Sleeps ``sleep`` seconds and says on which node it ran (the node's ``where_*``
    resource), after leaving a marker file ``NODE-TIME`` in ``marker_dir`` at the start."""

    def __init__(self, marker_dir: str, sleep: float = 1.0) -> None:
        self.marker_dir = marker_dir
        self.sleep = sleep
        self.node: str | None = None

    def _node(self) -> str:
        if self.node is None:
            import ray

            node_id = ray.get_runtime_context().get_node_id()
            resources = next(n["Resources"] for n in ray.nodes() if n["NodeID"] == node_id)
            self.node = next(k for k in resources if k.startswith("where_"))[len("where_") :]
        return self.node

    def __call__(self, tokens: list[int]) -> dict[str, Any]:
        node = self._node()
        (pathlib.Path(self.marker_dir) / f"{node}-{time.time_ns()}").touch()
        time.sleep(self.sleep)
        return {"reward": float(sum(tokens)), "node": node, "pid": os.getpid()}


def drive(argv: list[str]) -> None:
    """A driver: ``ADDRESS RUN_DIR NUM_TRIALS MARKER_DIR SLEEP [PLACEMENT_TIMEOUT]``;
    resumes whatever is in RUN_DIR. With PLACEMENT_TIMEOUT it passes a
    :class:`RayExecutor` of two actors, else ``executor="ray", workers=2``."""
    import ray

    from symbolic_nas.tuner.executors.ray_actors import RayExecutor
    from tests.helpers.ray_cluster import NodeEvaluator as ByName  # Workers import it by name.

    address, run_dir, num_trials, marker_dir, sleep = argv[:5]
    ray.init(address=address, log_to_driver=False)
    executor: Any = "ray"
    if len(argv) > 5:
        executor = RayExecutor(workers=2, placement_timeout=float(argv[5]))
    sn.search(
        {f"d{i}": sn.oneof([0, 1, 2, 3]) for i in range(6)},
        ByName(marker_dir, float(sleep)),
        algorithm="random",
        num_trials=int(num_trials),
        executor=executor,
        workers=2,
        run_dir=run_dir,
        resume=True,
        seed=0,
        tensorboard=False,
        progress=False,
        max_consecutive_failures=None,
    )


if __name__ == "__main__":
    drive(sys.argv[1:])
