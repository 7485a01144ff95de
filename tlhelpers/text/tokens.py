"""Strings to model inputs: token ids and attention masks, class labels, and batches of them.

:func:`tokenize` and :class:`TextLoader` turn strings into batches
``({"input_ids", "attention_mask"}, labels)``, which :func:`tlhelpers.train.fit` passes as
``model(**inputs)``. The argument checks shared by the text modules live here too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from tlhelpers.data.loader import TensorLoader

__all__ = ["TextLoader", "tokenize"]


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
        tokenizer: a Hugging Face tokenizer (e.g. ``load_backbone("minilm").tokenizer``).
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


class TextLoader(TensorLoader):
    """Batches ``({"input_ids": ..., "attention_mask": ..., ...}, labels)`` of tokenised texts.

    A :class:`~tlhelpers.data.TensorLoader` over a dict of inputs: a new order every epoch drawn
    from ``seed`` + epoch number, so two loaders with the same seed give the same batches. With
    ``trim`` each batch drops the padding columns that no text in it needs (same numbers, less
    work: short sentences padded to the longest one cost a lot on a CPU). Keep ``trim=False``
    when outputs over the tokens (QA logits) are concatenated across batches.

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
        if trim and "attention_mask" not in inputs:
            raise ValueError(
                f"trim=True needs inputs['attention_mask']; inputs has {list(inputs)}. Pass "
                "trim=False or tokenize with tokenize()."
            )
        super().__init__(
            inputs, labels, batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last,
            transform=_trim_padding if trim else None,
        )
        self.trim = bool(trim)


def _trim_padding(batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``batch`` without the trailing columns where every ``attention_mask`` entry is 0."""
    mask = batch["attention_mask"]  # (B, L)
    used = mask.bool().any(dim=0).nonzero()
    width = int(used.max()) + 1 if len(used) else mask.shape[1]
    length = mask.shape[1]
    return {
        key: value[:, :width] if value.dim() >= 2 and value.shape[1] == length else value
        for key, value in batch.items()
    }
