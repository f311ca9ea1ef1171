"""Inputs from type hints: small deterministic values for a function's parameters, when its
docstring shows too few examples to probe candidates with. Only ``ast`` reads the annotations: no
user code is evaluated.
"""

from __future__ import annotations

import ast
import itertools

from .examples import ProbeInput, docstring_examples, function_node, literal_node_value

_VALUES = {
    "int": [0, 1, 2, 3, 5, 10, -1, 7, 12, 100],
    "float": [0.0, 1.5, 2.0, -1.0, 3.25, 10.0, 0.5],
    "str": ["", "a", "abc", "hello world", "Ada Lovelace", "aBcD", "12345", "a b  c"],
    "bool": [True, False],
    "None": [None],
}
_LISTS = {  # whole collections, so lists hold varied, realistic shapes
    "int": [[], [1], [1, 2, 3], [3, 1, 2], [5, 5, 0, -2], [2, 4, 6, 8, 10], [7, 3, 9, 1, 3, 8]],
    "float": [[], [1.0], [1.0, 2.5, 3.0], [3.5, -1.0, 2.0], [0.5, 0.5, 4.0, 2.0]],
    "str": [[], ["a"], ["abc", "de"], ["hello", "world", "hi"], ["", "x", "xyz", "b"]],
}


def typed_inputs(source: str, function: str, count: int = 8,
                 examples: list[ProbeInput] | None = None) -> list[ProbeInput]:
    """Up to ``count`` calls with small deterministic values for the parameters, from their type
    hints or else from the type of the argument the docstring's examples pass; none when some
    positional parameter has neither."""
    node = function_node(source, function)
    if node is None:
        return []
    params = [*node.args.posonlyargs, *node.args.args]
    if params and params[0].arg in ("self", "cls"):
        return []  # a method needs an instance: not generated
    if examples is None:
        examples = docstring_examples(source, function)
    seen = _example_arguments(examples, node.name)
    pools = []
    for k, param in enumerate(params):
        pool = _pool(param.annotation) or _pool_like(seen.get(k, seen.get(param.arg)))
        if not pool:
            if param.arg in seen or k >= len(params) - len(node.args.defaults):
                break  # a parameter with a default may stay unset
            return []
        pools.append(pool)
    if not pools:
        return []
    calls: list[str] = []
    for i in itertools.count():  # the i-th value of each pool, pools offset so arguments vary
        if len(calls) >= count or i >= 4 * count:
            break
        args = [repr(pool[(i + 2 * k) % len(pool)]) for k, pool in enumerate(pools)]
        call = f"{node.name}({', '.join(args)})\n"
        if call not in calls:
            calls.append(call)
    return [ProbeInput(c, None, "type_hints") for c in calls]


def _pool(annotation: ast.expr | None) -> list:
    """Values for one annotation (an AST: no user code is evaluated)."""
    if annotation is None:
        return []
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        try:
            annotation = ast.parse(annotation.value, mode="eval").body
        except SyntaxError:
            return []
    name = _type_name(annotation)
    if name in _VALUES:
        return _VALUES[name]
    if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
        return _pool(annotation.left) or _pool(annotation.right)
    if isinstance(annotation, ast.Subscript):
        outer = _type_name(annotation.value)
        inner = annotation.slice
        args = inner.elts if isinstance(inner, ast.Tuple) else [inner]
        if outer in ("Optional", "Union"):
            return _pool(args[0])
        if outer in ("list", "List", "Sequence", "Iterable", "set", "Set", "tuple", "Tuple"):
            item = _type_name(args[0])
            base = _LISTS.get(item)
            if base is None:
                values = _pool(args[0])
                base = [[], values[:1], values[:3], values[1:4]] if values else []
            if outer in ("tuple", "Tuple"):
                if len(args) > 1 and not (isinstance(args[1], ast.Constant)
                                          and args[1].value is Ellipsis):
                    parts = [_pool(a) for a in args]
                    if not all(parts):
                        return []
                    return [tuple(p[(i + k) % len(p)] for k, p in enumerate(parts))
                            for i in range(5)]
                return [tuple(v) for v in base]
            if outer in ("set", "Set"):
                return [set(v) for v in base]
            return base
        if outer in ("dict", "Dict", "Mapping") and len(args) == 2:
            keys, values = _pool(args[0]), _pool(args[1])
            if not keys or not values:
                return []
            return [{}, {keys[1]: values[1]},
                    {keys[k % len(keys)]: values[k % len(values)] for k in range(1, 4)}]
    return []


def _example_arguments(examples: list[ProbeInput], name: str) -> dict:
    """Position / keyword -> the first literal value the examples pass there."""
    seen: dict = {}
    for example in examples:
        try:
            call = ast.parse(example.source.strip(), mode="eval").body
        except (SyntaxError, ValueError):
            continue
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
                and call.func.id == name):
            continue
        for key, arg in [*enumerate(call.args), *((k.arg, k.value) for k in call.keywords)]:
            try:
                seen.setdefault(key, literal_node_value(arg))
            except ValueError:
                continue
    return seen


def _pool_like(value) -> list:
    """Values of the same shape as an example's argument."""
    if value is None:
        return []
    kind = type(value).__name__
    if kind in _VALUES and kind != "None":
        return _VALUES[kind]
    if isinstance(value, (list, tuple)):
        items = {type(v).__name__ for v in value}
        base = _LISTS.get(items.pop()) if len(items) == 1 else None
        if base is None:
            return []
        return [type(value)(v) for v in base]
    return []


def _type_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Constant) and node.value is None:
        return "None"
    return None
