"""Checks of a step function's body, made when the step is declared.

A step's result is the files it writes in its output directory, and its source runs on its
own, in a fresh namespace (as a KFP lightweight component's does: see
:func:`kfp_pachyderm.steps.execute.define`). So a function that returns a value (the value
would be dropped), is a generator or a coroutine function (its body would never run), or uses a
name of its module that it does not import or define inside its body (a ``NameError`` in
every datum at run time) is refused here, in one line that names what to change.
"""

from __future__ import annotations

import ast
import builtins
import dis
from collections.abc import Iterator
from types import CodeType

from kfp_pachyderm.steps.execute import compile_step
from kfp_pachyderm.steps.signature import StepDefinitionError

_BUILTINS = frozenset(vars(builtins))
# Scopes of their own: a return or yield inside one is not the step function's.
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
_SHOWN = 60  # characters of a statement quoted in a message


def check_body(name: str, source: str, first_line: int, output: str) -> None:
    """Refuse the step function ``name`` whose text is ``source`` (its ``def`` on line
    ``first_line`` of its file) when it returns a value, is a generator or a coroutine
    function, or uses a module-level name it does not import or define inside its body."""
    try:
        module = compile_step(source, name)
        tree = ast.parse(source)
    except SyntaxError as err:
        tree, detail = None, f"{err.msg}, line {first_line + (err.lineno or 1) - 1}"
    else:
        detail = f"line {first_line}"
    function = tree.body[0] if tree is not None and len(tree.body) == 1 else None
    if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef) or function.name != name:
        raise StepDefinitionError(
            f"the source of {name} does not read as the function alone ({detail}): the step "
            "ships the function's text (as a KFP lightweight component), so indent every line "
            "of it, strings included, at least as far as its def"
        )
    _check_result(name, function, first_line, output)
    _check_names(name, module)


def _own_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """The nodes of ``node``'s body, not those of the functions, lambdas and classes in it."""
    for child in ast.iter_child_nodes(node):
        yield child
        if not isinstance(child, _SCOPES):
            yield from _own_nodes(child)


def _quoted(node: ast.AST) -> str:
    text = ast.unparse(ast.Expr(node) if isinstance(node, ast.expr) else node)  # no (yield)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def _check_result(
    name: str, function: ast.FunctionDef | ast.AsyncFunctionDef, first_line: int, output: str
) -> None:
    result = f"a step's result is the files it writes in {output}"
    if isinstance(function, ast.AsyncFunctionDef):
        raise StepDefinitionError(
            f"{name} is defined with async def, so calling it would run nothing: {result}; "
            "define it with def"
        )
    returns = function.returns
    if returns is not None and not (
        isinstance(returns, ast.Constant) and returns.value in (None, "None")
    ):
        raise StepDefinitionError(
            f"{name} is annotated to return {_quoted(returns)} (line "
            f"{first_line + returns.lineno - 1}): {result}; write them there, return nothing "
            "and drop the annotation"
        )
    found = [
        node
        for node in _own_nodes(function)
        if isinstance(node, ast.Yield | ast.YieldFrom)
        or (
            isinstance(node, ast.Return)
            and node.value is not None
            and not (isinstance(node.value, ast.Constant) and node.value.value is None)
        )
    ]
    if not found:
        return
    first = min(found, key=lambda node: (node.lineno, node.col_offset))
    where = f"line {first_line + first.lineno - 1}: {_quoted(first)}"
    if isinstance(first, ast.Return):
        raise StepDefinitionError(
            f"{name} returns a value ({where}): {result}; write them there and return nothing"
        )
    raise StepDefinitionError(
        f"{name} is a generator ({where}), so calling it would run nothing: {result}; write "
        "them there instead of yielding"
    )


def _codes(code: CodeType) -> Iterator[CodeType]:
    """``code`` and every code object nested in it (functions, lambdas, classes,
    comprehensions), outermost first."""
    yield code
    for constant in code.co_consts:
        if isinstance(constant, CodeType):
            yield from _codes(constant)


def _check_names(name: str, module: CodeType) -> None:
    """Refuse names that the compiled source loads from its globals (or, in a class body,
    by name) which nothing in the source defines and which are not builtins."""
    defined = set(_BUILTINS)
    loaded: list[list[str]] = []
    for code in _codes(module):
        own: set[str] = set()
        loads: dict[str, None] = {}
        for instruction in dis.get_instructions(code):
            op, value = instruction.opname, instruction.argval
            if op in ("STORE_GLOBAL", "DELETE_GLOBAL"):
                defined.add(value)
            elif op in ("STORE_NAME", "DELETE_NAME"):
                own.add(value)
            elif op in ("LOAD_GLOBAL", "LOAD_NAME"):
                loads[value] = None
        if code is module:  # what the source itself defines (the function) is a global
            defined |= own
        loaded.append([n for n in loads if n not in own])  # a class body's own names
    signature, *nested = ([n for n in names if n not in defined] for names in loaded)
    body = list(dict.fromkeys(n for names in nested for n in names))
    if body:
        raise StepDefinitionError(
            f"{name} uses {', '.join(body)}, which it does not define or import inside its "
            "body: the step's source runs on its own (as a KFP lightweight component), so "
            "move the import (or the helper) into the function"
        )
    if signature:
        raise StepDefinitionError(
            f"{name}'s signature uses {', '.join(signature)} (in a default or an annotation), "
            "which the step's source cannot see: it runs on its own (as a KFP lightweight "
            "component), so write each default as a literal and each annotation as a builtin "
            'type or a string ("Path")'
        )
