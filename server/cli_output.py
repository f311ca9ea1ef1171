"""What the command line shows: a run's report as text, and progress bars on stderr while a model
is joined or candidates are sampled and tested."""

from __future__ import annotations

from budgetpass.app.report import Event, Report


def render_report(report: Report) -> str:
    lines = [f"{report.function} in {report.file}: {report.status.upper()}", f"  {report.message}",
             f"  budget: {report.budget.derivation} "
             f"(metric {report.budget.metric}, reference {report.budget.reference})",
             f"  model: {report.model['name']} ({_prompt_used(report.model)} prompt, "
             f"{report.model.get('backend', 'llama.cpp')}), sandbox: "
             f"{report.sandbox}, {report.seconds:.1f} s ({report.generation_seconds:.1f} s sampling, "
             f"{report.testing_seconds:.1f} s testing, {report.overlap_seconds:.1f} s of both)",
             "  budget used: " + _budget_used(report.to_json()["budget_used"], report.batches)]
    if report.tests:
        lines.append(f"  tests ({len(report.tests)}): " + ", ".join(report.tests))
    else:
        lines.append("  tests: none found (looked for test_*.py / *_test.py naming the function)")
    for cand in report.candidates:
        mark = "*" if cand.index == report.selected else " "
        if cand.run is not None:
            state = "PASS" if cand.run.passed else f"FAIL: {cand.run.summary()}"
        elif cand.problem.startswith("not decoded"):
            state = cand.problem  # stopped early, not a fault of the candidate
        elif cand.problem:
            state = f"unusable: {cand.problem}"
        else:
            state = "not tested" if report.tests else "parses"
        repair = "" if cand.repair_of is None else f" (repair of {cand.repair_of + 1})"
        lines.append(f"  {mark} candidate {cand.index + 1}{repair}: mean logprob "
                     f"{cand.mean_logprob:.3f}, {cand.tokens} tokens, {state}")
    if report.selected_body is not None:
        lines.append("  selected body:")
        lines.extend("    | " + line for line in report.selected_body.rstrip("\n").splitlines())
        lines.append("  written to the file." if report.written
                     else "  (not written; pass --write to apply it)")
    return "\n".join(lines)


def _budget_used(used: dict, batches: int) -> str:
    given = f"{used['given_seconds']:g} s" if used["given_seconds"] is not None else "no limit"
    text = (f"{used['samples']} of {used['given_samples']} samples in {batches} "
            f"batch{'es' if batches != 1 else ''}, {used['seconds']:.1f} s of {given}")
    if used["cancelled"]:
        text += f"; {used['cancelled']} not decoded to the end (the sampling stopped early)"
    if used.get("runaway"):
        text += f"; {used['runaway']} cut as runaways (far longer than the others, or looping)"
    return text


class JobProgress:
    """A progress bar on stderr while candidates are sampled and tested."""

    def __init__(self):
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(),
                            TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                            console=Console(stderr=True), transient=True)
        self.bar.start()
        self.task = self.bar.add_task("starting", total=None)

    def __call__(self, event: Event) -> None:
        total = event.total or None
        self.bar.update(self.task, description=f"{event.phase}: {event.text}",
                        completed=event.done, total=total)

    def close(self) -> None:
        self.bar.stop()


def _prompt_used(model: dict) -> str:
    """The style, and the FIM template when that is what was used."""
    style = model.get("prompt", {}).get("style", "")
    return f"{style} {model['template']}" if style == "fim" else style or model["template"]


class ByteProgress:
    """A progress bar on stderr while a model's chunks are joined into one file."""

    def __init__(self, name: str):
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

        self.bar = Progress(TextColumn(f"joining {name}"), BarColumn(), DownloadColumn(),
                            transient=True)
        self.bar.start()
        self.task = self.bar.add_task("join", total=None)

    def __call__(self, done: int, total: int) -> None:
        self.bar.update(self.task, completed=done, total=total)

    def close(self) -> None:
        self.bar.stop()
