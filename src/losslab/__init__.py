"""losslab: what does my loss function consider "equal", and what does that do to my outputs?

Public entry points:

- :func:`losslab.loss` builds any loss from a spec string, e.g.
  ``losslab.loss("l1 + 0.01*perceptual(layers=relu1_2,relu2_2, weights=random)")``.
- :mod:`losslab.losses` exports every loss class, colour view and the registry.
- :mod:`losslab.functional` gives every fixed measure as a function ``f(prediction, target, *,
  data_range=1.0) -> (N,)``, e.g. ``losslab.functional.ssim(x, y)``.

Tensors are ``(N, C, H, W)`` float RGB images; the value range each loss accepts is declared
(``(0, 1)`` by default) and checked at the boundary.
"""

from losslab import functional
from losslab.losses import loss

__all__ = ["__version__", "functional", "loss"]
__version__ = "0.1.0"
