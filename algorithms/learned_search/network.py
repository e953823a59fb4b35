"""The agent's Q-network: a small transformer over the current tokens.

Each position of the current architecture enters as the sum of its token's
embedding, its decision's embedding (the decision index, so conditional spaces
whose positions shift keep their meaning), a projection of that token's episode
statistics (:mod:`~symbolic_nas.algorithms.learned_search.walk`) and a
projection of the global features. A pre-norm transformer encoder mixes the
positions; the Q-value of the move ``(position, token)`` is an MLP over the
position's encoding, the new token's embedding and the move's statistics. One
forward pass scores every move, and moves outside the mask get ``-inf``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch
from torch import nn

from symbolic_nas.algorithms.learned_search.walk import NUM_FEATURES, NUM_GLOBALS

__all__ = ["NetworkConfig", "QNetwork", "collate"]


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    """The network's shape.

    Attributes:
        num_decisions: Decisions of the space (rows of the decision embedding).
        vocab: The largest vocabulary of its decisions.
        dim: Width of the embeddings and the encoder.
        heads: Attention heads.
        layers: Encoder layers.
    """

    num_decisions: int
    vocab: int
    dim: int = 32
    heads: int = 2
    layers: int = 2

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


class QNetwork(nn.Module):
    """Q-values of every move from a batch of observations (see the module docstring).

    Example:
        >>> import torch
        >>> net = QNetwork(NetworkConfig(num_decisions=3, vocab=4))
        >>> batch = {
        ...     "tokens": torch.zeros(2, 3, dtype=torch.long),
        ...     "decisions": torch.arange(3).repeat(2, 1),
        ...     "padding": torch.zeros(2, 3, dtype=torch.bool),
        ...     "features": torch.zeros(2, 3, 4, 4),
        ...     "globals": torch.zeros(2, 4),
        ...     "mask": torch.ones(2, 3, 4, dtype=torch.bool),
        ... }
        >>> net(batch).shape
        torch.Size([2, 3, 4])
    """

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.dim
        self.token = nn.Embedding(config.vocab, dim)
        self.decision = nn.Embedding(config.num_decisions, dim)
        self.feature_in = nn.Linear(NUM_FEATURES, dim)
        self.global_in = nn.Linear(NUM_GLOBALS, dim)
        layer = nn.TransformerEncoderLayer(
            dim, config.heads, 2 * dim, dropout=0.0, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.move_token = nn.Embedding(config.vocab, dim)
        self.head = nn.Sequential(
            nn.Linear(2 * dim + NUM_FEATURES + NUM_GLOBALS, 2 * dim),
            nn.ReLU(),
            nn.Linear(2 * dim, 1),
        )

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        tokens, features, glob = batch["tokens"], batch["features"], batch["globals"]
        b, length, vocab, _ = features.shape
        own = features.gather(
            2, tokens[:, :, None, None].expand(b, length, 1, NUM_FEATURES)
        ).squeeze(2)
        x = (
            self.token(tokens)
            + self.decision(batch["decisions"])
            + self.feature_in(own)
            + self.global_in(glob)[:, None, :]
        )
        h = self.encoder(x, src_key_padding_mask=batch["padding"])
        dim = h.shape[-1]
        moves = torch.cat(
            [
                h[:, :, None, :].expand(b, length, vocab, dim),
                self.move_token.weight[None, None, :vocab, :].expand(b, length, vocab, dim),
                features,
                glob[:, None, None, :].expand(b, length, vocab, NUM_GLOBALS),
            ],
            dim=-1,
        )
        q = self.head(moves).squeeze(-1)
        return q.masked_fill(~batch["mask"], float("-inf"))


def collate(observations: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    """Stacks observations into a batch, padding shorter token sequences.

    Padded positions are marked in ``padding`` and have no open move.
    """
    length = max(len(o["tokens"]) for o in observations)
    vocab = observations[0]["features"].shape[1]
    b = len(observations)
    tokens = np.zeros((b, length), dtype=np.int64)
    decisions = np.zeros((b, length), dtype=np.int64)
    padding = np.ones((b, length), dtype=bool)
    features = np.zeros((b, length, vocab, NUM_FEATURES), dtype=np.float32)
    mask = np.zeros((b, length, vocab), dtype=bool)
    glob = np.zeros((b, NUM_GLOBALS), dtype=np.float32)
    for i, o in enumerate(observations):
        n = len(o["tokens"])
        tokens[i, :n] = o["tokens"]
        decisions[i, :n] = o["decisions"]
        padding[i, :n] = False
        features[i, :n] = o["features"]
        mask[i, :n] = o["mask"]
        glob[i] = o["globals"]
    out: dict[str, Any] = {
        "tokens": tokens,
        "decisions": decisions,
        "padding": padding,
        "features": features,
        "mask": mask,
        "globals": glob,
    }
    return {k: torch.from_numpy(v) for k, v in out.items()}
