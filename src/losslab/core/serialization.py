"""The one place where losslab reads a file written by ``torch.save``.

``torch.load`` unpickles, and a pickle can name any callable: a crafted checkpoint or weights file
would run code the moment it is loaded. Every checkpoint, weights file and saved prediction that
losslab reads therefore goes through :func:`load_torch_file`, which always passes
``weights_only=True`` (tensors, numbers, strings and plain containers only; torch's own
allow-list) and turns every failure into a one-line :class:`UnreadableFileError` that names the
file and what to do. losslab's own checkpoints hold nothing else, so they load unchanged.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch


class UnreadableFileError(ValueError):
    """A file that ``torch.load(weights_only=True)`` refused or could not parse."""


def load_torch_file(path: str | os.PathLike[str], *, what: str = "file",
                    remedy: str = "delete it or replace it with a good copy") -> Any:
    """Load ``path`` with ``torch.load(map_location="cpu", weights_only=True)``.

    Args:
        path: the file.
        what: what the file is, for the message (``"checkpoint"``, ``"weights file"``).
        remedy: what the user should do when the file cannot be read.

    Returns:
        The loaded object (tensors on the CPU).

    Raises:
        UnreadableFileError: the file is missing, empty, truncated, not a torch file, or holds
            objects outside torch's weights-only allow-list (which could run code when loaded).
            The message never suggests ``weights_only=False``.
    """
    path = Path(path)
    if not path.is_file():
        raise UnreadableFileError(f"{what} {str(path)!r} does not exist.")
    if path.stat().st_size == 0:
        raise UnreadableFileError(f"{what} {str(path)!r} is empty (0 bytes; an interrupted copy?); "
                                  f"{remedy}.")
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as error:  # legacy (pre-1.6) serialisation cannot be memory-mapped
            if "mmap" not in str(error) and "zip" not in str(error):
                raise
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # weights_only=True refused a global: the file asks to build objects (or call functions)
        # that are not plain data. Never load it; say so without echoing torch's advice to
        # disable the check.
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        if "weights only" in str(error).lower() or "unsupported global" in str(error).lower():
            raise UnreadableFileError(
                f"refused to load {what} {str(path)!r}: it contains objects other than tensors "
                "and plain containers, which could run code when loaded (losslab's own files "
                f"never do); {remedy}.") from None
        raise UnreadableFileError(f"{what} {str(path)!r} is not a readable torch file "
                                  f"({first_line[:120]}); {remedy}.") from None
    except (EOFError, RuntimeError, OSError, ValueError, KeyError, AttributeError,
            IndexError, TypeError, UnicodeDecodeError) as error:
        raise UnreadableFileError(
            f"{what} {str(path)!r} is not a readable torch file (truncated or corrupt: "
            f"{type(error).__name__}); {remedy}.") from None


__all__ = ["UnreadableFileError", "load_torch_file"]
