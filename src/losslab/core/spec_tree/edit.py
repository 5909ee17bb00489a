"""Edits of a parsed spec: render an edited tree in the user's own spelling, map or select terms.

:func:`render_edit` renders an edited tree reusing the original text of every part the edit
did not change, so an edit (``with_perceptual_weights`` in :mod:`losslab.experiments.specs`)
does not re-spell the rest of a user's spec; :func:`map_calls`, :func:`select_terms` and
:func:`term_texts` edit or read a parsed tree term by term.
"""

from __future__ import annotations

from collections.abc import Callable

from losslab.core.spec_tree.nodes import (
    Argument,
    Call,
    Node,
    Schedule,
    Span,
    Spec,
    Term,
    children,
    layout,
    render,
    walk,
)
from losslab.core.spec_tree.parser import parse


def _same_layout(original: Node, edited: Node) -> bool:
    """Whether ``edited`` differs from ``original`` only inside children in the same slots."""
    if type(original) is not type(edited):
        return False
    if isinstance(original, Term) and isinstance(edited, Term):
        return ((original.weight is None) == (edited.weight is None)
                and (original.trailing_weight is None) == (edited.trailing_weight is None)
                and len(original.schedules) == len(edited.schedules))
    if isinstance(original, (Call, Argument)) and original.name != edited.name:  # type: ignore[union-attr]
        return False
    if isinstance(original, Schedule) and original.kind != edited.kind:  # type: ignore[union-attr]
        return False
    if isinstance(original, Call) and not original.arguments:
        return False  # 'perceptual' has no parentheses to splice arguments into
    return bool(children(original)) and len(children(original)) == len(children(edited))


def render_edit(source: str, edited: Node) -> str:
    """The text of ``edited``, an edit of ``parse(source)``, keeping the source's own spelling.

    Every node of ``edited`` that the edit left as it was (same span, equal value) is written as
    it was in ``source``; a changed node whose children sit in the same slots keeps the source
    text between them; any other changed node, and every new node (no span), is written in
    canonical form. ``parse(render_edit(source, edited)) == edited`` always holds.

    >>> source = "mse+0.01 * perceptual(layers=relu1_2 ,relu2_2)"
    >>> tree = parse(source)
    >>> call = tree.terms[1].call.with_argument(Argument((Name("random"),), "weights"))
    >>> term = Term(call, tree.terms[1].weight, span=tree.terms[1].span)
    >>> render_edit(source, Spec((tree.terms[0], term), span=tree.span))
    'mse+0.01 * perceptual(layers=relu1_2 ,relu2_2, weights=random)'
    """
    root = parse(source)
    if edited == root and edited.span == root.span:
        return source  # nothing changed: the source as it was, surrounding spaces included
    originals = {(type(node), node.span): node for node in walk(root)}

    def text(node: Node) -> str:
        span = node.span
        original = originals.get((type(node), span)) if span is not None else None
        if original is None or span is None:
            return layout(node, text)
        if original == node:
            return span.text(source)
        if _same_layout(original, node):
            pieces, position = [], span.start
            for old, new in zip(children(original), children(node), strict=True):
                old_span = old.span or Span(position, position)  # parsed nodes all have spans
                pieces += [source[position:old_span.start], text(new)]
                position = old_span.end
            pieces.append(source[position:span.end])
            return "".join(pieces)
        return layout(node, text)

    return text(edited)


def term_texts(source: str, tree: Spec | None = None) -> list[str]:
    """Each term's own text in ``source`` (``tree``: ``parse(source)``, if already parsed)."""
    tree = parse(source) if tree is None else tree
    return [term.span.text(source) if term.span is not None else render(term)
            for term in tree.terms]


def map_calls(tree: Spec, edit: Callable[[Call], Call]) -> Spec:
    """``tree`` with every call replaced by ``edit(call)`` (positions kept for :func:`render_edit`).

    >>> render(map_calls(parse("l1 + mse"), lambda call: Call(call.name.upper())))
    'L1 + MSE'
    """
    terms = tuple(
        Term(edit(term.call), term.weight, term.trailing_weight, term.schedules, span=term.span)
        for term in tree.terms
    )
    return Spec(terms, span=tree.span)


def select_terms(tree: Spec, keep: Callable[[Term], bool]) -> Spec | None:
    """``tree`` with only the terms ``keep`` accepts (``None`` when it accepts none)."""
    kept = tuple(term for term in tree.terms if keep(term))
    if not kept:
        return None
    return Spec(kept, span=tree.span)
