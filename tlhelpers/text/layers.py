"""The transformer blocks of a text model as parameter groups, and top-k freezing.

:func:`transformer_layers` finds the blocks of a BERT-style encoder, :func:`text_layer_groups`
groups the parameters by block (embeddings, layer0..layerN-1, pooler, head), and
:func:`train_top_layers` fine-tunes only the top k blocks and the head.
"""

from __future__ import annotations

from torch import nn

from tlhelpers.text.heads import SentenceClassifier
from tlhelpers.text.qa import QuestionAnswering

__all__ = [
    "text_encoder_of",
    "text_layer_groups",
    "train_top_layers",
    "transformer_layers",
]


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
            "pooler); pass a BertModel such as load_backbone('minilm').model, or a model "
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

