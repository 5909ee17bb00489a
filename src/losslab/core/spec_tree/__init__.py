"""The loss spec language as a syntax tree: parse a spec, render it back, edit it.

This package is the language's syntax only: it knows the grammar, not the losses. Whether a
name is a registered loss, which parameters it takes and what they mean is decided by
:mod:`losslab.losses.spec`, which builds modules from the tree. One job per module:

- :mod:`~losslab.core.spec_tree.nodes`: the tree (frozen dataclasses ``Spec``, ``Term``,
  ``Call``, ``Argument``, ``Schedule`` and the values ``Number``, ``Name``, ``String``,
  ``Constant``, ``ListValue``, each with its source ``Span``), tree walks, and the canonical
  text of every node (:func:`render`, its rules in that module's docstring);
- :mod:`~losslab.core.spec_tree.parser`: the grammar, the tokenizer and :func:`parse` (text to
  tree), and :class:`SpecError` with a caret under the offending character;
- :mod:`~losslab.core.spec_tree.edit`: :func:`render_edit` (an edited tree in the user's own
  spelling) and the term edits :func:`map_calls`, :func:`select_terms`, :func:`term_texts`.

Everything is importable from here: ``from losslab.core.spec_tree import parse, render``.

Example:
    >>> render(parse("0.5 * l1( luma ) + mse*1e-2 @ start(1e3)"))
    '0.5*l1(luma) + mse*0.01@start(1000)'
"""

from losslab.core.spec_tree.edit import map_calls, render_edit, select_terms, term_texts
from losslab.core.spec_tree.nodes import (
    CONSTANTS,
    MAX_NESTING,
    NAME_PATTERN,
    NUMBER_PATTERN,
    SCHEDULE_ARITY,
    Argument,
    Call,
    ChildText,
    Constant,
    ListValue,
    Name,
    Node,
    Number,
    Schedule,
    Span,
    Spec,
    String,
    Term,
    Value,
    children,
    render,
    walk,
)
from losslab.core.spec_tree.parser import SpecError, parse, spec_error
from losslab.core.spec_tree.parser import _tokenize as _tokenize  # the token tests read it

# doctest.testmod(spec_tree) looks at this package only: point it at the examples in the
# functions' own docstrings (they live in the submodules).
__test__ = {"parse": parse, "render": render, "render_edit": render_edit, "map_calls": map_calls}

__all__ = [
    "CONSTANTS",
    "MAX_NESTING",
    "NAME_PATTERN",
    "NUMBER_PATTERN",
    "SCHEDULE_ARITY",
    "Argument",
    "Call",
    "ChildText",
    "Constant",
    "ListValue",
    "Name",
    "Node",
    "Number",
    "Schedule",
    "Span",
    "Spec",
    "SpecError",
    "String",
    "Term",
    "Value",
    "children",
    "map_calls",
    "parse",
    "render",
    "render_edit",
    "select_terms",
    "spec_error",
    "term_texts",
    "walk",
]
