"""The application layer: one config tree, one use case (``solve``), its report and events.

Pure of any editor protocol: ``server/`` converts LSP and CLI input into a ``Request`` and a
``Config``, calls ``solve`` (or ``complete`` at a cursor) and renders the ``Report``.
"""
