"""Ape-X actors: run episodes with their own ε and send prioritised transitions.

An :class:`Actor` holds a copy of the network and walks episodes of
``episode_length`` queries against the objective (random start, ε-greedy moves,
:mod:`~symbolic_nas.algorithms.learned_search.walk`). The learner asks it for a
*chunk* of steps at a time and sends the latest weights with each request, so
weights flow to the actors as often as chunks do (Ape-X's periodic weight
copy). Each chunk's n-step transitions come back with initial priorities, the
|TD errors| under the actor's copy (Horgan et al., ICLR 2018).

Two ways to host actors, behind one small handle interface (``submit``,
``result``, ``close``): :class:`ProcessActor` (a ``multiprocessing`` spawn
process, the default) and :class:`RayActor` (a Ray actor, ``executor="ray"``);
:func:`wait_any` tells which handles have something to say, so an asynchronous
learner takes chunks in the order they arrive. A handle whose actor died (or
did not answer within its timeout of the request) raises :class:`ActorDied`
from ``result``, and the learner restarts it.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import multiprocessing.connection
import random
import signal
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from symbolic_nas.algorithms.learned_search.agent import new_agent
from symbolic_nas.algorithms.learned_search.algorithm import choose_move
from symbolic_nas.algorithms.learned_search.learning import DoubleQ, NStep, Transition
from symbolic_nas.algorithms.learned_search.walk import Walk
from symbolic_nas.processes import exit_with_parent
from symbolic_nas.space.codec import Codec, encode

__all__ = ["Actor", "ActorDied", "ProcessActor", "RayActor", "wait_any"]


class ActorDied(RuntimeError):
    """An actor process or Ray actor died (or stopped answering)."""


def _value(result: Any) -> float:
    if isinstance(result, Mapping):
        result = result["reward"]
    value = float(result)
    return value if math.isfinite(value) else -math.inf


class Actor:
    """Runs episodes against ``objective`` (see the module docstring).

    Args:
        space: The space (or its codec).
        objective: ``tokens -> float`` (or a mapping with ``"reward"``); higher is better.
        seed: Seed of the actor's walk and ε draws.
        epsilon: The actor's ε.
        episode_length: Queries per episode.
        gamma: Discount.
        n_step: Steps of the n-step returns.
        shape: The network's ``dim``, ``heads``, ``layers``.
    """

    def __init__(
        self,
        space: Any,
        objective: Callable[[list[int]], Any],
        *,
        seed: int,
        epsilon: float,
        episode_length: int,
        gamma: float,
        n_step: int,
        shape: dict[str, int],
    ) -> None:
        self.codec: Codec = space if isinstance(space, Codec) else encode(space)
        self.objective = objective
        self.rng = random.Random(seed)
        self.epsilon = epsilon
        self.episode_length = episode_length
        # Eval mode: the encoder's fused inference path (no dropout either way).
        self.network = new_agent(self.codec, seed=seed, **shape).network.eval()
        self.scorer = DoubleQ(self.network)
        self.nstep = NStep(n_step, gamma)
        self.walk: Walk | None = None
        self.steps = 0
        self.episode_return = 0.0

    def _begin(self) -> None:
        self.walk = Walk(self.codec, self.rng)
        start = self.walk.restart_tokens()
        self.walk.observe(start, _value(self.objective(start)))
        self.nstep.clear()
        self.steps, self.episode_return = 1, 0.0

    def _finish(self, out: list[Transition]) -> None:
        """Partial-episode bootstrapping: the last steps bootstrap from the final state."""
        assert self.walk is not None
        open_moves = sorted(self.walk.candidates())
        final = self.walk.observation(open_moves, self.episode_length)
        steps = list(self.nstep.steps)
        for k in range(len(steps)):
            rest = steps[k:]
            ret = sum(self.nstep.gamma**j * r for j, (_, _, r) in enumerate(rest))
            out.append(
                Transition(rest[0][0], rest[0][1], ret, final, self.nstep.gamma ** len(rest))
            )
        self.nstep.clear()

    def run(self, weights: Mapping[str, Any], steps: int) -> dict[str, Any]:
        """Loads ``weights`` (tensors or numpy arrays), takes ``steps`` steps; returns
        transitions, priorities, returns."""
        state = {k: torch.as_tensor(v) for k, v in weights.items()}
        self.network.load_state_dict(state)
        self.scorer.target.load_state_dict(state)
        out: list[Transition] = []
        returns: list[float] = []
        for _ in range(steps):
            if self.walk is None or self.steps >= self.episode_length:
                if self.walk is not None:
                    self._finish(out)
                    returns.append(self.episode_return)
                self._begin()
            walk = self.walk
            assert walk is not None
            candidates = walk.candidates()
            self.steps += 1
            if not candidates:
                tokens = walk.restart_tokens()
                walk.observe(tokens, _value(self.objective(tokens)), restart=True)
                continue
            move, obs, action = choose_move(
                self.network,
                walk,
                candidates,
                horizon=self.episode_length,
                epsilon=self.epsilon,
                rng=self.rng,
            )
            tokens = candidates[move]
            walk.propose(tokens)
            reward = walk.observe(tokens, _value(self.objective(tokens)))
            self.episode_return += reward
            out += self.nstep.push(obs, action, reward)
        priorities: list[float] = self.scorer.priorities(out).tolist() if out else []
        return {
            "transitions": out,
            "priorities": priorities,
            "returns": returns,
            "steps": steps,
        }


# ---------------------------------------------------------------------- processes


def _actor_main(conn: multiprocessing.connection.Connection, payload: bytes) -> None:
    """An actor process: build the actor, then answer chunk requests until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_with_parent()
    try:
        import cloudpickle

        torch.set_num_threads(1)
        actor = Actor(**cloudpickle.loads(payload))
    except BaseException:
        with contextlib.suppress(OSError):
            conn.send(("fatal", traceback.format_exc()))
        return
    conn.send(("ready", None))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        try:
            result = actor.run(*message)
        except BaseException:
            with contextlib.suppress(OSError):
                conn.send(("fatal", traceback.format_exc()))
            return
        conn.send(("done", result))


