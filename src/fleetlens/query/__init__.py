"""The analytical query families as plain functions over a :class:`~fleetlens.store.client.Store`.

One module per family (``trace``, ``events``, ``users``, ``business``, ``perf``, ``anomalies``,
``rejections``); the HTTP API (``fleetlens.api``) and the CLI (``fleetlens query``) call the same
functions. ``common`` holds what they share: time ranges, intervals, limits, cursors, the result
type. See ``docs/queries.md``.
"""
