"""The context around a whole body, bounded by tokens and chosen by relevance: the file's imports,
enclosing classes, signatures of what the body likely uses, then the code just above."""

from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass
from pathlib import Path

from ..source import FunctionSite, SourceError, locate_function, parse_python, without_stub_bodies
from .base import BodyRequest, ModelPromptInfo

# Imports take at most this share of the budget: beyond it (sympy's polytools imports ~450 tokens
# of names, most of which a given method never uses) they are cut to the names the code above uses
# most, and the room goes to the code around the function.
IMPORTS_SHARE = 3
# How far above the function (in lines) the use of an imported name counts toward keeping it.
NEAR_LINES = 400


@dataclass(frozen=True)
class BodyContext:
    """The code up to where the body starts, within a token budget: ``above`` (the context) then
    ``header`` (the function's own decorators, signature and docstring).

    ``whole``: nothing of the file above was left out or shortened (a prompt may then repeat it).
    ``opening``: the enclosing classes' statements, then ``header``: code a reply can open on
    without the context (None where the buffer does not parse)."""

    above: str
    header: str
    site: FunctionSite
    tokens: int
    notes: tuple[str, ...]
    whole: bool
    opening: str | None

    @property
    def code(self) -> str:
        return self.above + self.header


def body_context(request: BodyRequest, model: ModelPromptInfo, budget: int) -> BodyContext:
    """The file's imports, the enclosing classes, signatures and docstrings of what the body likely
    uses (same file; project modules the file imports), then the code just above, within
    ``budget`` tokens. Other stubs' bodies never appear (a small model imitates them)."""
    try:
        site = locate_function(request.text, request.function)
    except SourceError:
        if request.cursor is None:
            raise
        return _window_context(request, model, budget)
    text = without_stub_bodies(request.text, keep=request.function)
    site = locate_function(text, request.function)
    tree = parse_python(text)
    return _Context(text, tree, site, request, model, budget).build()


def _window_context(request: BodyRequest, model: ModelPromptInfo, budget: int):
    """A buffer that does not parse: the lines above the cursor that fit, up to the cursor line."""
    text = request.text
    line_start = text.rfind("\n", 0, request.cursor) + 1
    lines = text[:line_start].splitlines(keepends=True)
    name = request.function.rsplit(".", 1)[-1]
    def_re = re.compile(rf"^([ \t]*)(async[ \t]+)?def[ \t]+{re.escape(name)}\b")
    def_indent = next((m.group(1) for ln in reversed(lines) if (m := def_re.match(ln))), "")
    typed = text[line_start:request.cursor]
    body_indent = typed if typed.strip() == "" and len(typed) > len(def_indent) else def_indent + "    "
    kept: list[str] = []
    used = 0
    for line in reversed(lines):
        cost = model.tokens(line)
        if used + cost > budget and kept:
            break
        kept.insert(0, line)
        used += cost
    site = FunctionSite.bare(request.function, def_indent, body_indent)
    return BodyContext("".join(kept), "", site, used,
                       ("the buffer does not parse: context is the lines above",),
                       len(kept) == len(lines), None)


def _stmt_start(node) -> int:
    return min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])


def _summary(node, lines: list[str], indent: str = "") -> str:
    """A def's or class's signature and docstring, without its body."""
    start = _stmt_start(node)
    body = node.body
    doc = ast.get_docstring(node, clean=False) is not None
    header_end = body[0].lineno - 1 if body else node.end_lineno
    head = "".join(lines[start - 1:header_end])
    if not head.rstrip().endswith(":"):  # body on the signature's line: keep the line whole
        return "".join(lines[start - 1:node.lineno])
    if doc:
        head += "".join(lines[body[0].lineno - 1:body[0].end_lineno])
        if isinstance(node, ast.ClassDef):
            for item in body[1:]:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    head += _summary(item, lines)
        return head
    inner = lines[body[0].lineno - 1] if body else indent + "    "
    pad = inner[: len(inner) - len(inner.lstrip())]
    if isinstance(node, ast.ClassDef):
        methods = [_summary(item, lines) for item in body
                   if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))]
        return head + ("".join(methods) if methods else f"{pad}...\n")
    return head + f"{pad}...\n"


