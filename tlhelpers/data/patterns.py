"""Procedural textures: a source world deliberately unlike glyphs, and glyph backgrounds.

Twelve texture classes (stripes, checkerboard, dots, …), each drawn with a random period,
phase, orientation, edge sharpness and pair of colours. A small CNN tells them apart easily, yet
none contains a letter-like stroke shape, which makes the texture world the "dissimilar source"
of the course. The same patterns, with their own colours, serve as textured backgrounds behind
rendered glyphs (:func:`texture_patterns`). Everything is vectorised NumPy (thousands of
images per second).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["TEXTURE_CLASSES", "render_textures", "texture_patterns"]

Pattern = Callable[[int, np.random.Generator, np.ndarray, np.ndarray], np.ndarray]


def _u(rng: np.random.Generator, n: int, low: float, high: float) -> np.ndarray:
    """n uniform draws shaped (n, 1, 1) to broadcast against (S, S) coordinates."""
    return rng.uniform(low, high, size=(n, 1, 1)).astype(np.float32)


def _rotated(rng: np.random.Generator, n: int, x: np.ndarray, y: np.ndarray):
    """Coordinates (u, v) turned by a random angle per image: two arrays (n, S, S)."""
    theta = _u(rng, n, 0.0, np.pi)
    c, s = np.cos(theta), np.sin(theta)
    return x * c + y * s, -x * s + y * c


def _soft(z: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Map a signed field to [0, 1] with a random edge sharpness per image."""
    k = _u(rng, len(z), 2.0, 10.0)
    return 1.0 / (1.0 + np.exp(-k * z))


def _frac_dist(z: np.ndarray) -> np.ndarray:
    """Distance of z to the nearest integer, in [0, 0.5]."""
    return np.abs(z - np.round(z))


def _stripes(n, rng, x, y):
    u, _ = _rotated(rng, n, x, y)
    return _soft(np.sin(2 * np.pi * u / _u(rng, n, 4, 12) + _u(rng, n, 0, 6.3)), rng)


def _checkerboard(n, rng, x, y):
    u, v = _rotated(rng, n, x, y)
    p = _u(rng, n, 5, 14)
    return _soft(np.sin(2 * np.pi * u / p) * np.sin(2 * np.pi * v / p) * 2, rng)


def _dots(n, rng, x, y):
    u, v = _rotated(rng, n, x, y)
    p = _u(rng, n, 5, 11)
    d = np.hypot(_frac_dist(u / p + _u(rng, n, 0, 1)), _frac_dist(v / p + _u(rng, n, 0, 1)))
    return _soft((_u(rng, n, 0.18, 0.32) - d) * 8, rng)


def _grid(n, rng, x, y):
    u, v = _rotated(rng, n, x, y)
    p = _u(rng, n, 6, 12)
    d = np.minimum(_frac_dist(u / p + _u(rng, n, 0, 1)), _frac_dist(v / p + _u(rng, n, 0, 1)))
    return _soft((_u(rng, n, 0.06, 0.12) - d) * 12, rng)


def _waves(n, rng, x, y):
    u, v = _rotated(rng, n, x, y)
    bend = _u(rng, n, 1.5, 3.5) * np.sin(2 * np.pi * v / _u(rng, n, 10, 20) + _u(rng, n, 0, 6.3))
    return _soft(np.sin(2 * np.pi * (u + bend) / _u(rng, n, 5, 10)), rng)


def _rings(n, rng, x, y):
    r = np.hypot(x - _u(rng, n, -10, 10), y - _u(rng, n, -10, 10))
    return _soft(np.sin(2 * np.pi * r / _u(rng, n, 4, 9) + _u(rng, n, 0, 6.3)), rng)


def _zigzag(n, rng, x, y):
    u, v = _rotated(rng, n, x, y)
    tri = 2 * _frac_dist(v / _u(rng, n, 6, 12))  # triangle wave in [0, 1]
    return _soft(np.sin(2 * np.pi * (u + _u(rng, n, 2, 4) * tri) / _u(rng, n, 5, 9)), rng)


def _crosshatch(n, rng, x, y):
    u, _ = _rotated(rng, n, x, y)
    turn = _u(rng, n, 0.5, 1.1)  # second set of lines 30–65 degrees away
    w = -x * np.sin(turn) + y * np.cos(turn)
    p = _u(rng, n, 4, 8)
    line_u = np.cos(2 * np.pi * u / p) - 0.6
    line_w = np.cos(2 * np.pi * w / p) - 0.6
    return _soft(np.maximum(line_u, line_w) * 2, rng)


