"""Command line: ``python -m tlhelpers doctor | pretrain NAME | backbones``."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _seed(text: str) -> int:
    """``--seed``: checked before any work (argparse reports the error and exits with 2)."""
    from tlhelpers._checks import seed

    try:
        return seed("--seed", int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a seed; use a whole number from 0 to 2**32 - 1, e.g. --seed 0."
        ) from None


def _device(text: str) -> str:
    """``--device``: a name :func:`tlhelpers.settings.pick_device` understands on this machine."""
    from tlhelpers.settings import pick_device

    try:
        pick_device(text)
    except (ValueError, RuntimeError) as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def _parser() -> argparse.ArgumentParser:
    from tlhelpers.models.registry import list_backbones
    from tlhelpers.settings import PROFILES

    parser = argparse.ArgumentParser(
        prog="python -m tlhelpers", description="Helpers for Transfer Learning, hands-on."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    doctor = commands.add_parser("doctor", help="check the environment, data and checkpoints")
    doctor.add_argument("--profile", choices=list(PROFILES), default="quick")
    doctor.add_argument("--constraints", default=None, help="constraints file to compare with")
    backbones = commands.add_parser("backbones", help="list the backbones and their state")
    backbones.add_argument("--profile", choices=list(PROFILES), default="quick")
    pre = commands.add_parser("pretrain", help="pretrain a course checkpoint and save it")
    pre.add_argument("name", choices=list_backbones("course"), help="which course backbone")
    pre.add_argument("--profile", choices=list(PROFILES), default="quick")
    pre.add_argument("--seed", type=_seed, default=0, help="a non-negative integer")
    pre.add_argument("--device", type=_device, default="auto", help="auto, cpu, cuda or mps")
    pre.add_argument("--out", default=None, help="folder to write to (default: data/checkpoints)")
    pre.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def _pretrain(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tlhelpers.pretrain import pretrain

    command = (
        f"python -m tlhelpers pretrain {args.name} --profile {args.profile} --seed {args.seed}"
    )
    if args.out:
        command += f" --out {shlex.quote(args.out)}"
    result = pretrain(
        args.name,
        args.profile,
        seed=args.seed,
        device=args.device,
        progress=not args.quiet,
        directory=Path(args.out) if args.out else None,
        command=command,
    )
    print(
        f"{args.name} ({args.profile}): source val accuracy {result.val_accuracy:.1f}% "
        f"in {result.seconds:.1f} s"
    )
    if result.paths:
        for path in result.paths:
            print(f"wrote {path}")
    return 0


_MARKS = {"ok": "✓", "error": "✗", "warning": "·"}


def _backbones(args: argparse.Namespace) -> int:
    """One line per backbone of the registry with its state on this machine (never downloads)."""
    from tlhelpers.models.registry import BACKBONES, backbone_status

    width = max(len(name) for name in BACKBONES)
    for name, backbone in BACKBONES.items():
        state, detail, fix = backbone_status(name, args.profile)
        print(f"{_MARKS[state]} {name:<{width}} {backbone.supervision:<16} {backbone.source}")
        print(f"  {'optional, not on this machine: ' if state == 'warning' else ''}{detail}")
        if fix:
            print(f"  {'rebuild' if backbone.kind == 'course' else 'get it'}: {fix}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "doctor":
        from tlhelpers.doctor import main as doctor_main

        options = ["--profile", args.profile]
        if args.constraints is not None:
            options += ["--constraints", args.constraints]
        return doctor_main(options)
    if args.command == "pretrain":
        return _pretrain(args)
    return _backbones(args)


if __name__ == "__main__":
    sys.exit(main())
