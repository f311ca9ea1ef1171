"""Warm test worker: runs INSIDE the sandbox, imports pytest once, forks two children per candidate.

Standalone on purpose (stdlib + pytest only): it runs under the project's interpreter, which need
not have budgetpass installed, so the host copies this one package into a folder of its own and
binds that read-only into the sandbox (``python PACKAGE_FOLDER`` runs ``__main__.py``). Modules by
concern: ``main`` (warm-up, start), ``scheduler`` (slots, forks, pipes, deadlines), ``verdict``,
``judge`` and ``judge_link`` (the trusted side), ``executor`` (the candidate's side), ``codec`` and
``frames`` (what crosses between them), ``source`` (which functions cross), ``child`` (limits,
privileges, uids of a forked child), ``limits`` (the caps).

Why two processes per candidate. The candidate is hostile and the verdict must be computed where
it cannot reach it. So each candidate gets

- a **judge**: a fork of this warm worker that runs pytest on the project's own (trusted) tests
  against the project's own (trusted) module, in which every function whose body the candidate
  changed is replaced by a forwarder (same signature, same decorators, body swapped);
- an **executor**: a separate fork, under its own uid and limits, that imports the candidate's
  module and answers the forwarders' calls.

The judge sends a call's arguments with pickle (trusted to untrusted: any picklable object goes,
test callables and generators go as handles the executor calls back); the executor answers with a
safe, tagged JSON (plain data, project-class instances by state, a few stdlib value types,
exceptions by name, callables and iterators it returns as handles), read with a byte cap, and
bound to its request by a fresh nonce; anything it cannot parse fails that call. The candidate never holds the judge's memory, modules, fds or
result pipe: forging a report, patching pytest, planting conftest files, skipping or exiting from
inside the function all land in the executor, where they at most fail the calls. Only a run whose
judge saw at least one test pass, and none fail or error, is passed. Kept: the warm fork speed (the
executor is one more fork of the same warm process; a call costs a pipe round trip). Given up:
object identity across the call (``f(x) is x``), mutations below the arguments' top level, and
arguments' state the safe JSON cannot carry back (see SECURITY.md).

Protocol. The host writes JSON lines on stdin:
  {"op": "run", "id": N, "file": REL, "text": SOURCE, "original": TRUSTED SOURCE or null,
   "tests": [NODE_ID...], "limits": {...}, "files": {REL: TEXT}, "pytest_args": [ARG...]}
  {"op": "cancel", "id": N}
and EOF to stop. The worker answers JSON lines on the fd named by --result-fd:
  {"op": "ready", "seconds": S}
  {"op": "result", "id": N, "passed": ..., "outcomes": [[NODE_ID, OUTCOME, MESSAGE]...], ...}
"""
