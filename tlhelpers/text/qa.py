"""Extractive question answering: start and end logits over the tokens (Devlin et al. 2019,
section 4.2), their loss, the best span, and the inputs with their answer positions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tlhelpers.text.heads import _hidden_size, _hidden_states
from tlhelpers.text.tokens import (
    _call_tokenizer,
    _check_max_length,
    _check_positive_int,
    _check_texts,
)

__all__ = [
    "QuestionAnswering",
    "SpanLogits",
    "answer_mask",
    "decode_spans",
    "span_loss",
    "tokenize_qa",
]


@dataclass
class SpanLogits:
    """Start and end scores over the tokens, each (B, L); ``logits`` stacks them (B, 2, L).

    ``fit`` reads ``.logits``: with targets (B, 2) = (start, end) token positions, its
    "accuracy" is the percentage (0–100) of boundaries predicted exactly.
    """

    start_logits: torch.Tensor
    end_logits: torch.Tensor

    @property
    def logits(self) -> torch.Tensor:
        """(B, 2, L): start scores in ``[:, 0]``, end scores in ``[:, 1]``."""
        return torch.stack([self.start_logits, self.end_logits], dim=1)


class QuestionAnswering(nn.Module):
    """Extractive QA head (BERT, Devlin et al. 2019): a linear layer gives every token a start
    and an end score; the answer is the best-scoring span of the context.

    Positions where ``answer_mask`` is False (question, special and padding tokens) get the
    lowest float score, so softmax gives them probability 0. Build the mask with
    :func:`answer_mask` (or take it from :func:`tokenize_qa`).

    Shapes:
        input_ids, attention_mask, token_type_ids, answer_mask (B, L) -> :class:`SpanLogits`
        with start and end logits (B, L).
    """

    def __init__(self, encoder: nn.Module, *, hidden_size: int | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(_hidden_size(encoder, hidden_size), 2)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        answer_mask: torch.Tensor | None = None,
    ) -> SpanLogits:
        """Start and end logits (B, L), masked where ``answer_mask`` is False."""
        hidden = _hidden_states(self.encoder, input_ids, attention_mask, token_type_ids)
        scores = self.head(hidden)  # (B, L, 2)
        if answer_mask is not None:
            if answer_mask.shape != input_ids.shape:
                raise ValueError(
                    f"answer_mask has shape {tuple(answer_mask.shape)}; it must match input_ids "
                    f"{tuple(input_ids.shape)}."
                )
            lowest = torch.finfo(scores.dtype).min
            scores = scores.masked_fill(~answer_mask.bool().unsqueeze(-1), lowest)
        return SpanLogits(scores[..., 0], scores[..., 1])


def _span_tensor(logits: SpanLogits | torch.Tensor) -> torch.Tensor:
    tensor = logits.logits if isinstance(logits, SpanLogits) else logits
    if not isinstance(tensor, torch.Tensor) or tensor.dim() != 3 or tensor.shape[1] != 2:
        shape = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
        raise ValueError(
            f"span logits must be a SpanLogits or a (B, 2, L) tensor of start and end scores; "
            f"got {shape}."
        )
    return tensor


def span_loss(logits: SpanLogits | torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean of the cross-entropy of the start positions and that of the end positions.

    ``(CE(start_logits, targets[:, 0]) + CE(end_logits, targets[:, 1])) / 2``, the standard
    extractive-QA loss; pass ``fit(..., loss_fn=span_loss)``.

    Shapes:
        logits (B, 2, L) or SpanLogits, targets (B, 2) token positions -> scalar.
    """
    scores = _span_tensor(logits)
    batch, _, length = scores.shape
    if targets.shape != (batch, 2) or targets.is_floating_point():
        raise ValueError(
            f"targets must be integer (start, end) token positions of shape ({batch}, 2); got "
            f"{targets.dtype} {tuple(targets.shape)}."
        )
    if targets.min() < 0 or targets.max() >= length:
        raise ValueError(
            f"target positions must lie in 0..{length - 1} (the batch's tokens); got "
            f"{targets.min().item()}..{targets.max().item()}. Tokenise with a larger max_length."
        )
    picked = scores.gather(2, targets.unsqueeze(-1))  # (B, 2, 1)
    if (picked <= torch.finfo(scores.dtype).min / 2).any():
        raise ValueError(
            "a target start or end lies at a masked position (question, special or padding "
            "token); answers must be inside the context. Check the spans from tokenize_qa()."
        )
    start = F.cross_entropy(scores[:, 0], targets[:, 0])
    end = F.cross_entropy(scores[:, 1], targets[:, 1])
    return (start + end) / 2


