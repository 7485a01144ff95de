"""Text helpers: tokenising and batching, pooling, classification and QA heads, cached sentence
features, embedding drift and top-k freezing; on a tiny random BERT, no network."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
import torch

from tlhelpers.text import (
    QuestionAnswering,
    SentenceClassifier,
    SpanLogits,
    TextLoader,
    answer_mask,
    cls_pool,
    decode_spans,
    encode_texts,
    mean_pool,
    span_loss,
    text_feature_cache_path,
    text_layer_groups,
    tokenize,
    tokenize_qa,
    train_top_layers,
    transformer_layers,
)
from tlhelpers.text.embeddings import _tokenizer_fingerprint
from tlhelpers.train import fit

transformers = pytest.importorskip("transformers")

WORDS = ["the", "a", "cat", "dog", "sat", "on", "mat", "ran", "fast", "good", "bad", "film",
         "movie", "was", "is", "it", "who", "where", "what", "paris", "london", "in", "lives"]
TEXTS = ["the cat sat on the mat", "a dog ran", "it was a good film", "the movie was bad",
         "the dog sat", "a cat ran fast on the mat", "good", "bad movie"]


def make_tokenizer(folder: Path, words: list[str]):
    """A lower-casing WordPiece tokenizer (BERT's) over ``words``."""
    from transformers import BertTokenizerFast

    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    if "vocab_file" in inspect.signature(BertTokenizerFast.__init__).parameters:
        return BertTokenizerFast(vocab_file=str(vocab))  # transformers 4
    return BertTokenizerFast(vocab=str(vocab))  # transformers 5


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory):
    return make_tokenizer(tmp_path_factory.mktemp("vocab"), WORDS)


def tiny_config(layers: int = 4, **extra):
    from transformers import BertConfig

    return BertConfig(
        vocab_size=5 + len(WORDS), hidden_size=16, num_hidden_layers=layers,
        num_attention_heads=2, intermediate_size=32, max_position_embeddings=64, **extra,
    )


def tiny_bert(seed: int = 0, layers: int = 4):
    from transformers import BertModel

    torch.manual_seed(seed)
    return BertModel(tiny_config(layers)).eval()


@pytest.fixture
def encoder():
    return tiny_bert()


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# --- tokenising, labels, batches ---------------------------------------------------------------


def test_tokenize_gives_padded_ids_and_mask(tokenizer) -> None:
    inputs = tokenize(tokenizer, ["the cat sat", "dog"], max_length=16)
    assert set(inputs) == {"input_ids", "attention_mask"}
    assert inputs["input_ids"].shape == inputs["attention_mask"].shape == (2, 5)
    assert inputs["attention_mask"].tolist() == [[1] * 5, [1, 1, 1, 0, 0]]
    cut = tokenize(tokenizer, ["the cat sat on the mat"], max_length=4)
    assert cut["input_ids"].shape == (1, 4)
    pairs = tokenize(tokenizer, ["who"], max_length=16, text_pairs=["the cat"])
    assert pairs["token_type_ids"].tolist() == [[0, 0, 0, 1, 1, 1]]


@pytest.mark.parametrize(
    ("texts", "error", "match"),
    [
        ([], ValueError, "texts is empty"),
        (["the cat", "  "], ValueError, r"texts\[1\] is empty"),
        ("the cat", TypeError, "not one string"),
        (["the cat", 3], TypeError, r"texts\[1\] is int"),
    ],
)
def test_tokenize_rejects_bad_texts(tokenizer, texts, error, match) -> None:
    with pytest.raises(error, match=match):
        tokenize(tokenizer, texts)


def test_tokenize_rejects_bad_lengths(tokenizer) -> None:
    with pytest.raises(ValueError, match="max_length=2"):
        tokenize(tokenizer, ["the cat"], max_length=2)
    with pytest.raises(ValueError, match="text_pairs has 2"):
        tokenize(tokenizer, ["the cat"], text_pairs=["a", "b"])


def test_text_loader_batches_like_tensor_loader(tokenizer) -> None:
    inputs, labels = tokenize(tokenizer, TEXTS), torch.tensor([i % 2 for i in range(8)])
    loader = TextLoader(inputs, labels, 3, shuffle=True, seed=1)
    again = TextLoader(inputs, labels, 3, shuffle=True, seed=1)
    assert len(loader) == 3
    first = [(x["input_ids"].tolist(), y.tolist()) for x, y in loader]
    assert first == [(x["input_ids"].tolist(), y.tolist()) for x, y in again]
    second = [(x["input_ids"].tolist(), y.tolist()) for x, y in loader]
    assert second != first  # a new order every epoch
    labels = sorted(y for _, ys in first for y in ys)
    assert labels == [0, 0, 0, 0, 1, 1, 1, 1]


