"""Rendered glyphs: letters, digits and Greek capitals with strong random style.

Each glyph's outline is rendered once per (font, character, stroke) at high resolution and
cached (:func:`tlhelpers.data.fonts.glyph_mask`); every image then only applies a random affine
map (rotation, scale, aspect, shear, translation), a blur, and a vectorised composition of
random foreground and background colours, optional textured background and pixel noise.
:class:`GlyphStyle` holds every knob; :data:`SOURCE_STYLE` is the pretraining style and
:data:`TARGET_STYLE` a slightly harder one for targets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter

from tlhelpers import _checks
from tlhelpers.data.fonts import MASTER_FONT_PX, check_fonts, glyph_mask
from tlhelpers.data.patterns import texture_patterns

__all__ = [
    "COLOUR_MODES",
    "DIGITS",
    "GREEK",
    "LETTERS",
    "LETTER_VARIANTS",
    "SOURCE_STYLE",
    "TARGET_STYLE",
    "GlyphStyle",
    "render_glyphs",
]

LETTERS: tuple[str, ...] = tuple("abcdefghijklmnopqrstuvwxyz")
LETTER_VARIANTS: tuple[str, ...] = tuple(c + c.upper() for c in LETTERS)  # either case, one label
DIGITS: tuple[str, ...] = tuple("0123456789")
GREEK: tuple[str, ...] = tuple("ΓΔΘΛΞΠΣΦΨΩ")  # the capitals that do not look like Latin ones
COLOUR_MODES = ("random", "grey", "light-on-dark")
_CHUNK = 1024  # images composed at a time (keeps the float buffers in cache)
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


@dataclass(frozen=True)
class GlyphStyle:
    """How much rendered glyphs vary; every range is sampled uniformly per image.

    Attributes:
        rotation: largest rotation either way, in degrees.
        scale: range of the glyph's longer side, as a fraction of the frame.
        aspect: range of width/height stretch factors.
        shear: largest horizontal shear either way (tangent of the shear angle).
        stroke: range of extra outline width, as a fraction of the font size (0 = as designed;
            bold fonts get half).
        blur: range of the Gaussian blur's sigma, in output pixels.
        colour: "random" (random RGB ink and background), "grey" or "light-on-dark".
        min_contrast: smallest luminance difference (0–1) between ink and background.
        texture_prob: probability that the background carries a random texture.
        noise: largest standard deviation of Gaussian pixel noise (fraction of full range).
        jitter: largest translation either way, as a fraction of the frame (never crops).
        lowres_prob: probability of passing the image through 8×8 pixels (a blurry look).
    """

    rotation: float = 20.0
    scale: tuple[float, float] = (0.55, 0.9)
    aspect: tuple[float, float] = (0.8, 1.25)
    shear: float = 0.25
    stroke: tuple[float, float] = (0.0, 0.035)
    blur: tuple[float, float] = (0.0, 1.0)
    colour: str = "random"
    min_contrast: float = 0.3
    texture_prob: float = 0.5
    noise: float = 0.06
    jitter: float = 0.12
    lowres_prob: float = 0.0

    def __post_init__(self) -> None:
        if self.colour not in COLOUR_MODES:
            raise ValueError(
                f"colour={self.colour!r} is not a colour mode; valid choices: "
                f"{', '.join(COLOUR_MODES)}."
            )
        for name in ("rotation", "shear", "min_contrast", "texture_prob", "noise", "jitter",
                     "lowres_prob"):
            _checks.finite(name, getattr(self, name), minimum=0, example=getattr(GlyphStyle, name))
        for name in ("scale", "aspect", "stroke", "blur"):
            low, high = getattr(self, name)
            if not (0 <= low <= high and math.isfinite(high)):
                raise ValueError(
                    f"{name}={getattr(self, name)!r} must be a range (low, high) with "
                    f"0 <= low <= high, e.g. {name}={getattr(GlyphStyle, name)!r}."
                )
        if self.scale[0] <= 0 or self.aspect[0] <= 0:
            raise ValueError(
                f"scale={self.scale!r} and aspect={self.aspect!r} must be above 0, "
                "e.g. scale=(0.55, 0.9), aspect=(0.8, 1.25)."
            )
        for name in ("min_contrast", "texture_prob", "lowres_prob", "noise", "jitter"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(
                    f"{name}={getattr(self, name)!r} must lie in [0, 1], "
                    f"e.g. {name}={getattr(GlyphStyle, name)!r}."
                )
        if not 0 <= self.min_contrast <= 0.6:
            raise ValueError(
                f"min_contrast={self.min_contrast!r} must lie in [0, 0.6] (larger contrasts "
                "leave too few colour pairs), e.g. min_contrast=0.3."
            )


SOURCE_STYLE = GlyphStyle()
TARGET_STYLE = GlyphStyle(
    rotation=25.0,
    scale=(0.5, 0.9),
    shear=0.3,
    blur=(0.0, 1.2),
    min_contrast=0.25,
    texture_prob=0.6,
    noise=0.08,
    jitter=0.15,
)


def _affine_params(
    rng: np.random.Generator, sizes: np.ndarray, style: GlyphStyle, canvas: int
) -> np.ndarray:
    """PIL affine coefficients (N, 6) mapping canvas pixels back to each glyph mask.

    Args:
        sizes: (N, 2) mask widths and heights in master pixels.
        canvas: side of the square output canvas in pixels.
    """
    n = len(sizes)
    theta = np.deg2rad(rng.uniform(-style.rotation, style.rotation, n))
    scale = rng.uniform(*style.scale, n) * canvas / sizes.max(axis=1)
    aspect = np.sqrt(rng.uniform(*style.aspect, n))
    shear = rng.uniform(-style.shear, style.shear, n)
    cos, sin = np.cos(theta), np.sin(theta)
    rot = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
    shr = np.zeros((n, 2, 2))
    shr[:, 0, 0] = shr[:, 1, 1] = 1.0
    shr[:, 0, 1] = shear
    diag = np.zeros((n, 2, 2))
    diag[:, 0, 0], diag[:, 1, 1] = scale * aspect, scale / aspect
    fwd = rot @ shr @ diag  # (N, 2, 2) mask -> canvas, about the centres
    corners = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]], float).T  # (2, 4)
    half_ext = np.abs(fwd @ (corners[None] * sizes[:, :, None] / 2)).max(axis=2)  # (N, 2)
    room = canvas / 2 - 1.0
    shrink = np.minimum(1.0, room / half_ext.max(axis=1))  # never crop a glyph
    fwd *= shrink[:, None, None]
    half_ext *= shrink[:, None]
    max_shift = np.clip(room - half_ext, 0.0, style.jitter * canvas)
    shift = rng.uniform(-1.0, 1.0, (n, 2)) * max_shift
    inv = np.linalg.inv(fwd)
    offset = sizes / 2 - np.einsum("nij,nj->ni", inv, canvas / 2 + shift)
    return np.stack(
        [inv[:, 0, 0], inv[:, 0, 1], offset[:, 0], inv[:, 1, 0], inv[:, 1, 1], offset[:, 1]], 1
    )


def _glyph_alphas(
    fonts: Sequence[str],
    chars: Sequence[str],
    strokes: np.ndarray,
    rng: np.random.Generator,
    style: GlyphStyle,
    size: int,
) -> np.ndarray:
    """Ink coverage in [0, 1], shape (N, size, size), one randomly placed glyph per image."""
    masks = [glyph_mask(f, c, int(s)) for f, c, s in zip(fonts, chars, strokes, strict=True)]
    sizes = np.array([m.size for m in masks], float).reshape(-1, 2)
    coeffs = _affine_params(rng, sizes, style, 2 * size)
    sigmas = rng.uniform(*style.blur, len(masks))
    out = np.empty((len(masks), size, size), np.uint8)
    for i, mask in enumerate(masks):
        img = mask.transform(
            (2 * size, 2 * size),
            Image.Transform.AFFINE,
            tuple(coeffs[i]),
            resample=Image.Resampling.BILINEAR,
        ).reduce(2)
        if sigmas[i] >= 0.15:
            img = img.filter(ImageFilter.GaussianBlur(float(sigmas[i])))
        out[i] = np.asarray(img)
    return out.astype(np.float32) / 255.0


def _colour_pair(n: int, rng: np.random.Generator, style: GlyphStyle) -> tuple[np.ndarray, ...]:
    """Ink and background colours (each (N, 3) in [0, 1]) at least min_contrast apart."""
    if style.colour == "light-on-dark":
        light, dark = rng.uniform(0.75, 1.0, (n, 1)), rng.uniform(0.0, 0.25, (n, 1))
        return light.repeat(3, 1), dark.repeat(3, 1)
    channels = 3 if style.colour == "random" else 1
    ink, bg = rng.uniform(0, 1, (n, channels)), rng.uniform(0, 1, (n, channels))
    luma = _LUMA if channels == 3 else np.ones(1)
    bad = np.abs((ink - bg) @ luma) < style.min_contrast
    while bad.any():
        k = int(bad.sum())
        ink[bad], bg[bad] = rng.uniform(0, 1, (k, channels)), rng.uniform(0, 1, (k, channels))
        bad = np.abs((ink - bg) @ luma) < style.min_contrast
    return ink.repeat(3 // channels, 1), bg.repeat(3 // channels, 1)


def _second_bg(
    ink: np.ndarray, bg: np.ndarray, rng: np.random.Generator, style: GlyphStyle
) -> np.ndarray:
    """A texture colour on the same side of the ink's luminance as ``bg``, as far from it."""
    side = np.sign((bg - ink) @ _LUMA)
    channels = 3 if style.colour == "random" else 1
    out = np.empty_like(bg)
    bad = np.ones(len(bg), bool)
    for _ in range(10):
        out[bad] = rng.uniform(0, 1, (int(bad.sum()), channels)).repeat(3 // channels, 1)
        bad = side * ((out - ink) @ _LUMA) < style.min_contrast
        if not bad.any():
            return out
    # little room left on that side: move the background further from the ink instead
    out[bad] = np.where(side[bad, None] > 0, bg[bad] + 0.6 * (1 - bg[bad]), 0.4 * bg[bad])
    return out


def _compose(alpha: np.ndarray, rng: np.random.Generator, style: GlyphStyle) -> np.ndarray:
    """Paint glyph coverage (N, S, S) with random colours onto backgrounds: uint8 (N, 3, S, S)."""
    n, size = len(alpha), alpha.shape[-1]
    ink, bg = (c.astype(np.float32) for c in _colour_pair(n, rng, style))
    img = np.empty((n, 3, size, size), np.float32)
    img[:] = bg[:, :, None, None]
    textured = np.flatnonzero(rng.uniform(size=n) < style.texture_prob)
    if len(textured) and style.colour != "light-on-dark":
        other = _second_bg(ink[textured], bg[textured], rng, style).astype(np.float32)
        amount = texture_patterns(len(textured), rng, size)
        amount *= rng.uniform(0.4, 1, (len(textured), 1, 1)).astype(np.float32)
        img[textured] += (other - bg[textured])[:, :, None, None] * amount[:, None]
    a = alpha[:, None]
    img += (ink[:, :, None, None] - img) * a
    channels = 3 if style.colour == "random" else 1  # grey images get grey noise
    noise = rng.standard_normal((n, channels, size, size), dtype=np.float32)
    noise *= rng.uniform(0, style.noise * 255, (n, 1, 1, 1)).astype(np.float32)
    low = np.flatnonzero(rng.uniform(size=n) < style.lowres_prob)
    if len(low):
        img[low] = _through_8x8(img[low])
    img *= 255
    img += noise
    img += 0.5
    np.clip(img, 0, 255, out=img)
    return img.astype(np.uint8)


def _through_8x8(img: np.ndarray) -> np.ndarray:
    """Average down to 8×8 pixels, then upsample bilinearly to the original size."""
    x = torch.from_numpy(np.ascontiguousarray(img))
    small = F.adaptive_avg_pool2d(x, 8)
    return F.interpolate(small, size=img.shape[-2:], mode="bilinear", align_corners=False).numpy()


def _is_bold(font: str) -> bool:
    """Bold fonts get half the extra stroke, so heavy glyphs do not fill in."""
    return "Bol" in font or font == "cmb10"


def render_glyphs(
    labels: np.ndarray,
    variants: Sequence[str],
    fonts: Sequence[str],
    style: GlyphStyle,
    rng: np.random.Generator,
    size: int = 32,
) -> np.ndarray:
    """Render one randomly styled glyph per label.

    Args:
        labels: int array (N,); image i shows class ``labels[i]``.
        variants: per class, the characters that may stand for it (e.g. "aA"), one drawn at random.
        fonts: font names (see :func:`tlhelpers.data.list_fonts`), one drawn at random per image;
            each must have every character in ``variants``.
        style: the random style.
        rng: NumPy generator that draws every random choice.
        size: image side in pixels.

    Returns:
        uint8 array (N, 3, size, size).
    """
    if not isinstance(size, int) or size < 8:
        raise ValueError(f"size={size!r} is too small for a glyph; use an integer >= 8, e.g. 32.")
    check_fonts(variants, fonts)
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= len(variants)):
        raise ValueError(
            f"labels range from {labels.min()} to {labels.max()} but there are {len(variants)} "
            f"classes; use labels in range(0, {len(variants)})."
        )
    n = len(labels)
    pick = rng.uniform(size=n)
    chars = [variants[c][int(p * len(variants[c]))] for c, p in zip(labels, pick, strict=True)]
    font_idx = rng.integers(0, len(fonts), n)
    weight = np.array([0.5 if _is_bold(f) else 1.0 for f in fonts])[font_idx]
    strokes = np.rint(rng.uniform(*style.stroke, n) * weight * MASTER_FONT_PX)
    out = np.empty((n, 3, size, size), np.uint8)
    for start in range(0, n, _CHUNK):
        part = slice(start, start + _CHUNK)
        alpha = _glyph_alphas(
            [fonts[i] for i in font_idx[part]], chars[part], strokes[part], rng, style, size
        )
        out[part] = _compose(alpha, rng, style)
    return out