class ProcessActor:
    """An :class:`Actor` in a spawned process (one torch thread)."""

    def __init__(self, name: str, kwargs: dict[str, Any], timeout: float) -> None:
        import cloudpickle

        self.name = name
        self.timeout = timeout
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe(duplex=True)
        self.process = context.Process(
            target=_actor_main, args=(child, cloudpickle.dumps(kwargs)), name=name, daemon=True
        )
        self.process.start()
        child.close()
        self.submitted = time.monotonic()
        self._receive("ready")

    def overdue(self) -> bool:
        """Whether the pending request has waited longer than the timeout."""
        return time.monotonic() > self.submitted + self.timeout

    def _receive(self, expected: str) -> Any:
        deadline = self.submitted + self.timeout
        while True:
            ready = self.conn.poll(0.2)
            if ready:
                try:
                    kind, value = self.conn.recv()
                except (EOFError, OSError):
                    raise ActorDied(
                        f"{self.name} died (exit code {self.process.exitcode})"
                    ) from None
                if kind == "fatal":
                    raise ActorDied(f"{self.name} failed:\n{value}")
                if kind == expected:
                    return value
            elif not self.process.is_alive():
                raise ActorDied(f"{self.name} died (exit code {self.process.exitcode})")
            if time.monotonic() > deadline:
                self.process.kill()
                raise ActorDied(f"{self.name} did not answer within {self.timeout} s")

    def submit(self, weights: Mapping[str, Any], steps: int) -> None:
        self.submitted = time.monotonic()
        with contextlib.suppress(OSError, ValueError):  # A dead actor is found by result().
            self.conn.send((weights, steps))

    def result(self) -> dict[str, Any]:
        return self._receive("done")

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.conn.send(None)
        self.process.join(2.0)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(1.0)
        self.conn.close()


class RayActor:
    """An :class:`Actor` as a Ray actor (one CPU); needs ``pip install ray``."""

    def __init__(self, name: str, kwargs: dict[str, Any], timeout: float) -> None:
        try:
            import ray
        except ImportError:
            raise ImportError(
                '`executor` "ray" needs Ray: pip install "symbolic-nas[ray]"'
            ) from None
        if not ray.is_initialized():
            ray.init(include_dashboard=False, log_to_driver=False)
        self._ray = ray
        self.name = name
        self.timeout = timeout
        remote: Any = ray.remote(num_cpus=1, max_restarts=0)(Actor)
        self.actor: Any = remote.remote(**kwargs)
        self.ref: Any = None
        self.submitted = time.monotonic()

    def overdue(self) -> bool:
        """Whether the pending request has waited longer than the timeout."""
        return time.monotonic() > self.submitted + self.timeout

    def submit(self, weights: Mapping[str, Any], steps: int) -> None:
        self.submitted = time.monotonic()
        self.ref = self.actor.run.remote(weights, steps)

    def result(self) -> dict[str, Any]:
        remaining = max(0.0, self.submitted + self.timeout - time.monotonic())
        try:
            result: dict[str, Any] = self._ray.get(self.ref, timeout=remaining)
        except Exception as e:  # RayActorError, GetTimeoutError, a failed task
            raise ActorDied(f"{self.name} died: {type(e).__name__}: {str(e)[:300]}") from None
        return result

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._ray.kill(self.actor)


def wait_any(handles: Sequence[ProcessActor | RayActor], poll: float = 0.5) -> list[int]:
    """Indices of ``handles`` whose ``result`` will not block, in index order.

    Waits until at least one chunk is ready, one actor died or one request is
    overdue (its ``result`` then raises :class:`ActorDied`).

    Args:
        handles: Handles of one kind, each with a pending request.
        poll: Seconds between checks for overdue requests.
    """
    while True:
        found = set()
        for i, h in enumerate(handles):
            if isinstance(h, RayActor):
                ready, _ = h._ray.wait([h.ref], num_returns=1, timeout=0)
                if ready:
                    found.add(i)
            elif h.conn.poll() or not h.process.is_alive():
                found.add(i)
        found |= {i for i, h in enumerate(handles) if h.overdue()}
        if found:
            return sorted(found)
        if isinstance(handles[0], RayActor):
            refs = [h.ref for h in handles if isinstance(h, RayActor)]
            handles[0]._ray.wait(refs, num_returns=1, timeout=poll)
        else:
            waitables: list[Any] = [h.conn for h in handles if isinstance(h, ProcessActor)]
            waitables += [h.process.sentinel for h in handles if isinstance(h, ProcessActor)]
            multiprocessing.connection.wait(waitables, timeout=poll)