def test_text_loader_trims_padding_columns_only(tokenizer) -> None:
    inputs = tokenize(tokenizer, ["a", "the cat sat on the mat", "dog"], max_length=32)
    labels = torch.tensor([0, 1, 0])
    loader = TextLoader(inputs, labels, batch_size=1)
    widths = [x["input_ids"].shape[1] for x, _ in loader]
    assert widths == [3, 8, 3]
    for (x, _), ids, mask in zip(loader, inputs["input_ids"], inputs["attention_mask"],
                                  strict=True):
        assert x["input_ids"][0].tolist() == ids[mask.bool()].tolist()
    untrimmed = TextLoader(inputs, labels, batch_size=1, trim=False)
    assert {x["input_ids"].shape[1] for x, _ in untrimmed} == {8}
    with pytest.raises(ValueError, match="different lengths"):
        TextLoader({"input_ids": inputs["input_ids"], "attention_mask": labels[:2]}, labels, 1)


# --- pooling -----------------------------------------------------------------------------------


def test_mean_pool_ignores_padding_and_cls_takes_the_first_token() -> None:
    torch.manual_seed(0)
    hidden = torch.randn(2, 5, 4)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    pooled = mean_pool(hidden, mask)
    assert torch.allclose(pooled[0], hidden[0, :3].mean(0))
    assert torch.allclose(pooled[1], hidden[1].mean(0))
    changed = hidden.clone()
    changed[0, 3:] = 100.0  # what sits under padding must not matter
    assert torch.equal(mean_pool(changed, mask), pooled)
    assert torch.equal(cls_pool(hidden, mask), hidden[:, 0])
    with pytest.raises(ValueError, match=r"attention_mask must be \(B, L\)"):
        mean_pool(hidden, mask[:, :4])


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_classifier_ignores_what_the_padding_tokens_are(tokenizer, encoder, pooling) -> None:
    model = SentenceClassifier(encoder, 3, pooling=pooling).eval()
    inputs = tokenize(tokenizer, ["a", "the cat sat on the mat"])
    other = dict(inputs, input_ids=inputs["input_ids"].clone())
    pad = inputs["attention_mask"] == 0
    assert pad.any()
    other["input_ids"][pad] = 7  # real words where the padding was, still masked out
    with torch.no_grad():
        logits = model(**inputs)
        assert logits.shape == (2, 3)
        assert torch.allclose(model(**other), logits, atol=1e-5)


def test_cls_and_mean_pooling_differ(tokenizer, encoder) -> None:
    inputs = tokenize(tokenizer, ["the cat sat on the mat"])
    with torch.no_grad():
        mean = SentenceClassifier(encoder, 2, pooling="mean").embed(**inputs)
        cls = SentenceClassifier(encoder, 2, pooling="cls").embed(**inputs)
    assert mean.shape == cls.shape == (1, 16)
    assert not torch.allclose(mean, cls)


def test_classifier_rejects_bad_arguments(encoder) -> None:
    with pytest.raises(ValueError, match=r"pooling='max'.*valid choices: cls, mean"):
        SentenceClassifier(encoder, 2, pooling="max")
    with pytest.raises(ValueError, match="num_labels=1"):
        SentenceClassifier(encoder, 1)
    with pytest.raises(ValueError, match=r"dropout=1\.5"):
        SentenceClassifier(encoder, 2, dropout=1.5)
    with pytest.raises(ValueError, match=r"hidden_size=\.\.\."):
        SentenceClassifier(torch.nn.Linear(3, 3), 2)


def test_classifier_trains_with_fit(tokenizer, encoder) -> None:
    torch.manual_seed(0)
    model = SentenceClassifier(encoder, 2, pooling="mean", dropout=0.0)
    labels = torch.tensor([0, 0, 1, 1, 0, 0, 1, 1])
    loader = TextLoader(tokenize(tokenizer, TEXTS), labels, 4, shuffle=True)
    before = model.head.weight.detach().clone()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    history = fit(model, loader, loader, optimizer=optimizer, epochs=3, device="cpu",
                  progress=False)
    assert history.steps == 6 and 0 <= history.val_acc[-1] <= 100
    assert history.train_loss[-1] < history.train_loss[0]
    assert not torch.equal(before, model.head.weight)


