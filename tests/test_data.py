"""Tests of the image container, the batch loader, fonts, glyph and texture rendering."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from tlhelpers.data import (
    DIGITS,
    GREEK,
    HELDOUT_FONTS,
    LETTER_VARIANTS,
    SOURCE_STYLE,
    TARGET_STYLE,
    TEXTURE_CLASSES,
    TRAIN_FONTS,
    GlyphStyle,
    ImageSet,
    TensorLoader,
    font_chars,
    fonts_with,
    list_fonts,
    render_glyphs,
    render_textures,
    texture_patterns,
    to_float,
)
from tlhelpers.data.fonts import _font_path, glyph_mask


def _imageset(n: int = 10, num_classes: int = 3) -> ImageSet:
    images = torch.arange(n * 3 * 4 * 4, dtype=torch.int64).reshape(n, 3, 4, 4) % 256
    labels = torch.arange(n) % num_classes
    return ImageSet(images.to(torch.uint8), labels, tuple("abc"[:num_classes]), "toy")


# --- ImageSet and to_float ---------------------------------------------------------------


def test_to_float_is_the_course_normalisation():
    x = torch.tensor([0, 128, 255], dtype=torch.uint8)
    y = to_float(x)
    assert y.dtype == torch.float32
    assert torch.allclose(y, (x.float() / 255 - 0.5) / 0.25)
    assert y[0] == -2.0 and y[2] == 2.0


def test_to_float_rejects_float_input():
    with pytest.raises(ValueError, match="float32"):
        to_float(torch.zeros(2, dtype=torch.float32))


def test_imageset_subset_and_float():
    data = _imageset()
    sub = data.subset([3, 1])
    assert len(sub) == 2 and sub.classes == data.classes and sub.name == data.name
    assert torch.equal(sub.images[0], data.images[3])
    assert sub.as_float().shape == (2, 3, 4, 4) and sub.as_float().dtype == torch.float32
    with pytest.raises(ValueError, match="99"):
        data.subset([0, 99])


@pytest.mark.parametrize(
    ("indices", "error", "message"),
    [
        ([0.5, 1.7], TypeError, r"must be integers or a boolean mask; got dtype float64"),
        (np.array([1.0, 2.0]), TypeError, "dtype float64"),
        (torch.tensor([0.0, 1.0]), TypeError, "dtype float32"),
        ([True, False], ValueError, r"one entry per image .* shape \(10,\); got shape \(2,\)"),
        (np.ones(11, dtype=bool), ValueError, r"got shape \(11,\)"),
        (torch.ones(3, dtype=torch.bool), ValueError, r"got shape \(3,\)"),
    ],
)
def test_imageset_subset_refuses_float_indices_and_masks_of_the_wrong_length(
    indices, error, message
):
    with pytest.raises(error, match=message):
        _imageset().subset(indices)


def test_imageset_subset_takes_integer_arrays_tensors_and_full_masks():
    data = _imageset()
    mask = data.labels == 1
    assert torch.equal(data.subset(mask).labels, data.labels[mask])
    assert torch.equal(data.subset(mask.numpy()).images, data.images[mask])
    assert len(data.subset(np.array([2, 4], dtype=np.int32))) == 2
    assert len(data.subset([])) == 0


def test_imageset_validates_dtypes_and_labels():
    good = _imageset()
    with pytest.raises(ValueError, match="uint8"):
        ImageSet(good.images.float(), good.labels, good.classes, "bad")
    with pytest.raises(ValueError, match="int64"):
        ImageSet(good.images, good.labels.int(), good.classes, "bad")
    with pytest.raises(ValueError, match="range"):
        ImageSet(good.images, good.labels + 5, good.classes, "bad")


def test_imageset_loader_gives_normalised_batches():
    data = _imageset(10)
    batches = list(data.loader(4, shuffle=False))
    assert [len(y) for _, y in batches] == [4, 4, 2]
    assert torch.equal(batches[0][0], to_float(data.images[:4]))


# --- TensorLoader ------------------------------------------------------------------------


def _epoch(loader: TensorLoader) -> list[int]:
    return torch.cat([y for _, y in loader]).tolist()


def test_loader_covers_every_sample_once_per_epoch():
    x = torch.arange(23)
    loader = TensorLoader(x, x.clone(), 5, shuffle=True, seed=3)
    for _ in range(3):
        seen = _epoch(loader)
        assert sorted(seen) == list(range(23))


def test_loader_reshuffles_between_epochs_and_repeats_across_runs():
    x = torch.arange(50)
    a = TensorLoader(x, x, 8, shuffle=True, seed=1)
    b = TensorLoader(x, x, 8, shuffle=True, seed=1)
    first, second = _epoch(a), _epoch(a)
    assert first != second
    assert _epoch(b) == first and _epoch(b) == second
    assert _epoch(TensorLoader(x, x, 8, shuffle=True, seed=2)) != first


def test_loader_len_and_drop_last():
    x = torch.arange(10)
    assert len(TensorLoader(x, x, 4)) == 3
    dropping = TensorLoader(x, x, 4, drop_last=True)
    assert len(dropping) == 2
    assert [len(y) for _, y in dropping] == [4, 4]
    assert len(TensorLoader(x, x, 5, drop_last=True)) == 2
    assert _epoch(TensorLoader(x, x, 4)) == list(range(10))  # no shuffle: original order


def test_loader_applies_transform_to_inputs_only():
    x = torch.arange(6)
    xb, yb = next(iter(TensorLoader(x, x, 6, transform=lambda t: t * 10)))
    assert torch.equal(xb, x * 10) and torch.equal(yb, x)


def test_loader_takes_a_dict_of_inputs_in_the_order_of_a_tensor():
    x = torch.arange(23)
    inputs = {"ids": x * 2, "mask": torch.stack([x, -x], dim=1)}
    plain = TensorLoader(x, x, 5, shuffle=True, seed=4)
    loader = TensorLoader(inputs, x, 5, shuffle=True, seed=4, transform=lambda b: {**b, "n": 1})
    assert len(loader) == len(plain) == 5
    for _ in range(2):  # the same rows as the tensor loader, epoch after epoch
        for (xb, yb), (db, yd) in zip(plain, loader, strict=True):
            assert torch.equal(yb, yd) and torch.equal(db["ids"], xb * 2) and db["n"] == 1
            assert torch.equal(db["mask"], torch.stack([xb, -xb], dim=1))
    with pytest.raises(ValueError, match="different lengths"):
        TensorLoader({"ids": x, "mask": x[:3]}, x, 5)
    with pytest.raises(ValueError, match="empty dict"):
        TensorLoader({}, x, 5)
    with pytest.raises(ValueError, match="23 samples but y has 4"):
        TensorLoader(inputs, x[:4], 5)


@pytest.mark.parametrize("batch_size", [0, -1, 2.5])
def test_loader_rejects_bad_batch_size(batch_size):
    x = torch.arange(4)
    with pytest.raises(ValueError, match=f"batch_size={batch_size!r}"):
        TensorLoader(x, x, batch_size)


def test_loader_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="5 samples"):
        TensorLoader(torch.arange(5), torch.arange(4), 2)


# --- fonts -------------------------------------------------------------------------------


def test_font_split_is_fixed_and_disjoint():
    assert len(TRAIN_FONTS) == 14 and len(HELDOUT_FONTS) == 8
    assert not set(TRAIN_FONTS) & set(HELDOUT_FONTS)
    assert list_fonts() == TRAIN_FONTS + HELDOUT_FONTS
    assert all(_font_path(f).is_file() for f in list_fonts())


def test_unknown_font_error_lists_valid_names():
    with pytest.raises(ValueError, match=r"'Comic'.*DejaVuSans"):
        font_chars("Comic")


def test_greek_is_in_six_heldout_fonts():
    greek_fonts = fonts_with(GREEK, HELDOUT_FONTS)
    assert len(greek_fonts) == 6
    assert "cmss10" not in greek_fonts and "cmtt10" not in greek_fonts
    for font in greek_fonts:
        assert set(GREEK) <= font_chars(font)
    assert fonts_with(DIGITS, HELDOUT_FONTS) == HELDOUT_FONTS


def test_every_font_draws_every_latin_letter_and_digit():
    for font in list_fonts():
        for char in "".join(LETTER_VARIANTS) + "".join(DIGITS):
            mask = np.asarray(glyph_mask(font, char))
            assert mask.max() > 200 and min(mask.shape) >= 4, (font, char)


# --- glyph rendering ---------------------------------------------------------------------


def test_render_glyphs_shapes_and_determinism():
    labels = np.arange(30) % 10
    a = render_glyphs(labels, DIGITS, HELDOUT_FONTS, TARGET_STYLE, np.random.default_rng(0))
    b = render_glyphs(labels, DIGITS, HELDOUT_FONTS, TARGET_STYLE, np.random.default_rng(0))
    c = render_glyphs(labels, DIGITS, HELDOUT_FONTS, TARGET_STYLE, np.random.default_rng(1))
    assert a.shape == (30, 3, 32, 32) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.std(axis=(1, 2, 3)).min() > 5  # every image shows something


def test_render_glyphs_other_size():
    out = render_glyphs([0, 1], DIGITS, TRAIN_FONTS, SOURCE_STYLE, np.random.default_rng(0), 24)
    assert out.shape == (2, 3, 24, 24)


def test_grey_style_gives_grey_images():
    style = GlyphStyle(colour="grey")
    out = render_glyphs(np.arange(8), DIGITS, TRAIN_FONTS, style, np.random.default_rng(0))
    assert np.array_equal(out[:, 0], out[:, 1]) and np.array_equal(out[:, 1], out[:, 2])


def test_lowres_style_smooths_images():
    labels, sharp_style = np.arange(20) % 10, GlyphStyle(noise=0.0, blur=(0.0, 0.0))
    sharp = render_glyphs(labels, DIGITS, TRAIN_FONTS, sharp_style, np.random.default_rng(0))
    low_style = dataclasses.replace(sharp_style, lowres_prob=1.0)
    low = render_glyphs(labels, DIGITS, TRAIN_FONTS, low_style, np.random.default_rng(0))
    edges = [np.abs(np.diff(x.astype(float), axis=3)).mean() for x in (sharp, low)]
    assert edges[1] < 0.7 * edges[0]


def test_glyph_ink_contrasts_with_background():
    style = GlyphStyle(texture_prob=0.0, noise=0.0, blur=(0.0, 0.0))
    out = render_glyphs(np.arange(40) % 10, DIGITS, TRAIN_FONTS, style, np.random.default_rng(0))
    luma = np.tensordot(out.astype(float) / 255, [0.299, 0.587, 0.114], axes=([1], [0]))
    spread = luma.max(axis=(1, 2)) - luma.min(axis=(1, 2))
    assert spread.min() >= style.min_contrast - 0.02


def test_render_glyphs_rejects_char_missing_from_font():
    with pytest.raises(ValueError, match=r"'cmr10'.*Γ"):
        render_glyphs([0], GREEK, ("cmr10",), SOURCE_STYLE, np.random.default_rng(0))


def test_render_glyphs_rejects_unknown_font_and_labels():
    with pytest.raises(ValueError, match="'Arial'"):
        render_glyphs([0], DIGITS, ("Arial",), SOURCE_STYLE, np.random.default_rng(0))
    with pytest.raises(ValueError, match="10"):
        render_glyphs([10], DIGITS, TRAIN_FONTS, SOURCE_STYLE, np.random.default_rng(0))


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"colour": "sepia"}, "sepia"),
        ({"scale": (0.9, 0.5)}, "scale"),
        ({"texture_prob": 1.5}, "texture_prob"),
        ({"min_contrast": 0.9}, "min_contrast"),
    ],
)
def test_glyph_style_rejects_bad_knobs(kwargs, named):
    with pytest.raises(ValueError, match=named):
        GlyphStyle(**kwargs)


# --- textures ----------------------------------------------------------------------------


def test_textures_render_every_class():
    labels = np.repeat(np.arange(len(TEXTURE_CLASSES)), 4)
    out = render_textures(labels, np.random.default_rng(0))
    assert len(TEXTURE_CLASSES) >= 10
    assert out.shape == (len(labels), 3, 32, 32) and out.dtype == np.uint8
    assert out.std(axis=(1, 2, 3)).min() > 5
    again = render_textures(labels, np.random.default_rng(0))
    assert np.array_equal(out, again)


def test_texture_classes_differ_on_average():
    # mean images per class are not all alike: crude evidence the classes are distinguishable
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(len(TEXTURE_CLASSES)), 60)
    x = render_textures(labels, rng).astype(np.float32) / 255
    grey = x.mean(axis=1)
    # mean absolute horizontal gradient differs between smooth and busy classes
    busy = np.abs(np.diff(grey, axis=2)).mean(axis=(1, 2)).reshape(len(TEXTURE_CLASSES), -1)
    means = busy.mean(axis=1)
    assert means.max() > 3 * means.min()


def test_texture_patterns_for_backgrounds():
    p = texture_patterns(16, np.random.default_rng(0), 32)
    assert p.shape == (16, 32, 32) and p.dtype == np.float32
    assert p.min() >= 0.0 and p.max() <= 1.0


def test_render_textures_rejects_bad_labels():
    with pytest.raises(ValueError, match="12"):
        render_textures(np.array([12]), np.random.default_rng(0))
