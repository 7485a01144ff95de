"""SmallCNN: the course's 32×32 image classifier, built from named stages.

A VGG-style stack (Simonyan & Zisserman, 2015) of 3×3 convolutions, each followed by batch
normalisation (Ioffe & Szegedy, 2015) and ReLU, with max-pooling between stages, global average
pooling (Lin et al., "Network in Network", 2014) and one linear head. With the quick profile's
widths (32, 32, 64, 128) it has about 141k parameters (10 classes).

The stages are attributes with names (``stem``, ``stage1``, ``stage2``, ``stage3``, ``pool``,
``head``) so that transfer-learning surgery can address them: freeze ``stem`` to ``stage2``,
replace ``head``, read features after ``stage2``. That follows the feature-hierarchy view of
Yosinski et al., "How transferable are features in deep neural networks?" (2014): lower stages
hold general features, upper stages task-specific ones.

Stage 1 pools *before* its convolution, so only the stem runs at full 32×32 resolution; that
made training 1.6–2× faster on a 2-core CPU than convolving first, for the same parameters.

Every method works with ``model.to(memory_format=torch.channels_last)`` and channels-last inputs,
which train markedly faster on CPU.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from tlhelpers import _checks

__all__ = ["SmallCNN"]


def _conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    """3×3 convolution (no bias: batch norm supplies it), batch norm, ReLU; keeps H and W."""
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


class SmallCNN(nn.Module):
    """A small convolutional classifier for 32×32 images, with stages named for surgery.

    Layout (shapes for a 32×32 input and widths ``(w0, w1, w2, w3)``)::

        stem    conv3×3 in→w0, BN, ReLU                          # (B, w0, 32, 32)
        stage1  maxpool, conv w0→w1, BN, ReLU                    # (B, w1, 16, 16)
        stage2  conv w1→w2, BN, ReLU, conv w2→w2, BN, ReLU, pool # (B, w2, 8, 8)
        stage3  conv w2→w3, BN, ReLU, maxpool                    # (B, w3, 4, 4)
        pool    global average pool, flatten                     # (B, w3)
        head    linear w3→num_classes                            # (B, num_classes)

    Args:
        num_classes: number of output classes (logits).
        widths: channels of stem, stage1, stage2 and stage3.
        in_channels: channels of the input images (3 for RGB, 1 for grey).

    Example:
        >>> model = SmallCNN(10)
        >>> model(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """

    STAGES: ClassVar[tuple[str, ...]] = ("stem", "stage1", "stage2", "stage3", "head")
    """Stages that hold parameters, input to output: the names surgery functions accept."""

    FEATURE_STAGES: ClassVar[tuple[str, ...]] = ("stem", "stage1", "stage2", "stage3", "pool")
    """Stages whose output :meth:`forward_features` can return."""

    def __init__(
        self,
        num_classes: int,
        *,
        widths: Sequence[int] = (32, 32, 64, 128),
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        num_classes = _checks.positive_int("num_classes", num_classes, example=10)
        in_channels = _checks.positive_int("in_channels", in_channels, example=3)
        widths = tuple(widths)
        if len(widths) != 4 or not all(
            isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in widths
        ):
            raise ValueError(
                f"widths={widths!r} must be four positive integers (stem, stage1, stage2, "
                "stage3), e.g. widths=(32, 32, 64, 128) as in the quick profile."
            )
        w0, w1, w2, w3 = widths
        self.num_classes = num_classes
        self.widths: tuple[int, int, int, int] = (w0, w1, w2, w3)
        self.in_channels = in_channels

        self.stem = nn.Sequential(*_conv_bn_relu(in_channels, w0))
        self.stage1 = nn.Sequential(nn.MaxPool2d(2), *_conv_bn_relu(w0, w1))
        self.stage2 = nn.Sequential(*_conv_bn_relu(w1, w2), *_conv_bn_relu(w2, w2), nn.MaxPool2d(2))
        self.stage3 = nn.Sequential(*_conv_bn_relu(w2, w3), nn.MaxPool2d(2))
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(w3, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits.

        Shapes:
            x: (B, in_channels, H, W), 32×32 in the course; returns (B, num_classes).
        """
        return self.head(self.forward_features(x, upto="pool"))  # (B, num_classes)

    def forward_features(self, x: torch.Tensor, *, upto: str = "stage3") -> torch.Tensor:
        """Run the network up to and including stage ``upto``; return that stage's output.

        Args:
            x: input images.
            upto: one of ``FEATURE_STAGES``: "stem", "stage1", "stage2", "stage3" (feature maps)
                or "pool" (one vector per image, what a linear probe reads).

        Shapes:
            x: (B, in_channels, 32, 32); returns (B, w0, 32, 32) after "stem", (B, w1, 16, 16)
            after "stage1", (B, w2, 8, 8) after "stage2", (B, w3, 4, 4) after "stage3",
            (B, w3) after "pool".
        """
        if upto not in self.FEATURE_STAGES:
            raise ValueError(
                f"upto={upto!r} is not a feature stage of SmallCNN; valid choices: "
                f"{', '.join(self.FEATURE_STAGES)}. Use model(x) for the head's logits."
            )
        for name in self.FEATURE_STAGES:
            x = getattr(self, name)(x)
            if name == upto:
                break
        return x

    def stage_outputs(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every stage's output in one pass, for looking at the feature hierarchy.

        Shapes:
            x: (B, in_channels, 32, 32); returns {"stem": (B, w0, 32, 32), "stage1":
            (B, w1, 16, 16), "stage2": (B, w2, 8, 8), "stage3": (B, w3, 4, 4), "pool": (B, w3),
            "head": (B, num_classes)}.
        """
        outputs: dict[str, torch.Tensor] = {}
        for name in (*self.FEATURE_STAGES, "head"):
            x = getattr(self, name)(x)
            outputs[name] = x
        return outputs

    @property
    def config(self) -> dict[str, Any]:
        """What rebuilds this architecture: ``SmallCNN.from_config(model.config)``."""
        return {
            "arch": "SmallCNN",
            "num_classes": self.num_classes,
            "widths": self.widths,
            "in_channels": self.in_channels,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SmallCNN:
        """Build a fresh (randomly initialised) SmallCNN from a :attr:`config` mapping.

        Lists are accepted for ``widths`` (as read back from JSON).
        """
        expected = {"arch", "num_classes", "widths", "in_channels"}
        if not isinstance(config, Mapping):
            raise TypeError(
                f"config={config!r} must be a mapping such as model.config, e.g. "
                "{'arch': 'SmallCNN', 'num_classes': 10, 'widths': (32, 32, 64, 128), "
                "'in_channels': 3}."
            )
        unknown = set(config) - expected
        missing = {"num_classes"} - set(config)
        if unknown or missing:
            raise ValueError(
                f"config has unknown keys {sorted(unknown)} and lacks {sorted(missing)}; valid "
                f"keys: {', '.join(sorted(expected))} (num_classes required). Pass model.config."
            )
        arch = config.get("arch", "SmallCNN")
        if arch != "SmallCNN":
            raise ValueError(
                f"config['arch']={arch!r} does not describe this class; valid choice: "
                "'SmallCNN'. Build that architecture with its own class."
            )
        return cls(
            config["num_classes"],
            widths=tuple(config.get("widths", (32, 32, 64, 128))),
            in_channels=config.get("in_channels", 3),
        )

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, widths={self.widths}, in_channels={self.in_channels}"
        )
