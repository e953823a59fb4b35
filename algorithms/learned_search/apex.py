"""Ape-X training of the learned search agent (Horgan et al., ICLR 2018).

``N`` actors (:mod:`~symbolic_nas.algorithms.learned_search.actors`) run episodes
against a cheap objective with their own ε, ``ε_i = ε^(1 + α·i/(N−1))`` (ε = 0.4,
α = 7), and send n-step transitions with initial priorities to one learner,
which holds the prioritised replay buffer and the network and trains it by
double Q-learning (:mod:`~symbolic_nas.algorithms.learned_search.learning`).

The learner is asynchronous, as in Ape-X: it takes each actor's chunk as it
arrives (:func:`~symbolic_nas.algorithms.learned_search.actors.wait_any`), hands
that actor its next chunk with the current weights at once, adds the
transitions to the replay and, while the actors run, makes
``updates_per_transition`` updates per new transition (the fraction carried
over). No actor waits for another, so throughput grows with actors as long as
the learner's work per transition is small beside an actor's. The defaults,
batches of 256 and ``updates_per_transition=0.003``, replay each transition
about 0.8 times: Ape-X's regime (its learner drew about 0.8 samples per
transition it received: 19 batches of 512 per second against about 12,500
transitions per second). A higher replay ratio learns more per query of the
objective, but makes the learner, not the actors, the bottleneck (figures in
``benchmarks/RESULTS-learned-search.md``).

Reproducibility: with one actor the order of everything the learner sees is
fixed by the seed, so the same seed gives the same agent on one machine. With
more actors the order in which their chunks arrive depends on timing, and so
does the agent; ``ordered=True`` makes the learner work in *rounds* instead
(every actor's chunk in actor order, then the updates): the same seed then gives
the same agent for any number of actors, at the cost of every round waiting for
the slowest actor. A different number of actors gives a different agent (their
ε and seeds differ), and so does an actor restart (the replacement starts a
fresh episode with a new seed).

Fault tolerance: an actor that dies (or stops answering for ``actor_timeout``
seconds) is restarted and handed the same chunk; training goes on, up to
``max_restarts`` restarts in all. The learner checkpoints its networks,
optimiser, replay buffer and counters to ``checkpoint_dir`` (``learner.pt``,
atomically, weights only) every ``checkpoint_every`` chunks and resumes from it.

The tuner's executors run one trial at a time and return its outcome; Ape-X
actors are long-lived and stream transitions and weights, and the algorithms
layer cannot import the tuner, so actors are hosted here (spawned processes by
default, Ray actors with ``executor="ray"``), with the tuner's conventions: one
torch thread per process, exit with the parent, restart on death.
"""

from __future__ import annotations

import dataclasses
import math
import os
import pathlib
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from symbolic_nas.algorithms.learned_search.actors import (
    ActorDied,
    ProcessActor,
    RayActor,
    wait_any,
)
from symbolic_nas.algorithms.learned_search.agent import Agent, new_agent, save_agent
from symbolic_nas.algorithms.learned_search.learning import (
    DoubleQ,
    PrioritizedReplay,
)
from symbolic_nas.space.codec import Codec, encode
from symbolic_nas.validation import Interval, Options, check

__all__ = ["TrainResult", "epsilons", "train"]


