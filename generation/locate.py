"""Where functions are in Python text: the one locator, by qualified name or by cursor offset.

Every caller (the generate job's splice, inline completion's cursor shape, the editor's edit range,
code lenses, doctest ids, traced discovery, candidate de-duplication) asks here and gets the same
answer. The structure comes from tree-sitter, which parses a buffer mid-keystroke into a tree with
error nodes instead of refusing it; ``locate_function`` (strict) also requires the text to be valid
Python, because a candidate will be spliced into it and run.

Lines are 0-based (as editors count them), offsets are indices into the ``str``.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass


class SourceError(ValueError):
    """The file or function cannot be used; the message names the problem and where it is."""


STUB_STATEMENTS = {"pass", "...", "raise NotImplementedError", "raise NotImplementedError()"}


def is_stub(body: str) -> bool:
    """A body that only defers the work (what the function had before generation)."""
    lines = [ln.strip() for ln in body.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    return all(ln in STUB_STATEMENTS for ln in lines)


@dataclass(frozen=True)
class FunctionSite:
    """One function definition in a text.

    ``body_start``..``body_end`` covers the statements after the signature and docstring: what a
    candidate replaces (everything before is a prompt's prefix, everything after its suffix).
    ``edit_end`` is where an editor's replacement of that body ends: past the indentation left on
    the blank lines of an emptied body.
    """

    qualname: str
    is_async: bool
    start_line: int  # the first decorator's line, else the def line
    def_line: int  # the line of ``def`` (or ``async def``)
    def_column: int  # in characters of the line
    name_line: int
    signature: str  # ``def name(params) -> returns:`` as written
    signature_end_line: int  # the line of the signature's ':'
    header_end_line: int  # the docstring's last line, else signature_end_line
    end_line: int  # last line of the definition
    def_indent: str
    body_indent: str
    docstring: str | None  # its value, uncleaned (as ``ast.get_docstring(clean=False)``)
    docstring_range: tuple[int, int] | None  # offsets of the string literal
    body_start: int
    body_end: int
    edit_end: int
    body_is_empty: bool  # only a docstring and/or stub statements
    body_shares_signature_line: bool  # ``def f(): return 1``

    @classmethod
    def bare(cls, qualname: str, def_indent: str, body_indent: str) -> FunctionSite:
        """A site known only by its indentation (a buffer that does not parse): enough for the
        normaliser to re-indent and cut a generated body."""
        return cls(qualname, False, 0, 0, len(def_indent), 0, "", 0, 0, 0, def_indent, body_indent,
                   None, None, 0, 0, 0, True, False)

    @property
    def name(self) -> str:
        return self.qualname.rsplit(".", 1)[-1]

    @property
    def edit_range(self) -> tuple[int, int]:
        return self.body_start, self.edit_end

    @property
    def code_first_lines(self) -> set[int]:
        """1-based lines a code object of this function can report as ``co_firstlineno``."""
        return {self.def_line + 1, self.start_line + 1}


@functools.lru_cache(maxsize=1)
def _parser():
    import tree_sitter_python
    from tree_sitter import Language, Parser

    return Parser(Language(tree_sitter_python.language()))


class _Text:
    """Converts tree-sitter's (row, byte column) points to ``str`` offsets."""

    def __init__(self, text: str):
        self.text = text
        self.source = text.encode("utf-8")
        self.ascii = len(self.source) == len(text)
        self.line_starts = [0]
        for line in text.split("\n"):
            self.line_starts.append(self.line_starts[-1] + len(line) + 1)
        self.line_starts[-1] = len(text)  # the last line has no newline after it
        self.byte_starts: list[int] | None = None  # only for non-ASCII text, made when needed

    def node_text(self, node) -> str:
        return self.source[node.start_byte:node.end_byte].decode("utf-8", "replace")

    def line(self, row: int) -> str:
        return self.text[self.line_starts[row]:self.line_starts[row + 1]].rstrip("\n")

    def line_start(self, row: int) -> int:
        return self.line_starts[min(row, len(self.line_starts) - 1)]

    def offset(self, point) -> int:
        row, column = point
        if self.ascii:
            return self.line_starts[row] + column
        if self.byte_starts is None:
            self.byte_starts = [0]
            for line in self.source.split(b"\n"):
                self.byte_starts.append(self.byte_starts[-1] + len(line) + 1)
        start = self.byte_starts[row]
        return self.line_starts[row] + len(self.source[start:start + column].decode("utf-8",
                                                                                    "replace"))


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _qualname(node, text: _Text) -> str:
    parts = []
    current = node
    while current is not None:
        if current.type in ("function_definition", "class_definition"):
            if current is not node and current.type == "function_definition":
                parts.append("<locals>")
            name = current.child_by_field_name("name")
            parts.append(text.node_text(name) if name is not None else "?")
        current = current.parent
    return ".".join(reversed(parts))


def _docstring(stmt, text: _Text) -> str | None:
    if stmt.type != "expression_statement" or stmt.named_child_count != 1 or \
            stmt.named_children[0].type not in ("string", "concatenated_string"):
        return None
    try:
        value = ast.literal_eval(text.node_text(stmt.named_children[0]))
    except (ValueError, SyntaxError):
        return None  # an f-string, or broken mid-keystroke
    return value if isinstance(value, str) else None


def _last_code_row(node) -> int:
    """The last line holding code (not a comment) of ``node``."""
    while node.children:
        code = [c for c in node.children if c.type != "comment"]
        if not code:
            break
        node = code[-1]
    return node.end_point[0]


def _site(node, text: _Text) -> FunctionSite:
    body = node.child_by_field_name("body")
    statements = [c for c in (body.named_children if body is not None else []) if c.type != "comment"]
    colon = [c for c in node.children if c.type == ":"]
    signature_end = colon[-1] if colon else (node.child_by_field_name("parameters") or node)
    signature_end_line = signature_end.end_point[0]
    def_line = node.start_point[0]
    def_text = text.line(def_line)
    def_indent = _indent(def_text)
    docstring = _docstring(statements[0], text) if statements else None
    docstring_range = None
    header_end_line = signature_end_line
    if docstring is not None:
        doc_node = statements.pop(0)
        docstring_range = (text.offset(doc_node.start_point), text.offset(doc_node.end_point))
        header_end_line = doc_node.end_point[0]
    shares = bool(statements) and statements[0].start_point[0] <= header_end_line
    if statements and not shares:
        first_row = statements[0].start_point[0]
        if docstring is None:
            header_rows = first_row  # comments between the signature and the code stay above it
        else:
            header_rows = header_end_line + 1
        body_start = text.line_start(header_rows)
        body_end = text.line_start(max(_last_code_row(s) for s in statements) + 1)
        body_indent = _indent(text.line(first_row))
    else:
        body_start = body_end = text.line_start(header_end_line + 1)
        body_indent = (_indent(text.line(doc_node.start_point[0])) if docstring is not None
                       else def_indent + "    ")
        if statements:  # on the signature's line: nothing to cut on lines of its own
            body_start = body_end = text.line_start(_last_code_row(statements[-1]) + 1)
    edit_end = body_end
    if body_start == body_end:  # an emptied body: take the indentation left on its lines
        source = text.text
        while True:
            line_end = source.find("\n", edit_end)
            line = source[edit_end:line_end]
            if line_end < 0 or not line or line.strip():
                break
            edit_end = line_end + 1
    body_text = "\n".join(text.node_text(s) for s in statements)
    parent = node.parent
    start_line = parent.start_point[0] if parent is not None and \
        parent.type == "decorated_definition" else def_line
    name = node.child_by_field_name("name")
    sig_start = text.offset(node.start_point)
    return FunctionSite(
        qualname=_qualname(node, text),
        is_async=any(c.type == "async" for c in node.children),
        start_line=start_line,
        def_line=def_line,
        def_column=len(text.text[text.line_starts[def_line]:sig_start]),
        name_line=(name or node).start_point[0],
        signature=text.text[sig_start:text.offset(signature_end.end_point)],
        signature_end_line=signature_end_line,
        header_end_line=header_end_line,
        end_line=node.end_point[0],
        def_indent=def_indent,
        body_indent=body_indent,
        docstring=docstring,
        docstring_range=docstring_range,
        body_start=body_start,
        body_end=body_end,
        edit_end=edit_end,
        body_is_empty=not body_text.strip() or is_stub(body_text),
        body_shares_signature_line=shares,
    )


def functions(text: str) -> list[FunctionSite]:
    """Every function definition in ``text``, in source order (outer before inner), broken code
    included."""
    wrapped = _Text(text)
    tree = _parser().parse(wrapped.source)
    found: list[FunctionSite] = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == "function_definition":
            found.append(_site(node, wrapped))
        stack.extend(reversed([c for c in node.children
                               if c.child_count and c.type not in _NO_DEFINITIONS]))
    return found


# Nodes that cannot hold a ``def`` (a lambda is not one): a 50k-line file is walked in a fraction.
_NO_DEFINITIONS = frozenset({
    "expression_statement", "return_statement", "import_statement", "import_from_statement",
    "raise_statement", "assert_statement", "delete_statement", "global_statement",
    "nonlocal_statement", "parameters", "argument_list", "call", "string", "comment",
})


def function_at(text: str, offset: int) -> FunctionSite | None:
    """The innermost function whose definition holds the cursor (blank lines after it count)."""
    lines = text.splitlines()
    line = text.count("\n", 0, offset)
    cursor_line = lines[line] if line < len(lines) else ""
    indent = len(cursor_line) - len(cursor_line.lstrip()) if cursor_line.strip() \
        else len(cursor_line)
    best = None
    for fn in functions(text):
        if fn.def_line > line:
            continue
        inside = fn.def_line <= line <= fn.end_line
        after = line > fn.end_line and all(not lines[i].strip() for i in range(fn.end_line + 1, line)
                                           if i < len(lines))
        if (inside or (after and indent > fn.def_column)) and (
                best is None or fn.def_line >= best.def_line):
            best = fn
    return best


def parse_python(text: str, filename: str = "<file>") -> ast.Module:
    try:
        return ast.parse(text, filename=filename)
    except SyntaxError as exc:
        where = f"{filename}:{exc.lineno}:{exc.offset or 0}"
        raise SourceError(f"{where}: syntax error: {exc.msg}; fix the file before generating") from exc


def find_function(text: str, qualname: str) -> FunctionSite | None:
    """``qualname``'s definition, or None when it is missing or defined more than once; broken
    code included."""
    matches = [fn for fn in functions(text) if fn.qualname == qualname]
    return matches[0] if len(matches) == 1 else None


def locate_function(text: str, qualname: str, filename: str = "<file>") -> FunctionSite:
    """``qualname``'s definition in valid Python whose body can be cut and spliced; else
    SourceError saying why."""
    parse_python(text, filename)
    found = functions(text)
    matches = [fn for fn in found if fn.qualname == qualname]
    if not matches:
        names = [fn.qualname for fn in found if "<locals>" not in fn.qualname]
        hint = f"; functions in the file: {', '.join(names)}" if names else "; the file has no functions"
        raise SourceError(f"{filename}: no function named {qualname!r}{hint}")
    if len(matches) > 1:
        lines = ", ".join(str(fn.def_line + 1) for fn in matches)
        raise SourceError(f"{filename}: {qualname!r} is defined more than once (lines {lines})")
    site = matches[0]
    if site.body_shares_signature_line:
        raise SourceError(
            f"{filename}:{site.def_line + 1}: the body of {qualname!r} shares a line with its "
            "signature; put the body on its own lines"
        )
    if site.body_start == len(text) and not text.endswith("\n"):
        raise SourceError(f"{filename}: add a newline after {qualname!r}'s signature")
    return site


def body_ast(text: str, site: FunctionSite) -> list[ast.stmt]:
    """The statements of the body ``site`` cut out of valid Python (docstring left out)."""
    if site.body_start == site.body_end:
        return []
    # The body alone, under a header at column 0: its own indentation is then valid as it is.
    return ast.parse("if 1:\n" + text[site.body_start:site.body_end]).body[0].body