def test_hugging_face_classifier_trains_with_fit(tokenizer) -> None:
    from transformers import BertForSequenceClassification

    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_config(num_labels=2))
    loader = TextLoader(tokenize(tokenizer, TEXTS), torch.tensor([0, 1] * 4), 4)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    assert fit(model, loader, optimizer=optimizer, device="cpu", progress=False).steps == 2


# --- question answering ------------------------------------------------------------------------


QUESTIONS = ["who sat on the mat", "where is the dog"]
CONTEXTS = ["the cat sat on the mat", "the dog is in paris"]
ANSWERS = ["the cat", "paris"]


def test_tokenize_qa_finds_answer_tokens_and_masks_the_question(tokenizer) -> None:
    inputs, targets = tokenize_qa(tokenizer, QUESTIONS, CONTEXTS, ANSWERS, max_length=32)
    for i, (start, end) in enumerate(targets.tolist()):
        assert tokenizer.decode(inputs["input_ids"][i, start : end + 1]) == ANSWERS[i]
    mask = inputs["answer_mask"]
    tokens = inputs["input_ids"][mask]
    assert tokenizer.decode(inputs["input_ids"][1][mask[1]]) == CONTEXTS[1]
    assert tokenizer.sep_token_id not in tokens.tolist()
    assert torch.equal(mask, answer_mask(inputs, tokenizer))
    with pytest.raises(ValueError, match=r"answers\[0\]='london' does not occur"):
        tokenize_qa(tokenizer, QUESTIONS[:1], CONTEXTS[:1], ["london"])
    with pytest.raises(ValueError, match="cut off at max_length=8"):
        tokenize_qa(tokenizer, ["who"], CONTEXTS[:1], ["mat"], max_length=8)
    with pytest.raises(ValueError, match="max_length=8 leaves no room"):
        tokenize_qa(tokenizer, QUESTIONS[:1], CONTEXTS[:1], ["mat"], max_length=8)
    with pytest.raises(ValueError, match="token_type_ids"):
        answer_mask(tokenize(tokenizer, CONTEXTS), tokenizer)


def test_qa_head_shapes_and_masking(tokenizer, encoder) -> None:
    inputs, _ = tokenize_qa(tokenizer, QUESTIONS, CONTEXTS, ANSWERS)
    model = QuestionAnswering(encoder).eval()
    with torch.no_grad():
        out = model(**inputs)
    batch, length = inputs["input_ids"].shape
    assert isinstance(out, SpanLogits)
    assert out.start_logits.shape == out.end_logits.shape == (batch, length)
    assert out.logits.shape == (batch, 2, length)
    lowest = torch.finfo(out.start_logits.dtype).min
    masked = ~inputs["answer_mask"]
    assert (out.start_logits[masked] == lowest).all() and (out.end_logits[masked] == lowest).all()
    assert (out.start_logits[~masked] > lowest / 2).all()


def test_span_loss_is_the_mean_of_start_and_end_cross_entropy() -> None:
    torch.manual_seed(0)
    logits = torch.randn(3, 2, 6)
    targets = torch.tensor([[1, 2], [0, 5], [3, 3]])
    by_hand = 0.0
    for b in range(3):
        for which in range(2):
            row = logits[b, which]
            by_hand += -(row[targets[b, which]] - row.exp().sum().log()) / 6
    assert torch.allclose(span_loss(logits, targets), by_hand, atol=1e-6)
    assert torch.allclose(span_loss(SpanLogits(logits[:, 0], logits[:, 1]), targets), by_hand)
    with pytest.raises(ValueError, match=r"0\.\.5"):
        span_loss(logits, torch.tensor([[1, 2], [0, 6], [3, 3]]))
    masked = logits.clone()
    masked[0, 0, 1] = torch.finfo(masked.dtype).min
    with pytest.raises(ValueError, match="masked position"):
        span_loss(masked, targets)


