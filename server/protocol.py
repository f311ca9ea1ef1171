"""Cancellation plumbing: the one place that reaches into pygls's private methods.

pygls cancels a request's future on ``$/cancelRequest``, but cannot stop a thread, and for a
command (run through pygls's generator handler) it cancels only the reply, not the command's task.
So a handler that starts work in a thread registers the work's ``StopFlag`` under its request id
(``Cancellations.track``, reading pygls's public ``protocol.msg_id``), and the cancel notification
raises that flag. The other override answers a request whose params do not fit its method's type,
which pygls would drop, leaving the client waiting forever.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

from pygls.exceptions import JsonRpcInternalError, JsonRpcInvalidParams
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.json_rpc import JsonRPCNotification

from .work import StopFlag

log = logging.getLogger("budgetpass.server")


class Cancellations:
    """Request id -> the StopFlag of the work that request started (thread-safe)."""

    def __init__(self) -> None:
        self._flags: dict[Any, StopFlag] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def track(self, protocol: LanguageServerProtocol, flag: StopFlag):
        """While the block runs, ``$/cancelRequest`` for the current request raises ``flag``."""
        request_id = protocol.msg_id
        if request_id is not None:
            with self._lock:
                self._flags[request_id] = flag
        try:
            yield
        finally:
            if request_id is not None:
                with self._lock:
                    self._flags.pop(request_id, None)

    def cancel(self, request_id) -> None:
        with self._lock:
            flag = self._flags.pop(request_id, None)
        if flag is not None:
            flag.stop("cancelled by the client ($/cancelRequest)")


class Protocol(LanguageServerProtocol):
    """pygls's protocol with cancellation reaching running work and malformed params answered."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cancellations = Cancellations()

    def _handle_cancel_notification(self, msg_id):
        self.cancellations.cancel(msg_id)
        super()._handle_cancel_notification(msg_id)

    def structure_message(self, data):
        """pygls drops a request whose params do not fit the method's type, and the client would
        wait forever: answer it with an error instead."""
        try:
            return super().structure_message(data)
        except (JsonRpcInvalidParams, JsonRpcInternalError) as exc:
            if not (isinstance(data, dict) and "id" in data and "method" in data):
                raise
            why = f"budgetpass: malformed params for {data['method']}: {exc.__cause__ or exc}"
            log.warning("%s", why)
            self._send_response(data["id"], error=JsonRpcInvalidParams(why[:500])
                                .to_response_error())
            return JsonRPCNotification(jsonrpc="2.0", method="$/budgetpass/ignored", params=None)
