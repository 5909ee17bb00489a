"""The bottom layer of losslab: what every other package may import, and which imports nothing
from the rest of losslab (checked by import-linter, see ``docs/architecture.md``).

- :mod:`~losslab.core.validation`: input checks (``check_image``, ``check_pair``, ...) and the
  global value-check switch.
- :mod:`~losslab.core.registry`: the one ``Registry`` class behind every name table.
- :mod:`~losslab.core.color`: luma and YCbCr.
- :mod:`~losslab.core.filters`: Gaussian windows, separable filtering, the Burt–Adelson pyramid.
- :mod:`~losslab.core.atomic`: atomic file writes.
- :mod:`~losslab.core.serialization`: the one safe ``torch.load`` (``weights_only=True``).
- :mod:`~losslab.core.yaml_io`: YAML reading with line/column errors.
- :mod:`~losslab.core.distributed`: averaging a value over DDP processes.
- :mod:`~losslab.core.spec_tree`: the loss spec language's syntax tree (parse, canonical render,
  edits); the meaning of names (the loss registry) stays in :mod:`losslab.losses.spec`.
"""
