"""Frozen feature networks that a loss rebuilds itself are left out of its ``state_dict``.

A ``perceptual`` term's VGG19 slices and an ``lpips`` term's network are frozen (no gradients,
always in eval mode) and fully determined by the term's arguments: ImageNet or file weights are
read again from the same file, and ``weights=random`` is a seeded initialisation that draws the
same tensors every time (:func:`losslab.losses.perceptual.vgg19_features`). Storing them in every
checkpoint only repeats those bytes (about 2 MB for the default perceptual layers, 80 MB up to
``relu5_4``), and evaluation never needs them.

:func:`keep_out_of_state_dict` registers two public ``nn.Module`` hooks on the owning term:

- after ``state_dict()``: the submodule's entries are removed;
- before ``load_state_dict()``: entries of that submodule that the incoming dict lacks are filled
  with the submodule's current (rebuilt) tensors, so a strict load still succeeds and still
  reports every *other* missing or unexpected key. A dict that still has the entries (a
  checkpoint written before this change) loads them as before.
"""

from __future__ import annotations

from typing import Any

from torch import nn


def keep_out_of_state_dict(owner: nn.Module, name: str) -> None:
    """Leave ``owner.<name>`` (a frozen submodule) out of ``owner.state_dict()``; accept its
    absence on ``load_state_dict``.

    Args:
        owner: the loss term that builds the frozen network in its ``__init__``.
        name: attribute name of the submodule (``"slices"``, ``"model"``).

    Raises:
        TypeError: ``owner.<name>`` is not an ``nn.Module``.
        ValueError: the submodule has a parameter that requires gradients (it would be trained
            and then lost at the next resume).
    """
    network = getattr(owner, name, None)
    if not isinstance(network, nn.Module):
        raise TypeError(f"keep_out_of_state_dict needs the name of a submodule of "
                        f"{type(owner).__name__}; {name!r} is {type(network).__name__}.")
    trainable = [key for key, parameter in network.named_parameters() if parameter.requires_grad]
    if trainable:
        raise ValueError(f"{type(owner).__name__}.{name} has trainable parameters (e.g. "
                         f"{trainable[0]!r}); only frozen networks may be left out of "
                         "checkpoints. Call requires_grad_(False) on it first.")

    def drop(module: nn.Module, state_dict: dict[str, Any], prefix: str,
             local_metadata: dict[str, Any]) -> None:
        start = f"{prefix}{name}."
        for key in [key for key in state_dict if key.startswith(start)]:
            del state_dict[key]

    def fill(module: nn.Module, state_dict: dict[str, Any], prefix: str,
             local_metadata: dict[str, Any], strict: bool, missing_keys: list[str],
             unexpected_keys: list[str], error_msgs: list[str]) -> None:
        # keep_vars: the tensors themselves, so loading them copies each onto itself (a no-op).
        for key, tensor in getattr(module, name).state_dict(keep_vars=True).items():
            state_dict.setdefault(f"{prefix}{name}.{key}", tensor)

    owner.register_state_dict_post_hook(drop)
    owner.register_load_state_dict_pre_hook(fill)


__all__ = ["keep_out_of_state_dict"]