def test_decode_spans_finds_the_best_valid_span() -> None:
    start = torch.tensor([[0.0, 0.0, 0.0, 5.0, 0.0]])
    end = torch.tensor([[0.0, 4.0, 0.0, 0.0, 1.0]])  # the best end lies before the best start
    spans, scores = decode_spans(SpanLogits(start, end))
    assert spans.tolist() == [[3, 4]] and scores.tolist() == [6.0]
    spans, _ = decode_spans(SpanLogits(start, end), max_answer_length=1)
    assert spans.tolist() == [[3, 3]]
    mask = torch.tensor([[True, True, True, False, True]])
    spans, _ = decode_spans(SpanLogits(start, end), answer_mask=mask)
    assert spans.tolist() == [[0, 1]]
    torch.manual_seed(0)
    logits = torch.randn(4, 2, 9)
    spans, scores = decode_spans(logits, max_answer_length=3)
    for b in range(4):
        best = max(
            ((s, e) for s in range(9) for e in range(s, min(s + 3, 9))),
            key=lambda se, b=b: float(logits[b, 0, se[0]] + logits[b, 1, se[1]]),
        )
        assert tuple(spans[b].tolist()) == best
    with pytest.raises(ValueError, match="allows no token in examples"):
        decode_spans(logits[:1], answer_mask=torch.zeros(1, 9, dtype=torch.bool))


def test_qa_trains_with_fit(tokenizer, encoder) -> None:
    torch.manual_seed(0)
    inputs, targets = tokenize_qa(tokenizer, QUESTIONS * 2, CONTEXTS * 2, ANSWERS * 2)
    loader = TextLoader(inputs, targets, batch_size=2)
    model = QuestionAnswering(encoder)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    history = fit(model, loader, optimizer=optimizer, epochs=5, loss_fn=span_loss,
                  device="cpu", progress=False)
    assert history.train_loss[-1] < history.train_loss[0]
    assert 0 <= history.train_acc[-1] <= 100  # percentage of start/end positions hit exactly


# --- frozen sentence features ------------------------------------------------------------------


def test_encode_texts_keeps_the_order_and_caches(tokenizer, encoder, tmp_path: Path) -> None:
    features = encode_texts(encoder, tokenizer, TEXTS, batch_size=3, cache=tmp_path)
    assert features.shape == (len(TEXTS), 16) and features.dtype == np.float32
    for i, text in enumerate(TEXTS):  # length-sorted batches give every text its own row back
        alone = encode_texts(encoder, tokenizer, [text], cache=False)
        np.testing.assert_allclose(features[i], alone[0], atol=1e-5)
    calls = []
    hook = encoder.register_forward_hook(lambda *args: calls.append(1))
    again = encode_texts(encoder, tokenizer, TEXTS, batch_size=3, cache=tmp_path)
    hook.remove()
    assert calls == [] and np.array_equal(again, features)
    assert len(list(tmp_path.glob("*.npy"))) == 1


def test_encode_texts_cache_key_and_corrupt_files(tokenizer, encoder, tmp_path: Path) -> None:
    path = text_feature_cache_path(encoder, tokenizer, TEXTS, directory=tmp_path)
    assert path != text_feature_cache_path(encoder, tokenizer, TEXTS, pooling="cls",
                                           directory=tmp_path)
    assert path != text_feature_cache_path(encoder, tokenizer, TEXTS, max_length=32,
                                           directory=tmp_path)
    assert path != text_feature_cache_path(encoder, tokenizer, TEXTS[::-1], directory=tmp_path)
    features = encode_texts(encoder, tokenizer, TEXTS, cache=tmp_path)
    path.write_bytes(b"half a file")
    with pytest.warns(RuntimeWarning, match="regenerating"):
        again = encode_texts(encoder, tokenizer, TEXTS, cache=tmp_path)
    np.testing.assert_array_equal(again, features)
    assert np.array_equal(np.load(path), features)  # rewritten
    with torch.no_grad():
        encoder.encoder.layer[0].output.dense.weight.add_(0.1)
    new = text_feature_cache_path(encoder, tokenizer, TEXTS, directory=tmp_path)
    assert new != path
    assert not np.allclose(encode_texts(encoder, tokenizer, TEXTS, cache=tmp_path), features)


