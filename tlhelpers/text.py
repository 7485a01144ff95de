"""The text side of the course: tokenising, batching, pooling, task heads and sentence features.

Everything here works with a BERT-style encoder such as the course's all-MiniLM-L6-v2 (see
:mod:`tlhelpers.models.text_backbones`) and with the course's one training loop
(:func:`tlhelpers.train.fit`):

- :func:`tokenize` and :class:`TextLoader` turn strings into batches
  ``({"input_ids", "attention_mask"}, labels)``, which ``fit`` passes as ``model(**inputs)``;
- :func:`mean_pool` and :func:`cls_pool` turn token vectors (B, L, D) into one vector per text;
- :class:`SentenceClassifier` (pooled encoder + linear head, returns logits) and
  :class:`QuestionAnswering` (extractive QA: start and end logits over the tokens, Devlin et
  al. 2019, section 4.2) with :func:`span_loss` and :func:`decode_spans`;
- :func:`encode_texts`: frozen sentence embeddings, cached on disk like
  :func:`tlhelpers.features.extract_features`; :func:`embedding_drift` compares two encoders'
  embeddings of the same texts (how far fine-tuning moved the representation: catastrophic
  forgetting, McCloskey & Cohen 1989; Kirkpatrick et al. 2017);
- :func:`train_top_layers` and :func:`text_param_groups`: fine-tune only the top k transformer
  blocks, or all of them with ULMFiT's discriminative learning rates (Howard & Ruder, 2018).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tlhelpers.data.loader import TensorLoader
from tlhelpers.features import weights_fingerprint
from tlhelpers.files import atomic_write
from tlhelpers.models.surgery import discriminative_lrs, eval_mode
from tlhelpers.settings import cache_dir, pick_device

__all__ = [
    "POOLINGS",
    "TEXT_CACHE_VERSION",
    "QuestionAnswering",
    "SentenceClassifier",
    "SpanLogits",
    "TextLoader",
    "answer_mask",
    "cls_pool",
    "decode_spans",
    "embedding_drift",
    "encode_labels",
    "encode_texts",
    "mean_pool",
    "pool",
    "span_loss",
    "text_encoder_of",
    "text_feature_cache_path",
    "text_layer_groups",
    "text_loader",
    "text_param_groups",
    "tokenize",
    "tokenize_qa",
    "tokenizer_fingerprint",
    "train_top_layers",
    "transformer_layers",
]

TEXT_CACHE_VERSION = 1  # bump when the way sentence features are computed changes
POOLINGS = ("cls", "mean")


# ---------------------------------------------------------------- checks


def _check_texts(texts: Sequence[str], argument: str = "texts") -> list[str]:
    if isinstance(texts, str):
        raise TypeError(
            f"{argument} must be a list of strings, not one string ({texts[:30]!r}); "
            f"wrap it: [{argument[:-1] if argument.endswith('s') else argument}]."
        )
    texts = list(texts)
    if not texts:
        raise ValueError(f"{argument} is empty; pass at least one string.")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"{argument}[{i}] is {type(text).__name__} ({text!r}), not a string.")
    empty = [i for i, text in enumerate(texts) if not text.strip()]
    if empty:
        raise ValueError(
            f"{argument}{empty[:5]} {'is' if len(empty) == 1 else 'are'} empty or only "
            f"whitespace ({len(empty)} in all); drop them before tokenising."
        )
    return texts


def _check_positive_int(argument: str, value: object, example: int, minimum: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(
            f"{argument}={value!r} must be an integer >= {minimum}, e.g. {argument}={example}."
        )
    return value


def _check_pooling(pooling: str) -> str:
    if pooling not in POOLINGS:
        raise ValueError(
            f"pooling={pooling!r} is not supported; valid choices: {', '.join(POOLINGS)} "
            '(mean: average of the real tokens, as all-MiniLM-L6-v2 was trained; cls: the first '
            "token's vector)."
        )
    return pooling


def _check_max_length(max_length: int, tokenizer: Any) -> int:
    _check_positive_int("max_length", max_length, 64, minimum=3)
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and max_length > limit:
        raise ValueError(
            f"max_length={max_length} is longer than the model takes ({limit} tokens); "
            f"use max_length <= {limit}."
        )
    return max_length


# ---------------------------------------------------------------- tokens and batches


def _call_tokenizer(
    tokenizer: Any, texts: list[str], text_pairs: list[str] | None, max_length: int
) -> Any:
    try:
        return tokenizer(
            texts,
            text_pairs,
            padding="longest",
            truncation="only_second" if text_pairs is not None else True,
            max_length=max_length,
            return_tensors="pt",
            return_token_type_ids=text_pairs is not None,
        )
    except Exception as error:  # the Rust tokenizer raises a bare Exception
        if text_pairs is None or "truncat" not in str(error).lower():
            raise
        raise ValueError(
            f"max_length={max_length} leaves no room for the second segment: a first segment "
            f"(e.g. a question) fills it ({error}). Raise max_length or shorten the questions."
        ) from None


def tokenize(
    tokenizer: Any,
    texts: Sequence[str],
    max_length: int = 64,
    *,
    text_pairs: Sequence[str] | None = None,
) -> dict[str, torch.Tensor]:
    """Token ids and attention mask of ``texts``, padded to the longest, cut at ``max_length``.

    Args:
        tokenizer: a Hugging Face tokenizer (e.g. from :func:`load_text_encoder`).
        texts: non-empty strings.
        max_length: tokens per text at most, [CLS] and [SEP] included (longer texts are cut).
        text_pairs: second segments (e.g. contexts after questions); only they are cut, and
            ``token_type_ids`` (0 first segment, 1 second) are returned as well.

    Returns:
        ``{"input_ids", "attention_mask"}`` (+ ``"token_type_ids"`` with pairs), each (N, L)
        int64 with L <= ``max_length``; padding is on the right, with attention mask 0.
    """
    texts = _check_texts(texts)
    _check_max_length(max_length, tokenizer)
    if text_pairs is not None:
        text_pairs = _check_texts(text_pairs, "text_pairs")
        if len(text_pairs) != len(texts):
            raise ValueError(
                f"texts has {len(texts)} entries but text_pairs has {len(text_pairs)}; pass one "
                "second segment per text."
            )
    encoding = _call_tokenizer(tokenizer, texts, text_pairs, max_length)
    keys = ["input_ids", "attention_mask"] + (["token_type_ids"] if text_pairs else [])
    return {key: encoding[key].long() for key in keys}


def encode_labels(
    labels: Sequence[str] | Sequence[int] | torch.Tensor, classes: Sequence[str] | None = None
) -> torch.Tensor:
    """Class indices (N,) int64 from label names (mapped by ``classes``) or integer labels.

    Integer labels are checked to lie in ``0..len(classes)-1`` when ``classes`` is given.
    """
    values = labels.tolist() if hasattr(labels, "tolist") else list(labels)  # tensor, array
    if not values:
        raise ValueError("labels is empty; pass one label per text.")
    if classes is not None:
        classes = list(classes)
        if not classes or len(set(classes)) != len(classes):
            raise ValueError(f"classes={classes!r} must list each class name once.")
    if all(isinstance(v, str) for v in values):
        if classes is None:
            raise ValueError(
                f"labels are names (e.g. {values[0]!r}); pass classes=[...] to fix their order, "
                f"e.g. classes={sorted(set(values))!r}."
            )
        unknown = sorted({v for v in values if v not in classes})
        if unknown:
            raise ValueError(
                f"labels {unknown[:5]!r} are not in classes; valid choices: "
                f"{', '.join(map(repr, classes))}. Fix the labels or add them to classes."
            )
        return torch.tensor([classes.index(v) for v in values], dtype=torch.long)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        kinds = sorted({type(v).__name__ for v in values})
        raise TypeError(f"labels must be all class names or all integers; got {kinds}.")
    limit = len(classes) if classes is not None else None
    bad = sorted({v for v in values if v < 0 or (limit is not None and v >= limit)})
    if bad:
        valid = f"0..{limit - 1}" if limit is not None else "non-negative integers"
        raise ValueError(f"labels {bad[:5]} are not valid class indices; valid: {valid}.")
    return torch.tensor(values, dtype=torch.long)


class TextLoader(TensorLoader):
    """Batches ``({"input_ids": ..., "attention_mask": ..., ...}, labels)`` of tokenised texts.

    Same conventions as :class:`~tlhelpers.data.TensorLoader` (which it extends): a new order
    every epoch drawn from ``seed`` + epoch number, so two loaders with the same seed give the
    same batches. With ``trim`` each batch drops the padding columns that no text in it needs
    (same numbers, less work: short sentences padded to the longest one cost a lot on a CPU).
    Keep ``trim=False`` when outputs over the tokens (QA logits) are concatenated across batches.

    Args:
        inputs: tensors of the same first dimension N, e.g. from :func:`tokenize`.
        labels: targets, shape (N, ...), e.g. class indices (N,) or answer spans (N, 2).
        batch_size, shuffle, seed, drop_last: as for TensorLoader.
        trim: cut the batch's trailing all-padding columns (needs ``attention_mask``).
    """

    def __init__(
        self,
        inputs: Mapping[str, torch.Tensor],
        labels: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
        trim: bool = True,
    ) -> None:
        if not isinstance(inputs, Mapping) or not inputs:
            raise TypeError(
                f"inputs must be a non-empty dict of tensors such as tokenize() returns; got "
                f"{type(inputs).__name__}."
            )
        sizes = {key: len(value) for key, value in inputs.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"inputs have different lengths {sizes}; tokenize them together.")
        if trim and "attention_mask" not in inputs:
            raise ValueError(
                f"trim=True needs inputs['attention_mask']; inputs has {list(inputs)}. Pass "
                "trim=False or tokenize with tokenize()."
            )
        first = next(iter(inputs.values()))
        super().__init__(
            first, labels, batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last
        )
        self.inputs = dict(inputs)
        self.trim = bool(trim)

    def _batch(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        batch = {key: value[idx] for key, value in self.inputs.items()}
        if not self.trim:
            return batch
        mask = batch["attention_mask"]  # (B, L)
        used = mask.bool().any(dim=0).nonzero()
        width = int(used.max()) + 1 if len(used) else mask.shape[1]
        length = mask.shape[1]
        return {
            key: value[:, :width] if value.dim() >= 2 and value.shape[1] == length else value
            for key, value in batch.items()
        }

    def __iter__(self) -> Iterator[tuple[dict[str, torch.Tensor], torch.Tensor]]:
        """Yield the batches of the next epoch."""
        order = self._order()
        self.epoch += 1
        for b in range(len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            yield self._batch(idx), self.y[idx]


def text_loader(
    tokenizer: Any,
    texts: Sequence[str],
    labels: Sequence[str] | Sequence[int] | torch.Tensor,
    *,
    classes: Sequence[str] | None = None,
    max_length: int = 64,
    batch_size: int = 32,
    shuffle: bool = False,
    seed: int = 0,
    drop_last: bool = False,
) -> TextLoader:
    """Tokenise ``texts``, encode ``labels`` (see :func:`encode_labels`) and batch them."""
    inputs = tokenize(tokenizer, texts, max_length)
    targets = encode_labels(labels, classes)
    if len(targets) != len(inputs["input_ids"]):
        raise ValueError(
            f"{len(inputs['input_ids'])} texts but {len(targets)} labels; pass one label per text."
        )
    return TextLoader(
        inputs, targets, batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last
    )


# ---------------------------------------------------------------- pooling


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


# ---------------------------------------------------------------- heads


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


@dataclass
class SpanLogits:
    """Start and end scores over the tokens, each (B, L); ``logits`` stacks them (B, 2, L).

    ``fit`` reads ``.logits``: with targets (B, 2) = (start, end) token positions, its
    "accuracy" is the share of boundaries predicted exactly.
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