def _one_line_doc(node: ast.Expr, pad: str) -> str:
    """A docstring statement cut to its first non-empty line (the summary), still valid Python."""
    text = node.value.value if isinstance(node.value, ast.Constant) else ""
    summary = next((ln.strip() for ln in str(text).splitlines() if ln.strip()), "")
    summary = summary.replace("\\", "\\\\").replace('"', '\\"')
    return f'{pad}"""{summary}"""\n'


_WORD = re.compile(r"[A-Za-z_]\w*")


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text))


class _Context:
    """One body's context, assembled from line ranges of the (stub-free) file."""

    def __init__(self, text, tree, site, request, model, budget):
        self.text, self.tree, self.site, self.request = text, tree, site, request
        self.model, self.budget = model, budget
        self.lines = text.splitlines(keepends=True)

    def build(self) -> BodyContext:
        lines, site = self.lines, self.site
        chain = self._chain()
        func = chain[-1][1]
        offsets = [0]
        for line in lines:
            offsets.append(offsets[-1] + len(line))
        header = self.text[offsets[_stmt_start(func) - 1]:site.body_start]
        imports = [n for n in self.tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        first = self.tree.body[0] if self.tree.body else None
        has_doc = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and \
            isinstance(first.value.value, str)
        doc_lines = set(range(1, first.end_lineno + 1)) if has_doc else set()
        import_lines = doc_lines | {i for n in imports for i in range(n.lineno, n.end_lineno + 1)}
        doc_text = "".join(lines[:first.end_lineno]) if has_doc else ""
        statements_text = "".join(lines[i - 1] for i in sorted(import_lines - doc_lines))
        class_heads = [self._class_head(node) for _, node in chain[:-1]]
        class_statements = "".join(self._class_statement(node) for _, node in chain[:-1])
        notes: list[str] = []
        whole = True
        if self.model.tokens(statements_text) > self.budget // IMPORTS_SHARE:
            statements_text = self._relevant_imports(
                imports, import_lines - doc_lines, class_statements + header,
                offsets[_stmt_start(func) - 1], self.budget // IMPORTS_SHARE)
            notes.append("imports cut to the names the code above uses most")
            whole = False

        def import_text() -> str:  # the module's docstring leads, as in the file
            return doc_text + ("\n" if doc_text and statements_text else "") + statements_text

        def kept_tokens() -> int:  # what is always kept: imports, enclosing classes, signature
            return self.model.tokens(import_text()) + self.model.tokens(header) + sum(
                self.model.tokens(h) for h in class_heads)

        used = kept_tokens()
        if used > self.budget and (has_doc or class_heads):
            # What is always kept must fit too (a long class docstring such as sympy's Poly's
            # cost thousands of tokens per prompt): the module's and the enclosing classes'
            # docstrings shrink to their first line; the function's own one stays whole.
            if has_doc:
                doc_text = _one_line_doc(first, "")
            class_heads = [self._class_head(node, short=True) for _, node in chain[:-1]]
            used = kept_tokens()
            notes.append("docstrings of the module and enclosing classes shortened to their "
                         "first line to fit the context budget")
            whole = False
        if used > self.budget:
            notes.append(f"the imports, enclosing classes and signature alone take {used} tokens "
                         f"(budget {self.budget})")
        wanted = _words(header) - {"self", "cls", "def", "return", "None"}
        window_budget = max(0, (self.budget - used) * 3 // 4)
        # The code just above, nearest first, statement by statement, innermost scope first.
        windows: list[str] = []
        cut_off: dict[int, list] = {}  # by depth: a method's signature goes inside its class
        spent = 0
        full = True
        for depth in range(len(chain) - 1, -1, -1):
            scope, node = chain[depth]
            before = [s for s in scope if s.end_lineno < _stmt_start(node)]
            if depth and before and ast.get_docstring(chain[depth - 1][1], clean=False) is not None:
                before = before[1:]  # the class's docstring is in its header already
            start_line = _stmt_start(node)
            kept = start_line
            while full and before:
                stmt = before.pop()
                piece = "".join(lines[i - 1] for i in range(_stmt_start(stmt), kept)
                                if i not in import_lines)
                cost = self.model.tokens(piece)
                if spent + cost > window_budget:
                    full = False
                    cut_off.setdefault(depth, []).append(stmt)
                    break
                spent += cost
                kept = _stmt_start(stmt)
            cut_off.setdefault(depth, []).extend(before)
            if full:  # the whole scope fits: its leading blank lines and comments too
                cls = chain[depth - 1][1] if depth else None
                kept = 1 if cls is None else 1 + (
                    cls.body[0].end_lineno if ast.get_docstring(cls, clean=False) is not None
                    else cls.body[0].lineno - 1)
            windows.insert(0, "".join(lines[i - 1] for i in range(kept, start_line)
                                      if i not in import_lines))
        used += spent
        signatures: dict[int, str] = {}
        for depth in sorted(cut_off, reverse=True):  # the innermost scope's first
            signatures[depth] = self._signatures(cut_off[depth], wanted, self.budget - used,
                                                 others=depth == 0)
            used += self.model.tokens(signatures[depth])
        imports_block = import_text()
        parts = [imports_block.rstrip("\n") + "\n\n\n" if imports_block else ""]
        for depth, window in enumerate(windows):
            parts += [signatures.get(depth, ""), window]
            if depth < len(class_heads):
                parts.append(class_heads[depth])
        above = re.sub(r"\n{4,}", "\n\n\n", "".join(parts))
        opening = class_statements + header
        return BodyContext(above, header, site, used, tuple(notes), whole and full, opening)

    def _relevant_imports(self, imports, import_lines: set[int], header: str, end: int,
                          budget: int) -> str:
        """The import statements cut to the names that the function's own lines and its classes'
        statements (``header``), then the code above (nearest first) use most, within ``budget``
        tokens; file order kept. Only the code above counts: the body below is what is being
        written. ``import_lines``: the statements' own lines, which do not count as uses."""
        lines_above = [ln for i, ln in enumerate(self.text[:end].splitlines(), 1)
                       if i not in import_lines]
        score: dict[str, float] = {}
        for distance, line in enumerate(reversed(lines_above[-NEAR_LINES:])):
            for word in _WORD.findall(line):
                score[word] = score.get(word, 0.0) + 1.0 / (1 + distance / 50)
        for word in _words(header):
            score[word] = score.get(word, 0.0) + 10.0

        def uses(alias) -> float:  # ``import a.b`` binds ``a``; ``*`` binds what it binds: first
            return 1e9 if alias.name == "*" else score.get(
                (alias.asname or alias.name).split(".")[0], 0.0)

        bound = sorted(((node, alias) for node in imports for alias in node.names
                        if uses(alias) > 0), key=lambda pair: -uses(pair[1]))
        chosen: set[int] = set()
        text = ""
        for node, alias in bound:
            trial = self._render_imports(imports, chosen | {id(alias)})
            if self.model.tokens(trial) > budget:
                continue
            chosen.add(id(alias))
            text = trial
        return text

    @staticmethod
    def _render_imports(imports, chosen: set[int]) -> str:
        out = []
        for node in imports:
            names = [a for a in node.names if id(a) in chosen]
            if not names:
                continue
            kind = ast.Import if isinstance(node, ast.Import) else ast.ImportFrom
            fields = {"names": names} if kind is ast.Import else {
                "module": node.module, "names": names, "level": node.level}
            out.append(ast.unparse(kind(**fields)) + "\n")
        return "".join(out)

    def _chain(self):
        """[(statements of the scope, the node in it)] from the module down to the function."""
        chain, scope = [], self.tree.body
        target = self.site.def_line + 1  # the locator's lines are 0-based, ast's 1-based
        while True:
            for node in scope:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and \
                        node.lineno <= target <= node.end_lineno:
                    chain.append((scope, node))
                    if node.lineno == target and not isinstance(node, ast.ClassDef):
                        return chain
                    scope = node.body
                    break
            else:
                raise SourceError(f"{self.site.qualname}: not found at line {target}")

    def _class_statement(self, node: ast.ClassDef) -> str:
        """The class's decorators and statement, without its docstring."""
        return "".join(self.lines[_stmt_start(node) - 1:node.body[0].lineno - 1])

    def _class_head(self, node: ast.ClassDef, short: bool = False) -> str:
        """The class statement and its docstring (``short``: the docstring's first line only)."""
        first = node.body[0]
        has_doc = ast.get_docstring(node, clean=False) is not None
        if short and has_doc:
            line = self.lines[first.lineno - 1]
            pad = line[:len(line) - len(line.lstrip())]
            return "".join(self.lines[_stmt_start(node) - 1:first.lineno - 1]) + \
                _one_line_doc(first, pad)
        end = first.end_lineno if has_doc else first.lineno - 1
        return "".join(self.lines[_stmt_start(node) - 1:end])

    def _signatures(self, cut_off, wanted: set[str], budget: int, others: bool) -> str:
        """Signatures and docstrings of the names the body likely uses that the window left out:
        this scope's definitions, then (``others``: at module level) other stubs' and those the
        file imports from project modules."""
        found: list[tuple[str, str]] = []
        for node in cut_off:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and \
                    node.name in wanted:
                found.append((node.name, _summary(node, self.lines)))
        if others:
            found += self._stub_signatures(wanted)
            found += self._project_signatures(wanted)
        out, spent = [], 0
        for _, text in found:
            cost = self.model.tokens(text)
            if spent + cost > budget:
                continue
            out.append(text if text.endswith("\n") else text + "\n")
            spent += cost
        return "".join(t + "\n\n" for t in out)

    def _stub_signatures(self, wanted: set[str]) -> list[tuple[str, str]]:
        """Other stubs of the file are left out of the code; the ones the signature or docstring
        mention are shown by signature and docstring only."""
        if self.text == self.request.text:
            return []
        lines = self.request.text.splitlines(keepends=True)
        kept = {n.name for n in self.tree.body if hasattr(n, "name")}
        return [(node.name, _summary(node, lines)) for node in parse_python(self.request.text).body
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                and node.name in wanted and node.name not in kept]

    def _project_signatures(self, wanted: set[str]) -> list[tuple[str, str]]:
        """``from module import name`` of a project module, for the names the signature or
        docstring mentions: their summaries."""
        path, project = self.request.path, self.request.project
        if path is None or project is None:
            return []
        found = []
        for node in self.tree.body:
            if not isinstance(node, ast.ImportFrom):
                continue
            names = {a.name for a in node.names} & wanted
            if not names:
                continue  # names the signature and docstring never mention: not worth a parse
            module = _module_file(Path(path), Path(project), node)
            if module is None:
                continue
            rel = module.relative_to(project).as_posix()
            for name, summary in _module_summaries(module).items():
                if name in names:
                    found.append((name, f"# {rel}\n{summary}"))
        return found


@functools.lru_cache(maxsize=64)
def _summaries_of(path: Path, mtime: float, size: int) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return {}
    lines = text.splitlines(keepends=True)
    return {node.name: _summary(node, lines) for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def _module_summaries(path: Path) -> dict[str, str]:
    """Top-level definitions' summaries of a project module, parsed once per version of it."""
    try:
        stat = path.stat()
    except OSError:
        return {}
    return _summaries_of(path, stat.st_mtime, stat.st_size)


def _module_file(path: Path, project: Path, node: ast.ImportFrom) -> Path | None:
    """The project file an ``from X import ...`` names (relative imports included), if any."""
    parts = (node.module or "").split(".") if node.module else []
    if node.level:
        base = path.parent
        for _ in range(node.level - 1):
            base = base.parent
        roots = [base]
    else:
        roots = [project, project / "src"]
    for root in roots:
        candidate = root.joinpath(*parts) if parts else root
        for option in (candidate.with_suffix(".py") if parts else None,
                       candidate / "__init__.py"):
            if option is not None and option.is_file():
                try:
                    option.resolve().relative_to(project.resolve())
                except ValueError:
                    continue
                return option
    return None
