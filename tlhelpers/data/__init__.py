"""The course's offline image world: rendered glyphs, procedural textures, handwritten digits.

Nothing is downloaded. Sources for pretraining are :func:`letters` and :func:`textures`;
targets are :func:`novel_target` ("digits", "greek") in held-out fonts, with :func:`few_shot`
for k-shot sets, and :func:`handwritten_digits` (a real domain shift). Every dataset is an
:class:`ImageSet` of uint8 images; :func:`to_float` is the one normalisation and
``ImageSet.loader`` the fast in-memory batch loader every notebook uses.

Example:
    >>> from tlhelpers.data import letters, novel_target, few_shot
    >>> source = letters("train", "quick")
    >>> target = novel_target("digits", "quick")
    >>> five_shot = few_shot(target.pool, k=5, seed=0)
"""

from tlhelpers.data.fonts import (
    HELDOUT_FONTS,
    TRAIN_FONTS,
    font_chars,
    fonts_with,
    list_fonts,
)
from tlhelpers.data.glyphs import (
    COLOUR_MODES,
    DIGITS,
    GREEK,
    LETTER_VARIANTS,
    LETTERS,
    SOURCE_STYLE,
    TARGET_STYLE,
    GlyphStyle,
    render_glyphs,
)
from tlhelpers.data.handwritten import handwritten_digits
from tlhelpers.data.imageset import MEAN, STD, ImageSet, to_float
from tlhelpers.data.loader import TensorLoader
from tlhelpers.data.patterns import TEXTURE_CLASSES, render_textures, texture_patterns
from tlhelpers.data.tasks import ROTATION_CLASSES, few_shot, few_shot_indices, rotation_task
from tlhelpers.data.worlds import (
    TARGETS,
    TargetWorld,
    glyph_world,
    letters,
    novel_target,
    random_stream,
    textures,
)

__all__ = [
    "COLOUR_MODES",
    "DIGITS",
    "GREEK",
    "HELDOUT_FONTS",
    "LETTERS",
    "LETTER_VARIANTS",
    "MEAN",
    "ROTATION_CLASSES",
    "SOURCE_STYLE",
    "STD",
    "TARGETS",
    "TARGET_STYLE",
    "TEXTURE_CLASSES",
    "TRAIN_FONTS",
    "GlyphStyle",
    "ImageSet",
    "TargetWorld",
    "TensorLoader",
    "few_shot",
    "few_shot_indices",
    "font_chars",
    "fonts_with",
    "glyph_world",
    "handwritten_digits",
    "letters",
    "list_fonts",
    "novel_target",
    "random_stream",
    "render_glyphs",
    "render_textures",
    "rotation_task",
    "texture_patterns",
    "textures",
    "to_float",
]