# ---------------------------------------------------------------- frozen sentence features


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """sha256 (hex) of what decides a tokenizer's output: its full pipeline or its vocabulary.

    A fast tokenizer's pipeline is its JSON without the ``truncation`` and ``padding`` settings,
    which the tokenizer changes on every call (they are set per call, by ``max_length``).
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None and hasattr(backend, "to_str"):
        pipeline = json.loads(backend.to_str())
        pipeline.pop("truncation", None)
        pipeline.pop("padding", None)
        text = json.dumps(pipeline, sort_keys=True)
    else:
        text = json.dumps(sorted(tokenizer.get_vocab().items()))
    digest = hashlib.sha256(f"{type(tokenizer).__name__};".encode())
    digest.update(text.encode("utf-8"))
    return digest.hexdigest()


def _texts_fingerprint(texts: list[str]) -> str:
    return hashlib.sha256(json.dumps(texts, ensure_ascii=False).encode("utf-8")).hexdigest()


def text_feature_cache_path(
    encoder: nn.Module,
    tokenizer: Any,
    texts: Sequence[str],
    *,
    pooling: str = "mean",
    max_length: int = 64,
    normalize: bool = False,
    directory: str | Path | None = None,
) -> Path:
    """Where :func:`encode_texts` caches these embeddings (the file may not exist yet)."""
    spec = {
        "version": TEXT_CACHE_VERSION,
        "model": type(encoder).__name__,
        "weights": weights_fingerprint(encoder),
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "texts": _texts_fingerprint(_check_texts(texts)),
        "pooling": _check_pooling(pooling),
        "max_length": max_length,
        "normalize": bool(normalize),
    }
    key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:32]
    folder = Path(directory) if directory is not None else cache_dir() / "text-features"
    return folder / f"{type(encoder).__name__}-{pooling}-{key}.npy"


def _load_cached(path: Path, n: int) -> np.ndarray | None:
    try:
        features = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    ok = features.ndim == 2 and features.shape[0] == n and np.isfinite(features).all()
    return features if ok else None


@torch.no_grad()
def _embed_all(
    encoder: nn.Module,
    tokenizer: Any,
    texts: list[str],
    pooling: str,
    batch_size: int,
    max_length: int,
    normalize: bool,
    device: torch.device,
) -> np.ndarray:
    """Sentence vectors in input order; texts of similar length are batched together."""
    with eval_mode(encoder):  # no dropout
        encoder.to(device)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        chunks = []
        for start in range(0, len(order), batch_size):
            batch = [texts[i] for i in order[start : start + batch_size]]
            inputs = tokenize(tokenizer, batch, max_length)
            inputs = {k: v.to(device) for k, v in inputs.items()}
            hidden = _hidden_states(encoder, inputs["input_ids"], inputs["attention_mask"], None)
            vectors = pool(hidden, inputs["attention_mask"], pooling).float()
            if normalize:
                vectors = F.normalize(vectors, dim=-1)
            chunks.append(vectors.cpu())
    stacked = torch.cat(chunks)
    result = torch.empty_like(stacked)
    result[torch.tensor(order)] = stacked
    return result.numpy()


def encode_texts(
    encoder: nn.Module,
    tokenizer: Any,
    texts: Sequence[str],
    *,
    pooling: str = "mean",
    batch_size: int = 64,
    max_length: int = 64,
    normalize: bool = False,
    device: str | torch.device = "cpu",
    cache: bool | str | Path = True,
) -> np.ndarray:
    """Sentence embeddings of ``texts`` from a frozen ``encoder``, computed once and cached.

    The encoder runs in eval mode without gradients; afterwards each of its modules is back in
    its own mode. The
    cache file's name is a sha256 of the weights actually in the encoder, the tokenizer, the
    texts, ``pooling``, ``max_length``, ``normalize`` and :data:`TEXT_CACHE_VERSION`; an
    unreadable cache file is recomputed and replaced (atomic write).

    Args:
        encoder: a BERT-style encoder, or a model holding one (see :func:`text_encoder_of`).
        tokenizer: its tokenizer.
        texts: non-empty strings.
        pooling: "mean" (all-MiniLM-L6-v2's own) or "cls".
        batch_size: texts per forward pass.
        max_length: tokens per text at most.
        normalize: scale every embedding to unit length.
        device: where to run ("cpu", "cuda", "auto", ...).
        cache: True uses ``cache_dir()/text-features``; a path uses that folder; False never
            reads or writes a cache.

    Returns:
        float32 array (N, D).
    """
    encoder = text_encoder_of(encoder)
    texts = _check_texts(texts)
    _check_pooling(pooling)
    _check_positive_int("batch_size", batch_size, 64)
    _check_max_length(max_length, tokenizer)

    def compute() -> np.ndarray:
        return _embed_all(
            encoder, tokenizer, texts, pooling, batch_size, max_length, normalize,
            pick_device(device),
        )

    if cache is False or cache is None:
        return compute()
    path = text_feature_cache_path(
        encoder, tokenizer, texts, pooling=pooling, max_length=max_length, normalize=normalize,
        directory=None if cache is True else Path(cache),
    )
    if path.exists() and (features := _load_cached(path, len(texts))) is not None:
        return features
    features = compute()

    def write(handle: io.BufferedWriter) -> None:
        np.save(handle, features, allow_pickle=False)

    atomic_write(path, write)
    return features


def embedding_drift(
    original_encoder: nn.Module,
    tuned_encoder: nn.Module,
    tokenizer: Any,
    texts: Sequence[str],
    *,
    pooling: str = "mean",
    batch_size: int = 64,
    max_length: int = 64,
    device: str | torch.device = "cpu",
) -> float:
    """Mean cosine similarity between two encoders' embeddings of the same texts.

    1.0: fine-tuning left the sentence representation where it was; lower values: it moved
    (a measure of catastrophic forgetting of the pretrained representation). Either argument may
    be a model holding the encoder (a :class:`SentenceClassifier`, a Hugging Face ``...For...``
    model). Nothing is cached: a tuned encoder changes from run to run.
    """
    options = {
        "pooling": pooling, "batch_size": batch_size, "max_length": max_length,
        "device": device, "cache": False,
    }
    before = torch.from_numpy(encode_texts(original_encoder, tokenizer, texts, **options))
    after = torch.from_numpy(encode_texts(tuned_encoder, tokenizer, texts, **options))
    if before.shape != after.shape:
        raise ValueError(
            f"the encoders give embeddings of shapes {tuple(before.shape)} and "
            f"{tuple(after.shape)}; compare two copies of the same architecture."
        )
    return float(F.cosine_similarity(before.double(), after.double(), dim=1).mean())


# ---------------------------------------------------------------- layers and freezing


def text_encoder_of(model: nn.Module) -> nn.Module:
    """The transformer inside ``model``: the ``encoder`` of a :class:`SentenceClassifier` or
    :class:`QuestionAnswering`, the ``base_model`` of a Hugging Face ``...For...`` model, or
    ``model`` itself."""
    if isinstance(model, SentenceClassifier | QuestionAnswering):
        return model.encoder
    base = getattr(model, "base_model", None)
    if isinstance(base, nn.Module) and base is not model:
        return base
    return model


def transformer_layers(model: nn.Module) -> nn.ModuleList:
    """The transformer blocks of a BERT-style encoder (``encoder.layer``), input to output."""
    encoder = text_encoder_of(model)
    layers = getattr(getattr(encoder, "encoder", None), "layer", None)
    if not isinstance(layers, nn.ModuleList) or not hasattr(encoder, "embeddings"):
        raise TypeError(
            f"{type(encoder).__name__} is not a BERT-style encoder (embeddings, encoder.layer[i], "
            "pooler); pass a BertModel such as load_text_encoder('minilm') gives, or a model "
            "holding one."
        )
    return layers


def text_layer_groups(model: nn.Module) -> dict[str, list[nn.Parameter]]:
    """Parameters by group, input to output: embeddings, layer0..layerN-1, pooler, head.

    ``pooler`` (BERT's tanh layer on [CLS]) appears when the encoder has one; ``head`` holds
    every parameter of ``model`` outside the encoder (a classifier, a QA head), if any.
    """
    encoder = text_encoder_of(model)
    layers = transformer_layers(model)
    groups: dict[str, list[nn.Parameter]] = {"embeddings": list(encoder.embeddings.parameters())}
    for i, layer in enumerate(layers):
        groups[f"layer{i}"] = list(layer.parameters())
    pooler = getattr(encoder, "pooler", None)
    if isinstance(pooler, nn.Module):
        groups["pooler"] = list(pooler.parameters())
    grouped = {id(p) for params in groups.values() for p in params}
    other = [p for p in encoder.parameters() if id(p) not in grouped]
    if other:
        groups["other"] = other  # parameters of the encoder outside these parts (rare)
    inside = {id(p) for p in encoder.parameters()}
    head = [p for p in model.parameters() if id(p) not in inside]
    if head:
        groups["head"] = head
    return groups


def train_top_layers(model: nn.Module, k: int, *, pooler: bool = True) -> list[str]:
    """Freeze the encoder except its top ``k`` transformer blocks; the head always trains.

    ``k=0`` trains only the head (feature extraction); ``k=num_layers`` the whole transformer
    except the embeddings (pass ``k`` = number of blocks and unfreeze ``embeddings`` by hand to
    train everything). ``pooler=True`` also trains BERT's pooler (used by Hugging Face's
    sequence classifier; unused, hence unchanged, by :class:`SentenceClassifier`).

    Returns:
        The names of the groups that train (see :func:`text_layer_groups`).
    """
    layers = transformer_layers(model)
    n = len(layers)
    if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k <= n:
        raise ValueError(
            f"k={k!r} must be an integer from 0 (train only the head) to {n} (every "
            f"transformer block of {type(text_encoder_of(model)).__name__}); e.g. k=2."
        )
    groups = text_layer_groups(model)
    train = [f"layer{i}" for i in range(n - k, n)]
    if pooler and "pooler" in groups:
        train.append("pooler")
    if "head" in groups:
        train.append("head")
    for p in model.parameters():
        p.requires_grad_(False)
    for name in train:
        for p in groups[name]:
            p.requires_grad_(True)
    return train


def text_param_groups(
    model: nn.Module, top_lr: float, *, factor: float = 2.6
) -> list[dict[str, Any]]:
    """Optimizer groups with ULMFiT's discriminative learning rates over the text groups.

    The top group (the head, if any) learns at ``top_lr``; each group below it ``factor`` times
    slower (:func:`tlhelpers.models.discriminative_lrs`). Frozen parameters are left out, so
    ``train_top_layers`` then ``text_param_groups`` trains only the top blocks.

    Returns:
        Groups input to output, each ``{"params", "lr", "name"}``, for ``torch.optim.AdamW``.
    """
    groups = text_layer_groups(model)
    lrs = discriminative_lrs(list(groups), top_lr, factor=factor)
    result = []
    for name, params in groups.items():
        trainable = [p for p in params if p.requires_grad]
        if trainable:
            result.append({"params": trainable, "lr": lrs[name], "name": name})
    if not result:
        raise ValueError(
            "every parameter of the model is frozen; unfreeze some first, e.g. "
            "train_top_layers(model, k=2)."
        )
    return result
