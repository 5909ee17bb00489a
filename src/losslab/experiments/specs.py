"""Edits of loss specs that a comparison needs, made on the spec's syntax tree.

Every function parses the spec with :mod:`losslab.core.spec_tree`, changes the tree and renders
it with :func:`~losslab.core.spec_tree.render_edit`, which keeps the user's own spelling of every
part the edit did not touch (so a resolved spec differs from the written one only where it must).

- :func:`split_terms` / :func:`term_call_name` / :func:`called_losses`: the ``+``-separated terms
  of a spec, the loss name a term calls, the registered losses a spec calls (the grammar is in
  :mod:`losslab.losses.spec`).
- :func:`with_perceptual_weights`: give every ``perceptual`` term that names no ``weights=`` the
  comparison's choice, so the resolved spec says which feature network was used.
- :func:`probe_spec`: the part of a spec the loss probe can evaluate (adversarial terms need a
  discriminator trained alongside a generator, so they are left out).
- :func:`safe_run_name`: a label made safe for a directory name.
"""

from __future__ import annotations

import re

from losslab.core.spec_tree import (
    Argument,
    Call,
    Name,
    SpecError,
    String,
    Term,
    map_calls,
    parse,
    render_edit,
    select_terms,
    term_texts,
)
from losslab.losses.registry import get_loss_entry


def split_terms(spec: str) -> list[str]:
    """The text of each ``+``-separated term of ``spec``, as written.

    Raises :class:`~losslab.core.spec_tree.SpecError` when ``spec`` does not parse.

    >>> split_terms("mse + 0.01*perceptual(layers=relu1_2,relu2_2)")
    ['mse', '0.01*perceptual(layers=relu1_2,relu2_2)']
    """
    return term_texts(spec)


def term_call_name(term: str) -> str:
    """The loss name a term calls: ``"0.01*perceptual(layers=relu2_2)"`` → ``"perceptual"``.

    ``""`` when ``term`` is not one term of the spec language.
    """
    try:
        tree = parse(term)
    except SpecError:
        return ""
    return tree.terms[0].call.name if len(tree.terms) == 1 else ""


def called_losses(spec: str) -> list[str]:
    """The registry names of the losses ``spec`` calls, in order, aliases resolved.

    Unknown names are kept as written. Use it instead of a substring test: ``"ms_ssim" in spec``
    misses the alias ``msssim``.

    >>> called_losses("0.84*msssim + 0.16*l1(luma) + mae")
    ['ms_ssim', 'l1', 'l1']
    """
    return [_registered_name(call.name) or call.name for call in parse(spec).calls]


def _registered_name(name: str) -> str | None:
    """The loss registry's own name for ``name`` (aliases resolved), ``None`` if unknown."""
    try:
        return get_loss_entry(name).name
    except ValueError:
        return None


def _calls_adversarial(term: Term) -> bool:
    try:
        entry = get_loss_entry(term.call.name)
    except ValueError:
        return False
    return bool(entry.cls.judged_by_discriminator)


def is_adversarial_term(term: str) -> bool:
    """Whether a term calls a loss judged by a discriminator (``Loss.judged_by_discriminator``:
    adversarial, feature matching); ``False`` for text that is not one term."""
    try:
        tree = parse(term)
    except SpecError:
        return False
    return len(tree.terms) == 1 and _calls_adversarial(tree.terms[0])


def with_perceptual_weights(spec: str, weights: str | None) -> str:
    """Add ``weights=WEIGHTS`` to every ``perceptual`` call of ``spec`` that does not set it.

    ``weights=None`` returns the spec unchanged. Calls that already name weights keep them. The
    rest of the spec keeps its spelling; the edited call is written ``name(args, weights=W)``.
    A spec that does not parse is returned unchanged: building it reports the error, with the
    position, where the comparison checks every loss before training.

    >>> with_perceptual_weights("mse + 0.01*perceptual(layers=relu2_2)", "random")
    'mse + 0.01*perceptual(layers=relu2_2, weights=random)'
    """
    if weights is None:
        return spec
    try:
        tree = parse(spec)
    except SpecError:
        return spec
    # A name is written bare; anything else (a path) quoted, as the grammar requires.
    value = Name(weights) if _is_bare_name(weights) else String(weights)

    def add_weights(call: Call) -> Call:
        if _registered_name(call.name) != "perceptual" or call.keyword("weights") is not None:
            return call
        return call.with_argument(Argument((value,), "weights"))

    return render_edit(spec, map_calls(tree, add_weights))


def _is_bare_name(text: str) -> bool:
    try:
        Name(text)
    except ValueError:
        return False
    return True


def probe_spec(spec: str) -> tuple[str | None, str]:
    """The part of ``spec`` the loss probe can evaluate, and a note saying what was left out.

    Returns ``(spec_to_probe, note)``; ``spec_to_probe`` is ``None`` when nothing is left (a
    purely adversarial loss). Adversarial terms are dropped: they are a discriminator trained
    against a particular generator, not a fixed function of ``(prediction, target)``. The kept
    terms keep their spelling and are joined with ``" + "``.

    Raises :class:`~losslab.core.spec_tree.SpecError` when ``spec`` does not parse.
    """
    tree = parse(spec)
    dropped = [text for term, text in zip(tree.terms, term_texts(spec, tree), strict=True)
               if _calls_adversarial(term)]
    if not dropped:
        return spec, ""
    kept = select_terms(tree, lambda term: not _calls_adversarial(term))
    if kept is None:
        return None, (
            "not probed: an adversarial term alone is a discriminator trained with the generator, "
            "not a fixed function of (prediction, target)"
        )
    return render_edit(spec, kept), (
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
