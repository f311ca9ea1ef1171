"""The warm worker's loop: queues runs, gives each a slot (folder, uids, cgroups), forks its
executor and judge, reads their pipes with caps, kills at the deadline, and sends the verdict."""

from __future__ import annotations

import json
import os
import secrets
import selectors
import shutil
import signal
import socket
import time

from .child import send
from .executor import run_executor
from .judge import run_judge
from .limits import FIRST_UID, OUTPUT_LIMIT, OUTPUT_TAIL, RESULT_LINE_LIMIT
from .source import forwarded_defs
from .verdict import verdict


class Running:
    def __init__(self, job, slot, rundir, deadline):
        self.job, self.slot, self.rundir, self.deadline = job, slot, rundir, deadline
        self.pids: list[int] = []
        self.pidfds: dict[int, int] = {}
        self.judge = 0
        self.judge_status: int | None = None
        self.reader: int | None = None  # the judge's result pipe
        self.output: int | None = None  # everyone's stdout/stderr
        self.buffer = b""
        self.out = bytearray()
        self.out_bytes = 0
        self.messages: list[dict] = []
        self.garbled = 0
        self.problems: list[str] = []
        self.started = time.monotonic()
        self.timed_out = False
        self.cancelled = False


class Worker:
    def __init__(self, base: str, scratch: str, slots: int, result_fd: int, cgroups: str = ""):
        self.base, self.scratch, self.result_fd = base, scratch, result_fd
        self.free_slots = list(range(slots))
        self.root = os.geteuid() == 0
        self.cgroups = cgroups
        self.queue: list[dict] = []
        self.running: dict[int, Running] = {}  # by judge pid
        self.selector = selectors.DefaultSelector()
        self.stdin_buffer = b""
        self.eof = False

    def serve(self) -> None:
        self.selector.register(0, selectors.EVENT_READ, ("stdin", None))
        while not (self.eof and not self.running and not self.queue):
            self._start_queued()
            timeout = None
            if self.running:
                timeout = max(0.0, min(r.deadline for r in self.running.values()) - time.monotonic())
            for key, _ in self.selector.select(timeout):
                kind, run = key.data
                if kind == "stdin":
                    self._read_stdin()
                elif run.judge not in self.running:
                    continue  # (its run finished earlier in this batch)
                elif kind == "pipe":
                    self._read_results(run)
                elif kind == "output":
                    self._read_output(run)
                elif kind == "exit":
                    self._finish(run)
            now = time.monotonic()
            for run in list(self.running.values()):
                if now >= run.deadline:
                    run.timed_out = True
                    self._kill(run)
                    self._finish(run)

    def _read_stdin(self) -> None:
        data = os.read(0, 1 << 20)
        if not data:
            self.eof = True
            self.selector.unregister(0)
            self.queue.clear()
            for run in list(self.running.values()):
                run.cancelled = True
                self._kill(run)
                self._finish(run)
            return
        self.stdin_buffer += data
        *lines, self.stdin_buffer = self.stdin_buffer.split(b"\n")
        for line in lines:
            if not line.strip():
                continue
            job = json.loads(line)
            if job["op"] == "run":
                self.queue.append(job)
            elif job["op"] == "cancel":
                for queued in [j for j in self.queue if j["id"] == job["id"]]:
                    self.queue.remove(queued)
                    send(self.result_fd, {
                        "op": "result", "id": queued["id"], "passed": False, "cancelled": True,
                        "outcomes": [[t, "error", "cancelled"] for t in queued["tests"]],
                        "seconds": 0.0, "timed_out": False, "returncode": None,
                        "problems": ["cancelled before it ran"], "output": ""})
                for run in list(self.running.values()):
                    if run.job["id"] == job["id"]:
                        run.cancelled = True
                        self._kill(run)
                        self._finish(run)

    def _uids(self, slot: int) -> tuple:
        if not self.root:
            return None, None, [], []
        judge = FIRST_UID + 2 * slot
        return judge, judge + 1, [], [judge]  # the executor joins the judge's group (tmp_path)

    def _rundir(self, judge_uid, slot: int) -> str:
        """A fresh folder no candidate could have made or prepared (a random, new name), in the
        slot's own folder (in bwrap: the slot's own size-limited tmpfs, so that one candidate's
        files cannot use another's share of the disk)."""
        own = os.path.join(self.scratch, f"slot{slot}")
        os.makedirs(own, 0o711, exist_ok=True)
        while True:
            path = os.path.join(own, "run-" + secrets.token_hex(8))
            try:
                os.mkdir(path, 0o750)
                break
            except FileExistsError:
                continue
        if judge_uid is not None:
            os.chown(path, judge_uid, judge_uid)
        return path

    def _start_queued(self) -> None:
        while self.queue and self.free_slots:
            job = self.queue.pop(0)
            slot = self.free_slots.pop(0)
            run = Running(job, slot, "", time.monotonic() + job["limits"]["wall_seconds"])
            try:
                self._start(run)
            except Exception as exc:  # noqa: BLE001 - a run that cannot start fails alone
                run.problems.append(f"could not start the run: {type(exc).__name__}: {exc}")
                run.judge = -1 - slot
                self.running[run.judge] = run
                self._finish(run)

    def _start(self, run: Running) -> None:
        job = run.job
        judge_uid, exec_uid, judge_groups, exec_groups = self._uids(run.slot)
        original = job.get("original")
        if original is None:
            with open(os.path.join(self.base, job["file"]), encoding="utf-8") as handle:
                original = handle.read()
        job["original"] = original
        try:
            job["forward"] = forwarded_defs(original, job["text"])
        except SyntaxError as exc:
            job["forward"] = []
            raise ValueError(f"the candidate does not parse: {exc}") from None
        run.rundir = self._rundir(judge_uid, run.slot)
        home = os.path.join(run.rundir, "x")
        os.mkdir(home, 0o700)
        if exec_uid is not None:
            os.chown(home, exec_uid, exec_uid)
        result_r, result_w = os.pipe()
        out_r, out_w = os.pipe()
        judge_sock = exec_sock = None
        if job["forward"]:
            judge_sock, exec_sock = socket.socketpair()
        if exec_sock is not None:
            pid = os.fork()
            if pid == 0:
                self._cgroup(run.slot)
                run_executor(job, exec_uid, exec_groups, self.base, home, exec_sock.fileno(), out_w)
            run.pids.append(pid)
            exec_sock.close()
        pid = os.fork()
        if pid == 0:
            self._cgroup(run.slot)
            run_judge(job, judge_uid, judge_groups, self.base, run.rundir,
                   judge_sock.fileno() if judge_sock else None, result_w, out_w)
        run.judge = pid
        run.pids.append(pid)
        if judge_sock is not None:
            judge_sock.close()
        os.close(result_w)
        os.close(out_w)
        for fd in (result_r, out_r):
            os.set_blocking(fd, False)
        run.reader, run.output = result_r, out_r
        self.running[pid] = run
        self.selector.register(result_r, selectors.EVENT_READ, ("pipe", run))
        self.selector.register(out_r, selectors.EVENT_READ, ("output", run))
        pidfd = os.pidfd_open(pid)
        run.pidfds[pid] = pidfd
        self.selector.register(pidfd, selectors.EVENT_READ, ("exit", run))

    def _cgroup(self, slot: int) -> None:
        """Join this slot's cgroups (memory and processes for the candidate and all it starts)."""
        if not self.cgroups:
            return
        for folder in self.cgroups.split(","):
            try:
                with open(os.path.join(folder, f"slot{slot}", "cgroup.procs"), "w") as handle:
                    handle.write("0")
            except OSError:
                pass

    def _read_results(self, run: Running) -> None:
        """The judge's report lines: capped, and any line that does not parse is counted."""
        try:
            data = os.read(run.reader, 1 << 20)
        except BlockingIOError:
            return
        if not data:
            self._close(run, "reader")
            return
        run.buffer += data
        *lines, run.buffer = run.buffer.split(b"\n")
        if len(run.buffer) > RESULT_LINE_LIMIT:
            run.garbled += 1
            run.buffer = b""
            self._kill(run)
        for line in lines:
            try:
                message = json.loads(line)
                if not isinstance(message, dict):
                    raise TypeError("not an object")
            except Exception:  # noqa: BLE001 - any parse failure fails this run only
                run.garbled += 1
                continue
            run.messages.append(message)

    def _read_output(self, run: Running) -> None:
        try:
            data = os.read(run.output, 1 << 16)
        except BlockingIOError:
            return
        if not data:
            self._close(run, "output")
            return
        run.out_bytes += len(data)
        run.out += data
        del run.out[:-OUTPUT_TAIL]
        if run.out_bytes > OUTPUT_LIMIT and not run.problems:
            run.problems.append(f"the run wrote over {OUTPUT_LIMIT} bytes of output: killed")
            self._kill(run)

    def _close(self, run: Running, which: str) -> None:
        fd = getattr(run, which)
        if fd is not None:
            self.selector.unregister(fd)
            os.close(fd)
            setattr(run, which, None)

    def _kill(self, run: Running) -> None:
        for pid in run.pids:
            for target in (-pid, pid):
                try:
                    os.kill(target, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass

    def _finish(self, run: Running) -> None:
        if run.judge not in self.running:
            return
        del self.running[run.judge]
        status = None
        if run.judge > 0:
            _, status = os.waitpid(run.judge, 0)
        if run.reader is not None:
            while run.reader is not None:  # whatever the judge wrote before it ended
                before = len(run.messages) + run.garbled
                self._read_results(run)
                if len(run.messages) + run.garbled == before:
                    break
            self._close(run, "reader")
        self._kill(run)  # the executor, and the groups of both
        for pid in run.pids[:-1] if run.judge > 0 else run.pids:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        if run.output is not None:
            for _ in range(64):  # what is left in the pipe, up to the cap
                before = run.out_bytes
                self._read_output(run)
                if run.output is None or run.out_bytes == before:
                    break
            self._close(run, "output")
        for fd in run.pidfds.values():
            self.selector.unregister(fd)
            os.close(fd)
        seconds = time.monotonic() - run.started
        self._clean_slot(run)
        self.free_slots.append(run.slot)
        self.free_slots.sort()
        send(self.result_fd, verdict(run, status, seconds, bytes(run.out).decode("utf-8",
                                                                                   "replace")))

    def _clean_slot(self, run: Running) -> None:
        """Kill everything the candidate left running (by uid when we can) and delete its folder."""
        if self.root:
            for uid in self._uids(run.slot)[:2]:
                pid = os.fork()
                if pid == 0:
                    try:
                        os.setgroups([])
                        os.setgid(uid)
                        os.setuid(uid)
                        for _ in range(5):  # a fork bomb may still be forking: sweep until none
                            try:
                                os.kill(-1, signal.SIGKILL)
                            except ProcessLookupError:
                                break
                    finally:
                        os._exit(0)
                os.waitpid(pid, 0)
        if run.rundir:
            shutil.rmtree(run.rundir, ignore_errors=True)
