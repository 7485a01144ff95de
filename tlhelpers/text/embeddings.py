"""Frozen sentence embeddings, cached on disk.

:func:`encode_texts` is :func:`tlhelpers.features.extract_features` for texts, and
:func:`text_feature_cache_path` is where it keeps them, as
:func:`tlhelpers.features.feature_cache_path` is for images.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tlhelpers.cache import cache_argument_fix, finite_rows, load_or_compute, spec_path
from tlhelpers.features import weights_fingerprint
from tlhelpers.models.surgery import eval_mode
from tlhelpers.settings import pick_device
from tlhelpers.text.heads import _check_pooling, _hidden_states, pool
from tlhelpers.text.layers import text_encoder_of
from tlhelpers.text.tokens import _check_max_length, _check_positive_int, _check_texts, tokenize

__all__ = ["encode_texts", "text_feature_cache_path"]

_CACHE_VERSION = 1  # bump when the way sentence features are computed changes


def _tokenizer_fingerprint(tokenizer: Any) -> str:
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
        "version": _CACHE_VERSION,
        "model": type(encoder).__name__,
        "weights": weights_fingerprint(encoder),
        "tokenizer": _tokenizer_fingerprint(tokenizer),
        "texts": _texts_fingerprint(_check_texts(texts)),
        "pooling": _check_pooling(pooling),
        "max_length": max_length,
        "normalize": bool(normalize),
    }
    prefix = f"{type(encoder).__name__}-{pooling}"
    return spec_path(spec, prefix=prefix, folder="text-features", directory=directory)


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
    its own mode. The cache file's name is a sha256 of the weights actually in the encoder, the
    tokenizer, the texts, ``pooling``, ``max_length``, ``normalize`` and a version of this
    code; a damaged cache file is recomputed and replaced, and an
    unwritable cache folder only warns (see :mod:`tlhelpers.cache`).

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
    return load_or_compute(
        lambda: text_feature_cache_path(
            encoder, tokenizer, texts, pooling=pooling, max_length=max_length,
            normalize=normalize, directory=None if cache is True else Path(cache),
        ),
        compute,
        check=finite_rows(len(texts)),
        fix=cache_argument_fix(cache),
    )

