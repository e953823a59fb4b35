"""The LSTM controller of Zoph & Le (2017), batched over architectures.

The policy network shared by ``reinforce`` and ``ppo``: a stacked LSTM that emits
one token per decision of a :class:`~symbolic_nas.space.codec.Codec`, feeding the
sampled token's embedding back as the next input (B. Zoph and Q. V. Le, "Neural
Architecture Search with Reinforcement Learning", ICLR 2017).

Torch's per-operation dispatch, not arithmetic, sets the cost of so small a
network, so both paths work on many architectures per call:

* :meth:`Controller.sample` draws a batch of architectures in lockstep (one LSTM
  call per step for all rows). Rows may sit at different decisions in
  conditional spaces; each row's head is gathered from stacked head weights, so
  no grouping is needed.
* :meth:`Controller.score` recomputes log-probabilities (and entropies) with one
  teacher-forced LSTM pass over padded token sequences; this is the
  differentiable path the updates use.

Heads. Each decision has its own softmax head and input embedding, except that
decisions with the same :attr:`~symbolic_nas.space.codec.Decision.share_key` and
vocabulary size share both, as the paper shares per-layer heads.

Skip connections (subset decisions with an ``anchor`` key, the encoder's anchor
form). The step at the first member of a group whose anchor key is ``K`` is the
*anchor step*: its LSTM output is ``h_K``. Member ``j`` of that group, whose
``source`` value names an earlier anchor key, is chosen with probability
``sigmoid(vᵀ tanh(W_prev·h_source + W_curr·h_K))`` — a true sigmoid (the ENAS
reference code writes it as a softmax over ``[-q, q]``, which is
``sigmoid(2q)``). ``h_K`` is stored for later groups once its own group is
complete. A source with no stored anchor at that point (layer 0, which has no
skip group of its own, or an anchor in a branch that was not taken) uses a
learned fallback vector, one per source key. Every member still takes one LSTM
step and feeds its 0/1 token back, so the LSTM state after a group knows the
choices made in it. Subset groups without an anchor key are ordinary binary
decisions with their own heads. The codec's masks (its walker applies each
decision's :class:`~symbolic_nas.space.decisions.MaskRule`: distinct/sorted
picks, exact-k anchors) are applied at every step, so only valid sequences are
drawn.

Logit shaping (optional, as in the ENAS reference code): ``logits / temperature``
then ``tanh_constant * tanh(logits)``; both apply to skip logits too.

Threads. The tensors are tiny; on a busy CPU, torch's intra-op threads make every
operation wait on the others (many times slower with two threads than with one on a
loaded 2-core machine: ``benchmarks/RESULTS-tuner.md``). ``reinforce`` and ``ppo``
therefore run every controller call inside
:func:`~symbolic_nas.algorithms.controller.search.one_torch_thread`, which sets
torch's (process-wide) thread count to one for the call and restores it after;
nothing else of torch's global settings is changed. Calling :class:`Controller`
directly runs on whatever thread count the process has.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from symbolic_nas.algorithms.controller.config import ControllerConfig
from symbolic_nas.algorithms.controller.traces import Scores, anchor_indices, trace_tokens
from symbolic_nas.space.codec import SUBSET, Codec
from symbolic_nas.space.decisions import MaskRule
from symbolic_nas.validation import Interval, check, validate_params

__all__ = ["Controller", "Scores"]


_SETTINGS = ("hidden_size", "num_layers", "temperature", "tanh_constant", "init_range")


class Controller(nn.Module):
    """Zoph & Le's stacked-LSTM controller over a codec's decisions.

    Reference: B. Zoph and Q. V. Le, "Neural Architecture Search with Reinforcement
    Learning", ICLR 2017 (arXiv:1611.01578).

    Args:
        codec: The encoded space.
        hidden_size: Units per LSTM layer (and embedding size); the paper uses 35.
        num_layers: Stacked LSTM layers; the paper uses 2.
        temperature: Logits are divided by it (1 leaves them unchanged).
        tanh_constant: When positive, logits become ``c * tanh(logits)``; 0 disables.
        init_range: Parameters start uniform in ``[-init_range, init_range]`` (paper: 0.08).
        seed: Seed of the initialisation (torch's global RNG is never used).

    The settings are checked against the declarations of
    :class:`~symbolic_nas.algorithms.controller.config.ControllerConfig`.

    Example:
        >>> import torch, symbolic_nas as sn
        >>> from symbolic_nas.algorithms.controller import Controller
        >>> codec = sn.encode({"op": sn.oneof(["conv", "pool"]), "k": sn.oneof([3, 5, 7])})
        >>> net = Controller(codec, seed=0)
        >>> (tokens, log_prob), = net.sample(1, torch.Generator().manual_seed(0))
        >>> codec.is_valid(tokens)
        True
        >>> abs(float(net.score([tokens]).log_prob.detach()[0]) - log_prob) < 1e-5
        True
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **{k: v for k, v in ControllerConfig.constraints().items() if k in _SETTINGS},
        "seed": [Interval(int, 0, None)],
    }

    def __init__(
        self,
        codec: Codec,
        *,
        hidden_size: int = 35,
        num_layers: int = 2,
        temperature: float = 1.0,
        tanh_constant: float = 0.0,
        init_range: float = 0.08,
        seed: int = 0,
    ):
        super().__init__()
        if not isinstance(codec, Codec):
            raise TypeError(f"`codec` must be a symbolic_nas Codec, but got {codec!r}")
        validate_params(
            self._parameter_constraints,
            {
                "hidden_size": hidden_size,
                "num_layers": num_layers,
                "temperature": temperature,
                "tanh_constant": tanh_constant,
                "init_range": init_range,
                "seed": seed,
            },
        )
        self.codec = codec
        self.hidden_size = hidden_size
        self.temperature = float(temperature)
        self.tanh_constant = float(tanh_constant)
        self._build_tables(codec)
        h, v = hidden_size, self.max_vocab
        self.start = nn.Parameter(torch.empty(1, h))
        self.embedding = nn.Parameter(torch.empty(self._num_embeddings, h))
        # nn.LSTM initialises itself from torch's global RNG: fork_rng puts that
        # RNG back as it was; every parameter is then drawn from our own generator.
        with torch.random.fork_rng(devices=[]):
            self.lstm = nn.LSTM(h, h, num_layers)
        self.head_weight = nn.Parameter(torch.empty(self._num_heads, v, h))
        self.head_bias = nn.Parameter(torch.empty(self._num_heads, v))
        if self.has_attention:
            self.w_prev = nn.Parameter(torch.empty(h, h))
            self.w_curr = nn.Parameter(torch.empty(h, h))
            self.v = nn.Parameter(torch.empty(h))
            self.fallback = nn.Parameter(torch.empty(len(self._slots), h))
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.parameters():
                p.uniform_(-init_range, init_range, generator=generator)

    # ------------------------------------------------------------------ tables

    def _build_tables(self, codec: Codec) -> None:
        decisions = codec.decisions
        n = len(decisions)
        self.max_vocab = max(2, int(codec.vocab_sizes.max()))
        attn = np.array([d.kind == SUBSET and d.anchor is not None for d in decisions])
        heads: dict[Hashable, int] = {}
        embeddings: dict[Hashable, tuple[int, int]] = {}  # key -> (offset, vocab)
        head_of = np.zeros(n, dtype=np.int64)
        emb_offset = np.zeros(n, dtype=np.int64)
        rows = 0
        for d in decisions:
            share = d.share_key
            if attn[d.index]:
                key: Hashable = ("anchor", share)
            elif share is not None:
                key = ("share", share, d.kind, d.vocab_size)
            else:
                key = ("decision", d.index)
            if key not in embeddings:
                embeddings[key] = (rows, d.vocab_size)
                rows += d.vocab_size
            emb_offset[d.index] = embeddings[key][0]
            if not attn[d.index]:
                head_of[d.index] = heads.setdefault(key, len(heads))
        self._num_embeddings = rows
        # A space made only of skip decisions still gets one (unused) head, so
        # that the head gathers need no special case.
        self._num_heads = max(1, len(heads))
        self._head_of = head_of
        self._head_columns_t = torch.from_numpy(
            head_of[:, None] * self.max_vocab + np.arange(self.max_vocab)
        )
        self._emb_offset = emb_offset
        self._attn = attn
        self.has_attention = bool(attn.any())
        full = np.zeros((n, self.max_vocab), dtype=bool)
        for d in decisions:
            full[d.index, : d.vocab_size] = True
        self._full_masks = full
        self._neg_masks = torch.from_numpy(np.where(full, 0.0, -math.inf).astype(np.float32))
        self._max_length = codec.max_length
        # Decisions whose valid tokens depend on earlier tokens of their group.
        self._constrained = np.array([d.mask_rule is not MaskRule.FREE for d in decisions])
        self._any_constrained = bool(self._constrained.any())
        # Anchor slots: every anchor key and every source of an anchored member.
        slots: dict[Hashable, int] = {}
        for d in decisions:
            if attn[d.index]:
                slots.setdefault(d.anchor, len(slots))
        for d in decisions:
            if attn[d.index]:
                slots.setdefault(d.source, len(slots))
        self._slots = slots
        self._key_slot = np.array([slots[d.anchor] if attn[d.index] else 0 for d in decisions])
        self._src_slot = np.array([slots[d.source] if attn[d.index] else 0 for d in decisions])
        self._src_slot_t = torch.from_numpy(self._src_slot)
        self._group_start = np.array([attn[d.index] and d.group_index == 0 for d in decisions])
        self._group_end = np.array(
            [attn[d.index] and d.group_index == d.group_size - 1 for d in decisions]
        )

    @property
    def num_heads(self) -> int:
        """Number of softmax heads (decisions sharing a key share one)."""
        return self._num_heads

    # ------------------------------------------------------------------ logits

    def _skip_logits(self, h_src: torch.Tensor, h_cur: torch.Tensor) -> torch.Tensor:
        """``vᵀ tanh(W_prev·h_source + W_curr·h_K)`` per row (before shaping)."""
        return torch.tanh(h_src @ self.w_prev.t() + h_cur @ self.w_curr.t()) @ self.v

    def _with_skips(
        self, logits: torch.Tensor, skip: torch.Tensor, decisions: np.ndarray
    ) -> torch.Tensor:
        """Rows at skip decisions get the binary logits ``[0, skip]``: P(1) = sigmoid(skip)."""
        binary = F.pad(torch.stack([torch.zeros_like(skip), skip], 1), (0, self.max_vocab - 2))
        return torch.where(torch.from_numpy(self._attn[decisions]).unsqueeze(1), binary, logits)

    def _shape(self, logits: torch.Tensor) -> torch.Tensor:
        if self.temperature != 1.0:
            logits = logits / self.temperature
        if self.tanh_constant > 0:
            logits = self.tanh_constant * torch.tanh(logits)
        return logits

    # ------------------------------------------------------------------ sampling

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> list[tuple[list[int], float]]:
        """Samples ``n`` architectures in lockstep (one call per step for all of them).

        Tokens are drawn with the Gumbel-max trick from noise drawn once per call
        (``codec.max_length x n x vocabulary`` uniforms from ``generator``).

        Args:
            n: Number of architectures.
            generator: The torch generator the draws come from.

        Returns:
            ``(tokens, log_prob)`` per architecture; ``log_prob`` is the sum of the
            log-probabilities of its tokens under the masked, shaped policy.
        """
        check("n", n, [Interval(int, 1, None)])
        codec = self.codec
        hidden = self.hidden_size
        # Walkers track the group rules (distinct/sorted picks, exact-k anchors);
        # spaces without such rules follow next_table alone.
        walkers = [codec.walker() for _ in range(n)] if self._any_constrained else None
        next_table = codec.next_table
        end = codec.num_decisions
        dec = np.full(n, codec.start, dtype=np.int64)
        done = np.zeros(n, dtype=bool)
        # The LSTM step as plain ops on the nn.LSTM's own weights (gate order i, f,
        # g, o): a single-step nn.LSTM call costs several times more on a CPU. The
        # first layer's input projection is tabulated for every input it can get
        # (row 0: the start input, row 1 + e: embedding row e).
        lstm = self.lstm
        inputs0 = torch.cat([self.start, self.embedding], 0)
        weight = lstm.get_parameter  # typed, unlike nn.Module attribute access
        bias0 = weight("bias_ih_l0") + weight("bias_hh_l0")
        table0 = torch.addmm(bias0, inputs0, weight("weight_ih_l0").t())
        recurrent = [weight("weight_hh_l0").t()]
        upper = []
        for k in range(1, lstm.num_layers):
            w_ih, w_hh = getattr(lstm, f"weight_ih_l{k}"), getattr(lstm, f"weight_hh_l{k}")
            bias = getattr(lstm, f"bias_ih_l{k}") + getattr(lstm, f"bias_hh_l{k}")
            upper.append((bias, w_ih.t()))
            recurrent.append(w_hh.t())
        hs = [torch.zeros(n, hidden) for _ in recurrent]
        cs = [torch.zeros(n, hidden) for _ in recurrent]
        all_heads = self.head_weight.reshape(-1, hidden).t()
        all_bias = self.head_bias.reshape(-1)
        if self.has_attention:
            rows = torch.arange(n)
            anchors = self.fallback.unsqueeze(0).repeat(n, 1, 1)
            cur = torch.zeros(n, hidden)
        gumbel = torch.rand(self._max_length, n, self.max_vocab, generator=generator)
        gumbel = -torch.log(-torch.log(gumbel))
        input_rows = torch.zeros(n, dtype=torch.int64)
        step_tokens: list[np.ndarray] = []
        step_logits: list[torch.Tensor] = []
        step_active: list[np.ndarray] = []
        while not done.all():
            active = ~done
            projected = table0[input_rows]  # layer 0's input projection (tabulated)
            for k, w_hh in enumerate(recurrent):
                if k:  # the input is the layer below's output
                    bias, w_ih = upper[k - 1]
                    projected = torch.addmm(bias, hs[k - 1], w_ih)
                gates = torch.addmm(projected, hs[k], w_hh)
                i, f, g, o = torch.sigmoid(gates).chunk(4, 1)
                g = torch.tanh(gates[:, 2 * hidden : 3 * hidden])
                cs[k] = torch.addcmul(f * cs[k], i, g)
                hs[k] = x = o * torch.tanh(cs[k])
            d = np.where(done, 0, dec)
            d_t = torch.from_numpy(d)
            logits = torch.addmm(all_bias, x, all_heads).gather(1, self._head_columns_t[d_t])
            if self.has_attention and (self._attn[d] & active).any():
                starting = self._group_start[d] & active
                if starting.any():
                    cur = torch.where(torch.from_numpy(starting).unsqueeze(1), x, cur)
                h_src = anchors[rows, self._src_slot_t[d_t]]
                logits = self._with_skips(logits, self._skip_logits(h_src, cur), d)
            logits = self._shape(logits)
            if walkers is None:
                logits = logits + self._neg_masks[d_t]
            else:
                mask = self._full_masks[d]
                for r in np.flatnonzero(self._constrained[d] & active):
                    m = walkers[r].mask()
                    mask[r] = False
                    mask[r, : len(m)] = m
                logits = logits.masked_fill(~torch.from_numpy(mask), -math.inf)
            token = (logits + gumbel[len(step_tokens)]).argmax(1)
            token_np = token.numpy()
            step_logits.append(logits)
            step_tokens.append(token_np)
            step_active.append(active)
            if walkers is not None:
                for r in np.flatnonzero(active):
                    walkers[r].push(int(token_np[r]))
                    dec[r] = walkers[r].decision
            else:
                dec[active] = next_table[d[active], token_np[active]]
            done = dec == end
            if self.has_attention:
                ending = np.flatnonzero(self._group_end[d] & active)
                if len(ending):
                    idx = torch.from_numpy(ending)
                    anchors[idx, torch.from_numpy(self._key_slot[d[ending]])] = cur[idx]
            input_rows = torch.from_numpy(self._emb_offset[d] + token_np + 1)
        on = np.stack(step_active)
        lengths = on.sum(0)
        tokens = np.stack(step_tokens)
        log_q = torch.log_softmax(torch.stack(step_logits).double(), 2)
        picked = log_q.gather(2, torch.from_numpy(tokens).unsqueeze(2)).squeeze(2)
        log_prob = torch.where(torch.from_numpy(on), picked, 0.0).sum(0).tolist()
        return [(tokens[: lengths[r], r].tolist(), log_prob[r]) for r in range(n)]

    # ------------------------------------------------------------------ scoring

    def score(
        self, sequences: Sequence[Sequence[int]], *, skip_target: float | None = None
    ) -> Scores:
        """Differentiable log-probabilities of token sequences (one teacher-forced pass).

        Args:
            sequences: Valid token sequences of the codec.
            skip_target: When given, :attr:`Scores.skip_kl` holds the KL divergence of
                each skip probability from this rate.

        Raises:
            ValueError: A sequence is not valid for the codec.
        """
        if not sequences:
            raise ValueError("`sequences` must hold at least one token sequence, but got none")
        b = len(sequences)
        constrained = self._constrained if self._any_constrained else None
        traces = [trace_tokens(self.codec, s, constrained) for s in sequences]
        t_max = max(len(s) for s in sequences)
        dec = np.zeros((t_max, b), dtype=np.int64)
        tok = np.zeros((t_max, b), dtype=np.int64)
        valid = np.zeros((t_max, b), dtype=bool)
        for j, (s, (ds, _)) in enumerate(zip(sequences, traces)):
            dec[: len(s), j] = ds
            tok[: len(s), j] = s
            valid[: len(s), j] = True
        mask_np = self._full_masks[dec]
        for j, (_, masks) in enumerate(traces):
            for i, m in masks:
                mask_np[i, j] = False
                mask_np[i, j, : len(m)] = m
        emb_rows = torch.from_numpy(self._emb_offset[dec[:-1]] + tok[:-1])
        inputs = torch.cat([self.start.expand(1, b, -1), F.embedding(emb_rows, self.embedding)], 0)
        out, _ = self.lstm(inputs)
        flat = out.reshape(t_max * b, self.hidden_size)
        d_flat = dec.reshape(-1)
        heads = torch.from_numpy(self._head_of[d_flat])
        logits = torch.bmm(self.head_weight[heads], flat.unsqueeze(2)).squeeze(2)
        logits = logits + self.head_bias[heads]
        skip = None
        if self.has_attention:
            src, cur = anchor_indices(
                traces,
                t_max,
                attn=self._attn,
                group_start=self._group_start,
                group_end=self._group_end,
                src_slot=self._src_slot,
                key_slot=self._key_slot,
            )
            bank = torch.cat([flat, self.fallback], 0)
            skip = self._skip_logits(bank[torch.from_numpy(src)], bank[torch.from_numpy(cur)])
            logits = self._with_skips(logits, skip, d_flat)
            skip = self._shape(skip)
        mask = torch.from_numpy(mask_np.reshape(t_max * b, -1))
        logits = self._shape(logits).masked_fill(~mask, -math.inf)
        log_q = torch.log_softmax(logits, 1)
        valid_t = torch.from_numpy(valid.reshape(-1))
        picked = log_q.gather(1, torch.from_numpy(tok.reshape(-1, 1))).squeeze(1)
        step_log_prob = torch.where(valid_t, picked, 0.0).reshape(t_max, b)
        log_prob = step_log_prob.sum(0)
        safe = log_q.masked_fill(torch.isinf(log_q), 0.0)  # masked tokens: p = 0
        step_entropy = -(safe.exp() * safe).sum(1)
        entropy = torch.where(valid_t, step_entropy, 0.0).reshape(t_max, b).sum(0)
        skip_kl = torch.zeros(b)
        skip_rate = torch.zeros(b)
        if skip is not None:
            on = torch.from_numpy(self._attn[d_flat] & valid.reshape(-1))
            p = torch.sigmoid(skip)
            count = on.reshape(t_max, b).sum(0).clamp(min=1)
            skip_rate = torch.where(on, p, 0.0).reshape(t_max, b).sum(0) / count
            if skip_target is not None:
                q = float(skip_target)
                kl = p * (F.logsigmoid(skip) - math.log(q)) + (1 - p) * (
                    F.logsigmoid(-skip) - math.log(1 - q)
                )
                skip_kl = torch.where(on, kl, 0.0).reshape(t_max, b).sum(0)
        top = log_q.detach().max(1).values.exp()
        step_max_prob = torch.where(valid_t, top, 0.0).reshape(t_max, b).t()
        step_decisions = np.where(valid, dec, -1).T
        return Scores(
            log_prob, entropy, skip_kl, skip_rate, step_log_prob.t(), step_max_prob, step_decisions
        )
