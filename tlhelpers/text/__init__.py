"""The text side of the course: tokenising, batching, pooling, task heads and sentence features.

Everything here works with a BERT-style encoder such as the course's all-MiniLM-L6-v2
(``load_backbone("minilm")``, see :mod:`tlhelpers.models.registry`) and with the course's one
training loop (:func:`tlhelpers.train.fit`). Every name is importable from ``tlhelpers.text``;
the modules:

- :mod:`~tlhelpers.text.tokens`: :func:`tokenize` and :class:`TextLoader` turn strings into
  batches ``({"input_ids", "attention_mask"}, labels)``, which ``fit`` passes as
  ``model(**inputs)``;
- :mod:`~tlhelpers.text.heads`: :func:`mean_pool` and :func:`cls_pool` turn token vectors
  (B, L, D) into one vector per text; :class:`SentenceClassifier` (pooled encoder + linear head,
  returns logits);
- :mod:`~tlhelpers.text.qa`: :class:`QuestionAnswering` (extractive QA: start and end logits
  over the tokens, Devlin et al. 2019, section 4.2) with :func:`span_loss`,
  :func:`decode_spans` and :func:`tokenize_qa`;
- :mod:`~tlhelpers.text.embeddings`: :func:`encode_texts`, frozen sentence embeddings cached
  on disk like :func:`tlhelpers.features.extract_features`;
- :mod:`~tlhelpers.text.layers`: :func:`transformer_layers` and :func:`text_layer_groups`
  name the transformer blocks; :func:`train_top_layers` fine-tunes only the top k of them.
"""

from tlhelpers.text.embeddings import encode_texts, text_feature_cache_path
from tlhelpers.text.heads import POOLINGS, SentenceClassifier, cls_pool, mean_pool, pool
from tlhelpers.text.layers import (
    text_encoder_of,
    text_layer_groups,
    train_top_layers,
    transformer_layers,
)
from tlhelpers.text.qa import (
    QuestionAnswering,
    SpanLogits,
    answer_mask,
    decode_spans,
    span_loss,
    tokenize_qa,
)
from tlhelpers.text.tokens import TextLoader, tokenize

__all__ = [
    "POOLINGS",
    "QuestionAnswering",
    "SentenceClassifier",
    "SpanLogits",
    "TextLoader",
    "answer_mask",
    "cls_pool",
    "decode_spans",
    "encode_texts",
    "mean_pool",
    "pool",
    "span_loss",
    "text_encoder_of",
    "text_feature_cache_path",
    "text_layer_groups",
    "tokenize",
    "tokenize_qa",
    "train_top_layers",
    "transformer_layers",
]
