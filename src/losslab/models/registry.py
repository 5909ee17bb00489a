"""One table of model names: :func:`register_model`, :func:`build_model`, :func:`available_models`.

A model class is registered with the :func:`register_model` decorator. ``build_model(name,
**options)`` passes ``options`` to its constructor; an unknown name or option raises a
``ValueError`` with the closest valid names. ``hypotheses=K`` wraps the model in a
:class:`~losslab.models.multi_hypothesis_head.MultiHypothesisHead` (the class must define
``output_channels_for(options) -> int``, the channels of one output image).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from losslab.core.registry import Registry, suggest
from losslab.models._common import check_count
from losslab.models.multi_hypothesis_head import MultiHypothesisHead, ScoredHypothesisHead

T = TypeVar("T", bound=type)



#: Filled by ``@register_model``; ``losslab/models/__init__.py`` imports every model module.
MODELS: Registry[type[nn.Module]] = Registry("model")


def register_model(name: str, *, aliases: tuple[str, ...] = ()) -> Callable[[T], T]:
    """Class decorator: make an ``nn.Module`` class buildable as ``build_model(name, ...)``."""

    def decorator(cls: T) -> T:
        MODELS.register(name, cls, aliases=aliases)
        cls.registered_name = name  # type: ignore[attr-defined]
        return cls

    return decorator


def available_models() -> list[str]:
    """Registered model names (aliases excluded), sorted."""
    return MODELS.names()


def get_model_class(name: str) -> type[nn.Module]:
    """The class registered as ``name``; an unknown name raises with the closest valid names."""
    return MODELS.get(name)


def model_parameters(name: str) -> list[str]:
    """Constructor parameter names of the model registered as ``name``."""
    cls = get_model_class(name)
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
    return [p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def build_model(name: str, *, hypotheses: int | None = None, scores: bool = False,
                **options: Any) -> nn.Module:
    """Construct the model registered as ``name`` with ``options`` (constructor arguments).

    Args:
        name: a name from :func:`available_models` (``autoencoder``, ``super_resolution``,
            ``unet``, ...).
        hypotheses: if given (``K >= 1``), build the model with ``K`` times its output channels
            and wrap it in a ``MultiHypothesisHead``, so it returns ``(N, K, C, H, W)``.
        scores: with ``hypotheses``, wrap it in a ``ScoredHypothesisHead`` instead (a score head
            on the model input, reading ``options["in_channels"]``; the model can be sampled).
        **options: constructor arguments of the model (see its docstring).

    Example:
        >>> model = build_model("unet", in_channels=9, hypotheses=4)  # (N, 9, H, W) -> (N, 4, 3, H, W)
    """
    cls = get_model_class(name)
    known = model_parameters(name)
    unknown = [key for key in options if key not in known]
    if unknown:
        key = unknown[0]
        raise ValueError(
            f"model {name!r} has no option {key!r}.{suggest(key, known)} "
            f"Options of {name!r}: {', '.join(known) or 'none'}."
        )
    if hypotheses is None:
        if scores:
            raise ValueError("scores=True needs hypotheses=K (the score head picks one of K "
                             "hypotheses); give hypotheses or drop scores.")
        return cls(**options)

    channels_for = getattr(cls, "output_channels_for", None)
    if channels_for is None:
        raise ValueError(
            f"model {name!r} does not produce images, so it cannot return hypotheses; "
            "leave hypotheses unset."
        )
    check_count("hypotheses", hypotheses)
    channels = int(channels_for(options))
    options = {**options, "out_channels": hypotheses * channels}
    if scores:
        default = inspect.signature(cls.__init__).parameters.get("in_channels")
        in_channels = options.get("in_channels", getattr(default, "default", None))
        if isinstance(in_channels, bool) or not isinstance(in_channels, int):
            raise ValueError(f"a score head reads the model input: model {name!r} needs an "
                             "integer in_channels option to build one.")
        return ScoredHypothesisHead(cls(**options), hypotheses=hypotheses, channels=channels,
                                    in_channels=in_channels)
    return MultiHypothesisHead(cls(**options), hypotheses=hypotheses, channels=channels)
