"""One place that reads YAML text and turns a syntax error into one line naming where and what.

``yaml.YAMLError`` messages span several lines (the problem, a context, a code excerpt with a
caret); losslab reports configs, experiment files and ``--set`` values on one line instead.
"""

from __future__ import annotations

from typing import Any

import yaml


def describe_yaml_error(error: yaml.YAMLError) -> str:
    """``"line 3, column 7: mapping values are not allowed here"`` for a YAML syntax error."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or " ".join(str(error).split())
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}"


def load_yaml(text: str, *, what: str) -> Any:
    """``yaml.safe_load(text)``; a syntax error becomes a one-line ``ValueError`` naming ``what``
    (e.g. ``"config file 'x.yaml'"``), the line and column, and the usual fix."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ValueError(
            f"{what} is not valid YAML ({describe_yaml_error(error)}). Check the indentation and "
            "quote values that contain ':', '#', '{' or '[' (e.g. loss: \"l1 + 0.1*mse\")."
        ) from None


__all__ = ["describe_yaml_error", "load_yaml"]