def decode_spans(
    logits: SpanLogits | torch.Tensor,
    *,
    max_answer_length: int = 30,
    answer_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The best span per example: argmax of ``start[s] + end[e]`` over ``s <= e < s + max``.

    Args:
        logits: :class:`SpanLogits` or (B, 2, L) start and end scores.
        max_answer_length: longest answer in tokens.
        answer_mask: (B, L) bool, True where an answer may start or end (default: anywhere).

    Returns:
        ``spans`` (B, 2) int64 (start, end), inclusive token positions; ``scores`` (B,).
    """
    scores = _span_tensor(logits).detach().float()
    _check_positive_int("max_answer_length", max_answer_length, 30)
    batch, _, length = scores.shape
    start, end = scores[:, 0], scores[:, 1]
    pair = start.unsqueeze(2) + end.unsqueeze(1)  # (B, L, L): [b, s, e]
    position = torch.arange(length, device=scores.device)
    gap = position.view(1, -1) - position.view(-1, 1)  # e - s
    valid = ((gap >= 0) & (gap < max_answer_length)).unsqueeze(0)  # (1, L, L)
    if answer_mask is not None:
        allowed = answer_mask.bool().to(scores.device)
        if allowed.shape != (batch, length):
            raise ValueError(
                f"answer_mask has shape {tuple(allowed.shape)}; expected ({batch}, {length})."
            )
        empty = (~allowed.any(dim=1)).nonzero().flatten().tolist()
        if empty:
            raise ValueError(f"answer_mask allows no token in examples {empty[:5]}.")
        valid = valid & allowed.unsqueeze(2) & allowed.unsqueeze(1)
    pair = pair.masked_fill(~valid, float("-inf"))
    best, flat = pair.flatten(1).max(dim=1)
    spans = torch.stack([flat // length, flat % length], dim=1)
    return spans, best


def answer_mask(inputs: Mapping[str, torch.Tensor], tokenizer: Any) -> torch.Tensor:
    """(N, L) bool: True at the context's real tokens (segment 1, not special, not padding)."""
    if "token_type_ids" not in inputs:
        raise ValueError(
            "inputs have no token_type_ids, so question and context cannot be told apart; "
            "tokenize questions with text_pairs=contexts (or use tokenize_qa)."
        )
    special = torch.tensor(sorted(set(tokenizer.all_special_ids)), dtype=torch.long)
    ids = inputs["input_ids"]
    is_special = torch.isin(ids, special.to(ids.device))
    return (inputs["token_type_ids"] == 1) & (inputs["attention_mask"] == 1) & ~is_special


def tokenize_qa(
    tokenizer: Any,
    questions: Sequence[str],
    contexts: Sequence[str],
    answers: Sequence[str],
    max_length: int = 128,
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Inputs and (start, end) token targets for extractive QA with a fast tokenizer.

    Each answer is located at its first occurrence in its context (case-sensitive), and mapped
    to the first and last context token it covers.

    Returns:
        ``inputs`` ``{"input_ids", "attention_mask", "token_type_ids", "answer_mask"}`` (N, L)
        and ``targets`` (N, 2) int64, inclusive token positions.
    """
    questions = _check_texts(questions, "questions")
    contexts = _check_texts(contexts, "contexts")
    answers = _check_texts(answers, "answers")
    if not len(questions) == len(contexts) == len(answers):
        raise ValueError(
            f"{len(questions)} questions, {len(contexts)} contexts and {len(answers)} answers; "
            "pass one of each per example."
        )
    _check_max_length(max_length, tokenizer)
    encoding = _call_tokenizer(tokenizer, questions, contexts, max_length)
    targets = []
    for i, (context, answer) in enumerate(zip(contexts, answers, strict=True)):
        first = context.find(answer)
        if first < 0:
            raise ValueError(f"answers[{i}]={answer!r} does not occur in contexts[{i}].")
        start = encoding.char_to_token(i, first, sequence_index=1)
        end = encoding.char_to_token(i, first + len(answer) - 1, sequence_index=1)
        if start is None or end is None:
            raise ValueError(
                f"answers[{i}]={answer!r} was cut off at max_length={max_length} tokens (or "
                "starts or ends on a space); raise max_length or shorten the context."
            )
        targets.append((start, end))
    inputs = {
        key: encoding[key].long() for key in ("input_ids", "attention_mask", "token_type_ids")
    }
    inputs["answer_mask"] = answer_mask(inputs, tokenizer)
    return inputs, torch.tensor(targets, dtype=torch.long)
