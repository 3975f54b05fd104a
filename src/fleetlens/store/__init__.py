"""The hot store: ClickHouse tables (embedded chDB or a server/cluster), client, migrations, dedup.

Start with :func:`fleetlens.store.client.open_store`; table names are in
:mod:`fleetlens.store.tables` (``EVENTS``, ``METRICS``, ``REJECTIONS``). See ``docs/store.md``.
"""
