"""Images a loss considers equal: loss metamers and MAD competition.

- :func:`metamers` (``losslab equal``): from noise, a blurred copy or another photo, descend a
  loss alone until it scores the image (nearly) equal to the target; what the metamer keeps of
  its start is what the loss does not measure.
- :func:`mad` (``losslab mad``): Wang & Simoncelli's MAD competition between two losses: the
  best and worst images under one while the other is held at its value for a noisy start.
- :func:`load_image`: a target by bundled-photo name or file path, at a chosen size.
- Jobs (one call per CLI command): :func:`write_metamers`, :func:`write_mad`.
- Writers: :func:`plot_metamers`, :func:`plot_mad`, :func:`write_json`, :func:`format_metamers`,
  :func:`format_mad`.

Imports: losses (the criteria), data (bundled photos), metrics (RMSE aside, every number is a
metric function: colour errors, SSIM).
"""

from losslab.synthesis._common import minimum_size
from losslab.synthesis.commands import Written, write_mad, write_metamers
from losslab.synthesis.images import START_KINDS, load_image, make_start
from losslab.synthesis.mad import MAD_IMAGES, MADResult, mad
from losslab.synthesis.metamers import DEFAULT_STARTS, MetamerResult, metamers
from losslab.synthesis.output import (
    format_mad,
    format_metamers,
    mad_caption,
    metamer_caption,
    plot_mad,
    plot_metamers,
    write_json,
)

__all__ = [
    "DEFAULT_STARTS",
    "MAD_IMAGES",
    "START_KINDS",
    "MADResult",
    "MetamerResult",
    "Written",
    "format_mad",
    "format_metamers",
    "load_image",
    "mad",
    "mad_caption",
    "make_start",
    "metamer_caption",
    "metamers",
    "minimum_size",
    "plot_mad",
    "plot_metamers",
    "write_json",
    "write_mad",
    "write_metamers",
]
