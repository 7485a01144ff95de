"""Token vectors to sentence vectors (mean or [CLS] pooling) and the sentence classifier head.

:func:`mean_pool` and :func:`cls_pool` turn token vectors (B, L, D) into one vector per text;
:class:`SentenceClassifier` is a pooled encoder plus a linear head that returns logits.
"""

from __future__ import annotations

import torch
from torch import nn

from tlhelpers.text.tokens import _check_positive_int

__all__ = ["POOLINGS", "SentenceClassifier", "cls_pool", "mean_pool", "pool"]

POOLINGS = ("cls", "mean")


def _check_pooling(pooling: str) -> str:
    if pooling not in POOLINGS:
        raise ValueError(
            f"pooling={pooling!r} is not supported; valid choices: {', '.join(POOLINGS)} "
            '(mean: average of the real tokens, as all-MiniLM-L6-v2 was trained; cls: the first '
            "token's vector)."
        )
    return pooling


def _check_hidden(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor | None) -> None:
    if last_hidden_state.dim() != 3:
        raise ValueError(
            f"last_hidden_state must be (B, L, D); got shape {tuple(last_hidden_state.shape)}."
        )
    if attention_mask is not None and attention_mask.shape != last_hidden_state.shape[:2]:
        raise ValueError(
            f"attention_mask must be (B, L) = {tuple(last_hidden_state.shape[:2])}; got "
            f"{tuple(attention_mask.shape)}. Pass the mask that came with the input ids."
        )


def mean_pool(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average of the token vectors where ``attention_mask`` is 1 (padding ignored).

    Shapes:
        last_hidden_state (B, L, D), attention_mask (B, L) -> (B, D).
    """
    _check_hidden(last_hidden_state, attention_mask)
    mask = attention_mask.unsqueeze(-1).to(last_hidden_state.dtype)  # (B, L, 1)
    total = (last_hidden_state * mask).sum(dim=1)  # (B, D)
    return total / mask.sum(dim=1).clamp_min(1e-9)


def cls_pool(
    last_hidden_state: torch.Tensor, attention_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """The first token's vector ([CLS] for BERT); ``attention_mask`` is accepted and unused.

    Shapes:
        last_hidden_state (B, L, D) -> (B, D).
    """
    _check_hidden(last_hidden_state, attention_mask)
    return last_hidden_state[:, 0]


def pool(
    last_hidden_state: torch.Tensor, attention_mask: torch.Tensor, pooling: str = "mean"
) -> torch.Tensor:
    """:func:`mean_pool` or :func:`cls_pool`, by name (one of :data:`POOLINGS`)."""
    if _check_pooling(pooling) == "mean":
        return mean_pool(last_hidden_state, attention_mask)
    return cls_pool(last_hidden_state, attention_mask)


def _hidden_states(
    encoder: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    token_type_ids: torch.Tensor | None,
) -> torch.Tensor:
    kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
    if token_type_ids is not None:
        kwargs["token_type_ids"] = token_type_ids
    out = encoder(**kwargs)
    hidden = getattr(out, "last_hidden_state", None)
    return hidden if hidden is not None else out[0]  # (B, L, D)


def _hidden_size(encoder: nn.Module, hidden_size: int | None) -> int:
    if hidden_size is not None:
        return _check_positive_int("hidden_size", hidden_size, 384)
    size = getattr(getattr(encoder, "config", None), "hidden_size", None)
    if not isinstance(size, int):
        raise ValueError(
            f"cannot tell the width of {type(encoder).__name__}'s token vectors (it has no "
            "config.hidden_size); pass hidden_size=..., e.g. hidden_size=384."
        )
    return size


class SentenceClassifier(nn.Module):
    """Encoder → pooled sentence vector → dropout → linear head; ``forward`` returns logits.

    Args:
        encoder: a BERT-style encoder returning ``.last_hidden_state`` (B, L, D).
        num_labels: classes.
        pooling: "cls" (first token) or "mean" (average of the real tokens).
        dropout: dropout before the head (BERT fine-tuning uses 0.1).
        hidden_size: D; default ``encoder.config.hidden_size``.

    Shapes:
        input_ids, attention_mask (B, L) -> logits (B, num_labels).
    """

    def __init__(
        self,
        encoder: nn.Module,
        num_labels: int,
        *,
        pooling: str = "cls",
        dropout: float = 0.1,
        hidden_size: int | None = None,
    ) -> None:
        super().__init__()
        _check_positive_int("num_labels", num_labels, 4, minimum=2)
        if not isinstance(dropout, int | float) or not 0 <= dropout < 1:
            raise ValueError(f"dropout={dropout!r} must be in [0, 1), e.g. dropout=0.1.")
        self.encoder = encoder
        self.pooling = _check_pooling(pooling)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(_hidden_size(encoder, hidden_size), num_labels)
        self.num_labels = num_labels

    def embed(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The pooled sentence vectors (B, D), before dropout and head."""
        hidden = _hidden_states(self.encoder, input_ids, attention_mask, token_type_ids)
        return pool(hidden, attention_mask, self.pooling)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Class logits (B, num_labels)."""
        embedding = self.embed(input_ids, attention_mask, token_type_ids)
        return self.head(self.dropout(embedding))
