"""Message extraction for the job options' form wording (`make translations`, babel.cfg).

`tintype.jobs.options.FIELDS` declares each option's English label and choice labels once,
for the CLI, the API's schema and the web form alike. The form says them in the page's
language (templates/_options.html calls `_(spec.label)`), so the catalogue needs them, but
the jobs package should not depend on Flask-Babel just to mark them. This extractor reads
the `Field(...)` declarations' literal strings instead, so they stay plain English there.
"""

from __future__ import annotations

import ast
from typing import IO, Any, Collection, Iterator

LABEL_ARG = 3  # Field(name, kind, help, label, ...)


def field_labels(fileobj: IO[bytes], keywords: Collection[str], comment_tags: Collection[str],
                 options: dict[str, Any]) -> Iterator[tuple[int, None, str, list[str]]]:
    """Babel extraction method: each `Field(...)`'s label and the values of its `choice_labels`."""
    tree = ast.parse(fileobj.read())
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Field"):
            continue
        label = node.args[LABEL_ARG] if len(node.args) > LABEL_ARG else None
        named = {k.arg: k.value for k in node.keywords}
        label = named.get("label", label)
        if isinstance(label, ast.Constant) and isinstance(label.value, str):
            yield label.lineno, None, label.value, ["a job option's label on the upload form"]
        choices = named.get("choice_labels")
        if isinstance(choices, ast.Dict):
            for value in choices.values:
                if isinstance(value, ast.Constant) and isinstance(value.value, str) and value.value:
                    yield value.lineno, None, value.value, ["a choice of a job option on the upload form"]