def epsilons(num_actors: int, epsilon: float = 0.4, alpha: float = 7.0) -> list[float]:
    """Ape-X's per-actor ε: ``ε^(1 + α·i/(N−1))``; one actor gets ``ε``.

    Example:
        >>> [round(e, 4) for e in epsilons(3)]
        [0.4, 0.0162, 0.0007]
    """
    check("num_actors", num_actors, [Interval(int, 1, None)])
    if num_actors == 1:
        return [epsilon]
    return [epsilon ** (1 + alpha * i / (num_actors - 1)) for i in range(num_actors)]


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        agent: The trained agent (also written to ``save`` when given).
        transitions: Transitions (actor steps) in all, resumed ones included.
        updates: Learner updates in all.
        seconds: Wall time of this call.
        transitions_per_second: Actor steps per second in this call in steady
            state: the steps of the chunks that arrived after every actor had
            delivered its first one (which includes loading the objective), over
            the time since; over the whole call if training ended before that.
        restarts: Actor restarts in this call.
        returns: Mean episode return of the finished episodes of each learner
            step (one arrival of chunks; with ``ordered=True``, one round).
        losses: Mean learner loss of each learner step with updates.
    """

    agent: Agent
    transitions: int
    updates: int
    seconds: float
    transitions_per_second: float
    restarts: int
    returns: list[float]
    losses: list[float]


_EXECUTORS = ("process", "ray")


def _ray_initialized() -> bool:
    try:
        import ray
    except ImportError:
        return False
    return bool(ray.is_initialized())


def train(
    objective: Callable[[list[int]], Any],
    space: Any,
    *,
    actors: int = 2,
    executor: str = "process",
    transitions: int = 200_000,
    chunk: int = 100,
    ordered: bool = False,
    episode_length: int = 100,
    epsilon: float = 0.4,
    alpha: float = 7.0,
    gamma: float = 0.9,
    n_step: int = 3,
    lr: float = 1e-3,
    batch_size: int = 256,
    updates_per_transition: float = 0.003,
    replay_size: int = 50_000,
    warmup: int = 500,
    target_every: int = 200,
    dim: int = 32,
    heads: int = 2,
    layers: int = 2,
    seed: int = 0,
    save: str | os.PathLike[str] | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 10,
    logdir: str | os.PathLike[str] | None = None,
    max_restarts: int = 10,
    actor_timeout: float = 300.0,
    info: dict[str, Any] | None = None,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Trains a learned search agent with Ape-X (see the module docstring).

    Args:
        objective: ``tokens -> float`` (or a mapping with ``"reward"``), higher is
            better; picklable (cloudpickle), as each actor gets a copy. Cheap: a
            tabular benchmark or a predictor, not a training run.
        space: The space (or its codec) to search.
        actors: Actor processes.
        executor: ``"process"`` (spawned processes) or ``"ray"`` (Ray actors).
        transitions: Actor steps to train for (a resumed run counts its earlier ones).
        chunk: Steps per actor per request (weights go to an actor with each).
        ordered: Rounds in actor order (reproducible for any number of actors)
            instead of taking chunks as they arrive (see the module docstring).
        episode_length: Queries per episode.
        epsilon: Ape-X's base ε. alpha: Ape-X's α.
        gamma: Discount. n_step: Steps of the n-step returns.
        lr: Adam's learning rate. batch_size: Transitions per update.
        updates_per_transition: Learner updates per new transition (once the
            replay holds ``warmup`` transitions).
        replay_size: Capacity of the prioritised replay.
        target_every: Updates between target-network copies.
        dim: Network width. heads: Attention heads. layers: Encoder layers.
        seed: Seeds the initial weights, the replay's draws and the actors
            (actor ``i``: ``seed * 1000 + i``, plus 100 per restart).
        save: Where to write the trained agent (weights only), or None.
        checkpoint_dir: Where the learner checkpoints and resumes from, or None.
        checkpoint_every: Chunks between checkpoints.
        logdir: A TensorBoard log directory, or None: learner loss, replay size,
            transitions per second, ε per actor, episode returns.
        max_restarts: Actor restarts allowed before training fails.
        actor_timeout: Seconds an actor may take for one chunk.
        info: Extra JSON-able facts stored with the agent (e.g. the objective's name).
        log: Called with a line of progress per checkpoint, or None.

    Returns:
        A :class:`TrainResult`.

    Raises:
        RuntimeError: Actors died more than ``max_restarts`` times.

    Example:
        >>> import symbolic_nas as sn
        >>> space = {"a": sn.oneof([0, 1, 2]), "b": sn.oneof([0, 1, 2])}
        >>> result = train(sum, space, actors=1, transitions=100, chunk=50, warmup=50,
        ...                batch_size=16, updates_per_transition=0.1, episode_length=8, seed=0)
        >>> result.transitions, result.updates > 0
        (100, True)
    """
    check("actors", actors, [Interval(int, 1, None)])
    check("executor", executor, [Options(_EXECUTORS)])
    for name, value in (("transitions", transitions), ("chunk", chunk)):
        check(name, value, [Interval(int, 1, None)])
    check("episode_length", episode_length, [Interval(int, 2, None)])
    codec: Codec = space if isinstance(space, Codec) else encode(space)
    start = time.perf_counter()
    agent = new_agent(codec, seed=seed, dim=dim, heads=heads, layers=layers)
    learner = DoubleQ(agent.network, lr=lr, target_every=target_every)
    replay = PrioritizedReplay(replay_size, seed=seed)
    done, chunks = 0, 0
    checkpoint = None if checkpoint_dir is None else pathlib.Path(checkpoint_dir) / "learner.pt"
    if checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        if state["signature"] != agent.signature:
            raise ValueError(
                f"`checkpoint_dir` must hold a checkpoint of this space, but {checkpoint} "
                "was written for a space with other decisions"
            )
        learner.load_state_dict(state["learner"])
        replay.load_state_dict(state["replay"])
        done, chunks = int(state["transitions"]), int(state["chunks"])
    eps = epsilons(actors, epsilon, alpha)
    host = ProcessActor if executor == "process" else RayActor
    # Ray started here (by the first RayActor) is shut down here, as the tuner's executor does.
    started_ray = executor == "ray" and not _ray_initialized()
    restarts_by_actor = [0] * actors
    writer = None
    if logdir is not None:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(os.fspath(logdir))

    def spawn(i: int) -> ProcessActor | RayActor:
        kwargs = {
            "space": codec.space if hasattr(codec, "space") else space,
            "objective": objective,
            "seed": seed * 1000 + i + 100 * restarts_by_actor[i] + 7919 * chunks,
            "epsilon": eps[i],
            "episode_length": episode_length,
            "gamma": gamma,
            "n_step": n_step,
            "shape": {"dim": dim, "heads": heads, "layers": layers},
        }
        return host(f"learned_search-actor-{i}", kwargs, actor_timeout)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # Small batches: more threads only contend with the actors.
    handles: list[ProcessActor | RayActor] = []
    returns_log: list[float] = []
    losses_log: list[float] = []
    restarts = 0
    owed = 0.0

    def restart(i: int, error: ActorDied) -> None:
        nonlocal restarts
        restarts += 1
        if restarts > max_restarts:
            raise RuntimeError(
                f"actors must not die more than max_restarts={max_restarts} "
                f"times, but {restarts} died; the last: {error}"
            ) from None
        if log is not None:
            log(f"restarting {handles[i].name}: {str(error).splitlines()[0]}")
        handles[i].close()
        restarts_by_actor[i] += 1
        handles[i] = spawn(i)
        handles[i].submit(weights, chunk)

    try:
        handles = [spawn(i) for i in range(actors)]
        ready = time.perf_counter()
        warm: set[int] = set()  # Actors that delivered their first chunk.
        steady: float | None = None  # When every actor had.
        produced, produced_steady = 0, 0
        weights = _weights(agent)
        for h in handles:
            h.submit(weights, chunk)
        while done < transitions:
            results, answered = [], []
            for i in range(actors) if ordered else wait_any(handles):
                while True:
                    try:
                        results.append(handles[i].result())
                        answered.append(i)
                        break
                    except ActorDied as e:
                        restart(i, e)  # Its replacement already has its chunk.
                        if not ordered:
                            break
            weights = _weights(agent)
            for i in answered:
                handles[i].submit(weights, chunk)
            new = 0
            episode_returns: list[float] = []
            for res in results:
                new += len(res["transitions"])
                replay.add(res["transitions"], np.asarray(res["priorities"]))
                episode_returns += res["returns"]
                done += res["steps"]
                produced += res["steps"]
                produced_steady += res["steps"] if steady is not None else 0
            warm.update(answered)
            if steady is None and len(warm) == actors:
                steady = time.perf_counter()
            before, chunks = chunks, chunks + len(results)
            losses = []
            if len(replay) >= max(warmup, batch_size):
                owed += updates_per_transition * new
                for _ in range(math.floor(owed + 1e-9)):
                    index, batch, w = replay.sample(batch_size)
                    loss, errors = learner.update(batch, w)
                    replay.update(index, errors)
                    losses.append(loss)
                owed -= len(losses)
            if losses:
                losses_log.append(float(np.mean(losses)))
            if episode_returns:
                returns_log.append(float(np.mean(episode_returns)))
            rate = _rate(produced, ready, produced_steady, steady)
            if writer is not None and results:
                if losses:
                    writer.add_scalar("learner/loss", losses_log[-1], done)
                writer.add_scalar("learner/replay_size", len(replay), done)
                writer.add_scalar("learner/updates", learner.updates, done)
                writer.add_scalar("actors/transitions_per_second", rate, done)
                for i, eps_i in enumerate(eps):
                    writer.add_scalar(f"actors/epsilon/{i}", eps_i, done)
                if episode_returns:
                    writer.add_scalar("episodes/return", returns_log[-1], done)
            due = chunks // checkpoint_every > before // checkpoint_every
            if checkpoint is not None and results and (due or done >= transitions):
                _checkpoint(checkpoint, agent, learner, replay, done, chunks)
                if log is not None:
                    shown = f"{losses_log[-1]:.4f}" if losses_log else "-"
                    log(
                        f"chunk {chunks}: {done} transitions, {learner.updates} updates, "
                        f"loss {shown}, {rate:.0f} transitions/s"
                    )
        seconds = time.perf_counter() - start
        rate = _rate(produced, ready, produced_steady, steady)
    finally:
        torch.set_num_threads(threads)
        for h in handles:
            h.close()
        if started_ray and _ray_initialized():
            import ray

            ray.shutdown()
        if writer is not None:
            writer.close()
    agent.network.eval()
    agent.info = {
        **(info or {}),
        "transitions": done,
        "updates": learner.updates,
        "actors": actors,
        "seed": seed,
        "episode_length": episode_length,
        "gamma": gamma,
        "n_step": n_step,
        "ordered": ordered,
    }
    if save is not None:
        save_agent(agent, save)
    return TrainResult(
        agent=agent,
        transitions=done,
        updates=learner.updates,
        seconds=seconds,
        transitions_per_second=rate,
        restarts=restarts,
        returns=returns_log,
        losses=losses_log,
    )


def _rate(produced: int, ready: float, produced_steady: int, steady: float | None) -> float:
    """Steady-state transitions per second (see ``TrainResult``)."""
    if steady is not None and produced_steady > 0:
        produced, ready = produced_steady, steady
    return produced / max(1e-9, time.perf_counter() - ready)


def _weights(agent: Agent) -> dict[str, np.ndarray]:
    """A copy of the weights as numpy arrays: they pickle as plain bytes (torch
    tensors would go through shared-memory file descriptors, slower for 40 small
    tensors per chunk)."""
    return {k: v.detach().numpy().copy() for k, v in agent.network.state_dict().items()}


def _checkpoint(
    path: pathlib.Path,
    agent: Agent,
    learner: DoubleQ,
    replay: PrioritizedReplay,
    transitions: int,
    chunks: int,
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(
        {
            "signature": agent.signature,
            "learner": learner.state_dict(),
            "replay": replay.state_dict(),
            "transitions": transitions,
            "chunks": chunks,
        },
        tmp,
    )
    os.replace(tmp, path)
