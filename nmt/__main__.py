"""``python -m nmt`` is ``nmt-train``, for launchers that start a module: ``torchrun -m nmt``."""

from nmt.commands.cli import train

train()