def _blobs(n, rng, x, y):
    field = np.zeros((n, *x.shape), np.float32)
    for _ in range(6):
        u, _ = _rotated(rng, n, x, y)
        field += np.cos(2 * np.pi * u / _u(rng, n, 10, 28) + _u(rng, n, 0, 6.3))
    return _soft(field, rng)


def _gradient(n, rng, x, y):
    u, _ = _rotated(rng, n, x, y)
    span = x.shape[0] * _u(rng, n, 0.5, 1.5)
    return np.clip(0.5 + (u + _u(rng, n, -6, 6)) / span, 0.0, 1.0)


def _rays(n, rng, x, y):
    angle = np.arctan2(y - _u(rng, n, -8, 8), x - _u(rng, n, -8, 8))
    spokes = rng.integers(5, 13, size=(n, 1, 1))
    return _soft(np.sin(spokes * angle + _u(rng, n, 0, 6.3)), rng)


def _noise(n, rng, x, y):
    cell = int(rng.integers(1, 3))
    s = -(-x.shape[0] // cell)
    coarse = rng.uniform(0, 1, size=(n, s, s)).astype(np.float32)
    return np.repeat(np.repeat(coarse, cell, axis=1), cell, axis=2)[:, : x.shape[0], : x.shape[1]]


_PATTERNS: dict[str, Pattern] = {
    "stripes": _stripes,
    "checkerboard": _checkerboard,
    "dots": _dots,
    "grid": _grid,
    "waves": _waves,
    "rings": _rings,
    "zigzag": _zigzag,
    "crosshatch": _crosshatch,
    "blobs": _blobs,
    "gradient": _gradient,
    "rays": _rays,
    "noise": _noise,
}
TEXTURE_CLASSES: tuple[str, ...] = tuple(_PATTERNS)


def _coords(size: int) -> tuple[np.ndarray, np.ndarray]:
    c = np.arange(size, dtype=np.float32) - (size - 1) / 2
    return np.meshgrid(c, c, indexing="xy")


def _patterns_for(labels: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """Greyscale patterns in [0, 1], shape (N, size, size), class ``labels[i]`` for image i."""
    if size < 4:
        raise ValueError(f"size={size!r} is too small for a texture; use size >= 4, e.g. 32.")
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= len(TEXTURE_CLASSES)):
        raise ValueError(
            f"texture labels range from {labels.min()} to {labels.max()}; valid labels are "
            f"0..{len(TEXTURE_CLASSES) - 1} ({', '.join(TEXTURE_CLASSES)})."
        )
    x, y = _coords(size)
    out = np.empty((len(labels), size, size), np.float32)
    for c, name in enumerate(TEXTURE_CLASSES):
        idx = np.flatnonzero(labels == c)
        if len(idx):
            out[idx] = _PATTERNS[name](len(idx), rng, x, y)
    return out


def texture_patterns(n: int, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """n greyscale patterns of random texture classes, for glyph backgrounds.

    Returns:
        float32 array (n, size, size) with values in [0, 1].
    """
    return _patterns_for(rng.integers(0, len(TEXTURE_CLASSES), size=n), rng, size)


def _colour_pairs(n: int, rng: np.random.Generator, min_contrast: float) -> np.ndarray:
    """(n, 2, 3) random RGB colour pairs in [0, 1] whose luminances differ by min_contrast."""
    lum = np.array([0.299, 0.587, 0.114], np.float32)
    pairs = rng.uniform(0, 1, size=(n, 2, 3)).astype(np.float32)
    bad = np.abs((pairs[:, 0] - pairs[:, 1]) @ lum) < min_contrast
    while bad.any():
        pairs[bad] = rng.uniform(0, 1, size=(int(bad.sum()), 2, 3))
        bad = np.abs((pairs[:, 0] - pairs[:, 1]) @ lum) < min_contrast
    return pairs


def render_textures(
    labels: np.ndarray, rng: np.random.Generator, size: int = 32, noise: float = 0.03
) -> np.ndarray:
    """Coloured texture images of the given classes.

    Args:
        labels: int array (N,) of indices into :data:`TEXTURE_CLASSES`.
        rng: NumPy generator that draws every random choice.
        size: image side in pixels.
        noise: standard deviation of added pixel noise, as a fraction of the full range.

    Returns:
        uint8 array (N, 3, size, size).
    """
    t = _patterns_for(labels, rng, size)[:, None]  # (N, 1, S, S)
    pairs = _colour_pairs(len(t), rng, 0.25)[..., None, None]  # (N, 2, 3, 1, 1)
    img = pairs[:, 0] + (pairs[:, 1] - pairs[:, 0]) * t
    img += rng.normal(0.0, noise, size=img.shape).astype(np.float32)
    return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
