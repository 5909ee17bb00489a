"""Small text operations on loss specs that a comparison needs.

- :func:`split_terms` / :func:`term_call_name`: the ``+``-separated terms of a spec and the loss
  name each one calls (the grammar is in :mod:`losslab.losses.spec`).
- :func:`with_perceptual_weights`: give every ``perceptual`` term that names no ``weights=`` the
  comparison's choice, so the resolved spec says which feature network was used.
- :func:`probe_spec`: the part of a spec the loss probe can evaluate (adversarial terms need a
  discriminator trained alongside a generator, so they are left out).
- :func:`safe_run_name`: a label made safe for a directory name.
"""

from __future__ import annotations

import re

_LEADING_WEIGHT = re.compile(r"^\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*\*\s*")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def split_terms(spec: str) -> list[str]:
    """Split a spec at its top-level ``+`` signs (not inside parentheses, not ``1e+3``).

    >>> split_terms("mse + 0.01*perceptual(layers=relu1_2,relu2_2)")
    ['mse', '0.01*perceptual(layers=relu1_2,relu2_2)']
    """
    terms: list[str] = []
    depth = 0
    start = 0
    for index, char in enumerate(spec):
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "+" and depth == 0:
            exponent = index >= 2 and spec[index - 1] in "eE" and spec[index - 2].isdigit()
            if not exponent and spec[:index].strip():
                terms.append(spec[start:index].strip())
                start = index + 1
    terms.append(spec[start:].strip())
    return [term for term in terms if term]


def term_call_name(term: str) -> str:
    """The loss name a term calls: ``"0.01*perceptual(layers=relu2_2)"`` → ``"perceptual"``."""
    rest = _LEADING_WEIGHT.sub("", term, count=1)
    match = _NAME.match(rest.strip())
    return match.group(0) if match else ""


def _registered_name(name: str) -> str | None:
    from losslab.losses.registry import get_loss_entry

    try:
        return get_loss_entry(name).name
    except ValueError:
        return None


def is_adversarial_term(term: str) -> bool:
    """Whether a term calls a loss whose class declares ``is_adversarial = True``."""
    from losslab.losses.registry import get_loss_entry

    try:
        entry = get_loss_entry(term_call_name(term))
    except ValueError:
        return False
    return bool(getattr(entry.cls, "is_adversarial", False)
                or getattr(entry.cls, "uses_discriminator", False))


def with_perceptual_weights(spec: str, weights: str | None) -> str:
    """Add ``weights=WEIGHTS`` to every ``perceptual`` call of ``spec`` that does not set it.

    ``weights=None`` returns the spec unchanged. Calls that already name weights keep them.

    >>> with_perceptual_weights("mse + 0.01*perceptual(layers=relu2_2)", "random")
    'mse + 0.01*perceptual(layers=relu2_2, weights=random)'
    """
    if weights is None:
        return spec
    pieces: list[str] = []
    position = 0
    depth = 0
    index = 0
    while index < len(spec):
        char = spec[index]
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif depth == 0 and (char.isalpha() or char == "_") and (
            index == 0 or not (spec[index - 1].isalnum() or spec[index - 1] in "_.")
        ):
            match = _NAME.match(spec, index)
            name = match.group(0) if match else ""
            if not name:
                index += 1
                continue
            end = index + len(name)
            if _registered_name(name) != "perceptual":
                index = end
                continue
            after = end
            while after < len(spec) and spec[after] == " ":
                after += 1
            if after < len(spec) and spec[after] == "(":
                close = _matching_parenthesis(spec, after)
                inside = spec[after + 1 : close]
                if not re.search(r"(^|[,(\s])weights\s*=", inside):
                    separator = ", " if inside.strip() else ""
                    pieces.append(spec[position:close] + f"{separator}weights={weights}")
                    position = close
                index = close + 1
                continue
            pieces.append(spec[position:end] + f"(weights={weights})")
            position = end
            index = end
            continue
        index += 1
    pieces.append(spec[position:])
    return "".join(pieces)


def _matching_parenthesis(spec: str, open_index: int) -> int:
    depth = 0
    for index in range(open_index, len(spec)):
        if spec[index] == "(":
            depth += 1
        elif spec[index] == ")":
            depth -= 1
            if depth == 0:
                return index
    raise ValueError(f"unbalanced parentheses in loss spec {spec!r}: add the missing ')'.")


def probe_spec(spec: str) -> tuple[str | None, str]:
    """The part of ``spec`` the loss probe can evaluate, and a note saying what was left out.

    Returns ``(spec_to_probe, note)``; ``spec_to_probe`` is ``None`` when nothing is left (a
    purely adversarial loss). Adversarial terms are dropped: they are a discriminator trained
    against a particular generator, not a fixed function of ``(prediction, target)``.
    """
    terms = split_terms(spec)
    kept = [term for term in terms if not is_adversarial_term(term)]
    dropped = [term for term in terms if is_adversarial_term(term)]
    if not dropped:
        return spec, ""
    if not kept:
        return None, (
            "not probed: an adversarial term alone is a discriminator trained with the generator, "
            "not a fixed function of (prediction, target)"
        )
    return " + ".join(kept), (
        f"probed without {', '.join(dropped)} (an adversarial term has no fixed value without "
        "its trained discriminator)"
    )


def safe_run_name(label: str) -> str:
    """A directory name for a run label: ``"l1(luma)"`` → ``"l1-luma"``, ``"0.5*mse"`` → ``"0.5xmse"``.

    Spaces around ``+ * = ,`` are dropped. Keeps letters, digits, ``.``, ``_``, ``-``, ``+`` and ``=``; ``*`` becomes ``x``, brackets,
    commas and other spaces become ``-`` (runs of them collapse), anything else ``_``.
    """
    text = re.sub(r"\s*([+*=,])\s*", r"\1", label.strip()).replace("*", "x")
    text = re.sub(r"[\s(),\[\]]+", "-", text)
    text = re.sub(r"[^A-Za-z0-9._+=-]", "_", text)
    text = re.sub(r"-{2,}", "-", text).strip("-.")
    return text or "run"


def unique_run_names(labels: list[str]) -> list[str]:
    """:func:`safe_run_name` of every label, suffixed ``-2``, ``-3``... where two collide."""
    names: list[str] = []
    used: set[str] = set()
    for label in labels:
        base = safe_run_name(label)
        name, counter = base, 1
        while name.lower() in used:
            counter += 1
            name = f"{base}-{counter}"
        used.add(name.lower())
        names.append(name)
    return names