def test_encode_texts_recomputes_empty_files_and_survives_a_misplaced_cache(
    tokenizer, encoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = encode_texts(encoder, tokenizer, TEXTS, cache=False)
    path = text_feature_cache_path(encoder, tokenizer, TEXTS, directory=tmp_path)
    path.write_bytes(b"")
    with pytest.warns(RuntimeWarning, match="regenerating"):
        assert np.array_equal(encode_texts(encoder, tokenizer, TEXTS, cache=tmp_path), expected)
    not_a_folder = tmp_path / "cache-file"
    not_a_folder.write_text("")
    monkeypatch.setenv("TL_CACHE_DIR", str(not_a_folder))
    with pytest.warns(RuntimeWarning, match="TL_CACHE_DIR"):
        assert np.array_equal(encode_texts(encoder, tokenizer, TEXTS), expected)


def test_tokenizer_fingerprint_ignores_call_settings_but_not_the_vocabulary(
    tokenizer, tmp_path: Path
) -> None:
    before = _tokenizer_fingerprint(tokenizer)
    tokenize(tokenizer, TEXTS, max_length=5)  # sets truncation and padding in the backend
    assert _tokenizer_fingerprint(tokenizer) == before
    assert _tokenizer_fingerprint(make_tokenizer(tmp_path, WORDS)) == before
    assert _tokenizer_fingerprint(make_tokenizer(tmp_path, [*WORDS, "zebra"])) != before


def test_encode_texts_mode_normalisation_and_bad_input(tokenizer, encoder) -> None:
    encoder.train()
    unit = encode_texts(encoder, tokenizer, TEXTS, normalize=True, cache=False)
    assert encoder.training  # put back as it was
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-5)
    repeat = encode_texts(encoder, tokenizer, TEXTS, normalize=True, cache=False)
    assert np.array_equal(unit, repeat)  # eval mode inside: no dropout
    with pytest.raises(ValueError, match="pooling='sum'"):
        encode_texts(encoder, tokenizer, TEXTS, pooling="sum")
    with pytest.raises(ValueError, match="texts is empty"):
        encode_texts(encoder, tokenizer, [])
    with pytest.raises(ValueError, match="batch_size=0"):
        encode_texts(encoder, tokenizer, TEXTS, batch_size=0)


def test_encode_texts_gives_back_each_module_its_own_mode(tokenizer, encoder) -> None:
    model = SentenceClassifier(encoder, 2).train()
    train_top_layers(model, k=1)
    for module in model.modules():  # frozen parts in eval, as set_bn_eval does
        if not any(p.requires_grad for p in module.parameters()):
            module.eval()
    before = {name: module.training for name, module in model.named_modules()}
    assert any(before.values()) and not all(before.values())
    encode_texts(model, tokenizer, TEXTS, cache=False)
    assert {name: module.training for name, module in model.named_modules()} == before


# --- layers and freezing -----------------------------------------------------------------------


def _trainable(model) -> set[str]:
    return {name for name, p in model.named_parameters() if p.requires_grad}


def test_train_top_layers_leaves_exactly_the_right_parameters_trainable(encoder) -> None:
    model = SentenceClassifier(encoder, 3)
    names = train_top_layers(model, 2)
    assert names == ["layer2", "layer3", "pooler", "head"]
    expected = {
        n for n, _ in model.named_parameters()
        if n.startswith(("encoder.encoder.layer.2.", "encoder.encoder.layer.3.",
                         "encoder.pooler.", "head."))
    }
    assert _trainable(model) == expected
    assert train_top_layers(model, 0, pooler=False) == ["head"]
    assert _trainable(model) == {"head.weight", "head.bias"}
    train_top_layers(model, 4)
    assert not any(n.startswith("encoder.embeddings.") for n in _trainable(model))
    assert all(n in _trainable(model) for n, _ in model.named_parameters()
               if n.startswith("encoder.encoder.layer.0."))
    for bad in (-1, 5, 1.5, True):
        with pytest.raises(ValueError, match=f"k={bad!r} must be an integer from 0 .* to 4"):
            train_top_layers(model, bad)


def test_layer_groups_of_both_kinds_of_classifier(encoder) -> None:
    from transformers import BertForSequenceClassification

    groups = text_layer_groups(SentenceClassifier(encoder, 2))
    assert list(groups) == ["embeddings", "layer0", "layer1", "layer2", "layer3", "pooler",
                            "head"]
    hf = BertForSequenceClassification(tiny_config(num_labels=2))
    assert [p.shape for p in text_layer_groups(hf)["head"]] == [(2, 16), (2,)]
    assert len(transformer_layers(hf)) == 4
    with pytest.raises(TypeError, match="not a BERT-style encoder"):
        transformer_layers(torch.nn.Linear(2, 2))


def test_cls_pool_is_what_the_classifier_uses(tokenizer, encoder) -> None:
    inputs = tokenize(tokenizer, TEXTS[:2])
    with torch.no_grad():
        hidden = encoder(**inputs).last_hidden_state
        embedded = SentenceClassifier(encoder, 2, pooling="cls").embed(**inputs)
    assert torch.equal(embedded, cls_pool(hidden))
