"""A trained agent on disk: weights only, with the space it was trained on.

An agent file is written with ``torch.save`` and read with
``torch.load(weights_only=True)``, so loading never unpickles arbitrary objects.
It holds a format tag, the network's shape, the *signature* of the space it
was trained on (each decision's name, kind and vocabulary size), the weights
and a few JSON-able training facts. A name without a path separator or suffix
refers to an agent shipped in this package (:data:`SHIPPED`).
"""

from __future__ import annotations

import importlib.resources
import os
import pathlib
from typing import Any

import torch

from symbolic_nas.algorithms.learned_search.network import NetworkConfig, QNetwork
from symbolic_nas.space.codec import Codec

__all__ = [
    "FORMAT",
    "SHIPPED",
    "Agent",
    "load_agent",
    "new_agent",
    "resolve",
    "save_agent",
    "signature",
]

FORMAT = "symbolic_nas.learned_search/1"
#: Shipped agents: name -> file in this package, and what each was trained on.
SHIPPED: dict[str, str] = {"nb201-c10": "nb201_c10.pt"}
#: The agent ``algorithms.get("learned_search")`` uses on a space it fits.
DEFAULT_AGENT = "nb201-c10"

Signature = list[list[Any]]


def signature(codec: Codec) -> Signature:
    """Each decision's ``[name, kind, vocab_size]``: what an agent must match.

    Example:
        >>> import symbolic_nas as sn
        >>> signature(sn.encode({"k": sn.oneof([3, 5])}))
        [['k', 'categorical', 2]]
    """
    return [[d.name, d.kind, int(d.vocab_size)] for d in codec.decisions]


class Agent:
    """A network with the signature of its space and its training facts.

    Attributes:
        network: The :class:`QNetwork`.
        signature: The :func:`signature` of the space it was trained on.
        info: JSON-able facts (objective, transitions, wall time, ...).
        source: Where it was loaded from (a name or path), or None.
    """

    def __init__(
        self,
        network: QNetwork,
        signature: Signature,
        info: dict[str, Any] | None = None,
        source: str | None = None,
    ) -> None:
        self.network = network
        self.signature = signature
        self.info = dict(info or {})
        self.source = source

    def check_space(self, codec: Codec) -> None:
        """Raises ``ValueError`` when ``codec``'s decisions differ from the agent's."""
        mine = signature(codec)
        if mine == self.signature:
            return
        where = self.source or "the agent"
        for i, (a, b) in enumerate(zip(self.signature, mine)):
            if a != b:
                raise ValueError(
                    f"`agent` must be trained on a space with the same decisions, but {where} "
                    f"has decision {i} = {a} (name, kind, vocabulary) and the space has {b}"
                )
        raise ValueError(
            f"`agent` must be trained on a space with the same decisions, but {where} has "
            f"{len(self.signature)} decisions and the space has {len(mine)}"
        )

    def fits(self, codec: Codec) -> bool:
        return signature(codec) == self.signature

    def to_state(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "config": self.network.config.to_dict(),
            "signature": self.signature,
            "weights": {k: v.detach().clone() for k, v in self.network.state_dict().items()},
            "info": self.info,
        }


def new_agent(codec: Codec, *, seed: int | None = 0, **shape: int) -> Agent:
    """An untrained agent for ``codec``'s space, its weights drawn from ``seed``.

    Args:
        codec: The space's codec.
        seed: Seed of the initial weights.
        **shape: ``dim``, ``heads``, ``layers`` of :class:`NetworkConfig`.

    Example:
        >>> import symbolic_nas as sn
        >>> agent = new_agent(sn.encode({"k": sn.oneof([3, 5])}), seed=0)
        >>> agent.network.config.vocab
        2
    """
    config = NetworkConfig(
        num_decisions=len(codec.decisions),
        vocab=max(d.vocab_size for d in codec.decisions),
        **shape,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0 if seed is None else seed)
        network = QNetwork(config)
    return Agent(network, signature(codec))


def save_agent(agent: Agent, path: str | os.PathLike[str]) -> pathlib.Path:
    """Writes ``agent`` weights-only to ``path`` (atomically: a temporary file, then renamed).

    Example:
        >>> import tempfile, pathlib
        >>> import symbolic_nas as sn
        >>> agent = new_agent(sn.encode({"k": sn.oneof([3, 5])}), seed=0)
        >>> path = save_agent(agent, pathlib.Path(tempfile.mkdtemp()) / "a.pt")
        >>> load_agent(path).signature
        [['k', 'categorical', 2]]
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(agent.to_state(), tmp)
    os.replace(tmp, path)
    return path


def resolve(agent: str | os.PathLike[str]) -> pathlib.Path:
    """The file of a shipped agent's name, or the path given.

    Raises:
        FileNotFoundError: Neither a shipped name nor an existing file.
    """
    text = os.fspath(agent)
    if text in SHIPPED:
        resource = importlib.resources.files(__package__) / SHIPPED[text]
        return pathlib.Path(str(resource))
    path = pathlib.Path(text)
    if not path.is_file():
        raise FileNotFoundError(
            f"`agent` must be a shipped agent's name {sorted(SHIPPED)} or the path of an "
            f"existing agent file, but got {text!r} (no such file)"
        )
    return path


def load_agent(agent: str | os.PathLike[str]) -> Agent:
    """Loads an agent by shipped name or path (weights only).

    Raises:
        FileNotFoundError: No such name or file.
        ValueError: The file is not a readable agent file (corrupt, another format,
            or a pickle that ``weights_only`` refuses).
    """
    path = resolve(agent)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # A torn file, arbitrary pickles, anything torch cannot read.
        raise ValueError(
            f"`agent` must be a learned_search agent file (torch.save, weights only), but "
            f"{os.fspath(agent)!r} could not be read: {type(e).__name__}: {str(e)[:200]}"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise ValueError(
            f"`agent` must be a file of format {FORMAT!r}, but {os.fspath(agent)!r} has {found!r}"
        )
    try:
        network = QNetwork(NetworkConfig(**state["config"]))
        network.load_state_dict(state["weights"])
    except (KeyError, TypeError, RuntimeError) as e:
        raise ValueError(
            f"`agent` must hold weights matching its network config, but "
            f"{os.fspath(agent)!r} does not: {type(e).__name__}: {str(e)[:200]}"
        ) from None
    return Agent(network.eval(), state["signature"], state.get("info"), os.fspath(agent))
