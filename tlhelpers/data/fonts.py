"""The fonts of the rendered image world: matplotlib's bundled TrueType files.

No font is downloaded: every renderer uses the TTF files that ship inside matplotlib
(``matplotlib.get_data_path()/fonts/ttf``). 22 of them draw usable Latin letters and digits;
they are split once and for all into 14 :data:`TRAIN_FONTS` (pretraining sources only) and 8
:data:`HELDOUT_FONTS` (targets only), so a target's glyph shapes were never seen in pretraining.
Six held-out fonts also carry Greek capitals; :func:`fonts_with` finds them from the font files'
character maps.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.ft2font import FT2Font
from PIL import Image, ImageDraw, ImageFont

__all__ = [
    "HELDOUT_FONTS",
    "MASTER_FONT_PX",
    "TRAIN_FONTS",
    "check_fonts",
    "font_chars",
    "fonts_with",
    "glyph_mask",
    "list_fonts",
]

TRAIN_FONTS: tuple[str, ...] = (
    "DejaVuSans",
    "DejaVuSans-Bold",
    "DejaVuSans-Oblique",
    "DejaVuSans-BoldOblique",
    "DejaVuSansMono",
    "DejaVuSansMono-Bold",
    "DejaVuSerif",
    "DejaVuSerif-Italic",
    "STIXGeneral",
    "STIXGeneralBol",
    "cmr10",
    "cmb10",
    "cmti10",
    "cmmi10",
)
HELDOUT_FONTS: tuple[str, ...] = (
    "DejaVuSerif-Bold",
    "DejaVuSerif-BoldItalic",
    "DejaVuSansMono-Oblique",
    "DejaVuSansMono-BoldOblique",
    "STIXGeneralItalic",
    "STIXGeneralBolIta",
    "cmss10",
    "cmtt10",
)
MASTER_FONT_PX = 80  # font size of the cached high-resolution glyph masks


def list_fonts() -> tuple[str, ...]:
    """Names (file stems) of the 22 usable fonts: the training fonts, then the held-out ones."""
    return TRAIN_FONTS + HELDOUT_FONTS


def _font_path(name: str) -> Path:
    """Path of the bundled TTF file of font ``name`` (one of :func:`list_fonts`)."""
    if name not in list_fonts():
        raise ValueError(
            f"font {name!r} is not one of the course fonts; valid choices: "
            f"{', '.join(list_fonts())}. Use TRAIN_FONTS for sources and HELDOUT_FONTS for targets."
        )
    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / f"{name}.ttf"
    if not path.exists():
        raise FileNotFoundError(
            f"font file {path} is missing from this matplotlib installation; reinstall "
            "matplotlib (pip install --force-reinstall matplotlib)."
        )
    return path


@cache
def font_chars(name: str) -> frozenset[str]:
    """Every character that font ``name`` maps to a glyph, read from the file's character map."""
    charmap = FT2Font(str(_font_path(name))).get_charmap()
    return frozenset(chr(code) for code in charmap if code < 0x110000)


def fonts_with(chars: Iterable[str], fonts: Sequence[str]) -> tuple[str, ...]:
    """The fonts among ``fonts`` that have a glyph for every character in ``chars``."""
    wanted = set("".join(chars))
    return tuple(f for f in fonts if wanted <= font_chars(f))


def check_fonts(chars: Iterable[str], fonts: Sequence[str]) -> None:
    """Raise ValueError unless every font in ``fonts`` is known and has every char in ``chars``."""
    if len(fonts) == 0:
        raise ValueError("fonts=() is empty; pass at least one font name, e.g. fonts=TRAIN_FONTS.")
    for font in fonts:
        missing = sorted(set("".join(chars)) - font_chars(font))
        if missing:
            usable = fonts_with(chars, fonts) or "none of them"
            raise ValueError(
                f"font {font!r} has no glyph for {''.join(missing)!r}; fonts among those "
                f"requested that have every character: {usable}. Use "
                "tlhelpers.data.fonts_with(chars, fonts) to choose fonts."
            )


@cache
def _pil_font(name: str) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(_font_path(name)), MASTER_FONT_PX)


@cache
def glyph_mask(font: str, char: str, stroke: int = 0) -> Image.Image:
    """High-resolution greyscale mask of one glyph, cropped to its ink (rendered once, cached).

    Args:
        font: a name from :func:`list_fonts`.
        char: a single character the font has (see :func:`font_chars`).
        stroke: extra outline width in master pixels (0 = the font's own weight).

    Returns:
        PIL "L" image of the glyph's bounding box (about 40–80 pixels a side), ink = 255.
    """
    check_fonts(char, (font,))
    if len(char) != 1:
        raise ValueError(f"char={char!r} must be a single character, e.g. char='a'.")
    pil_font = _pil_font(font)
    left, top, right, bottom = pil_font.getbbox(char, stroke_width=stroke)
    pad = 4
    canvas = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 0)
    draw = ImageDraw.Draw(canvas)
    draw.text(
        (pad - left, pad - top), char, font=pil_font, fill=255, stroke_width=stroke, stroke_fill=255
    )
    box = canvas.getbbox()
    if box is None or np.asarray(canvas).max() < 128:
        raise ValueError(
            f"font {font!r} draws nothing visible for {char!r}; choose another font from "
            "list_fonts()."
        )
    return canvas.crop(box)
