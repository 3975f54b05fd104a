"""Fault injection, overload and hostile input against real servers (``fleetlens chaos``).

``rig`` starts the MQ (a Redis-protocol server, a Kafka broker or a 3-broker cluster) and writes
to it with a producer that survives the faults without writing anything twice; ``roles`` says how
to run a fleetlens role as a process and count what it produced; ``scenarios`` are the faults
(SIGKILL cycles, MQ restarts, a broker of three killed, store outage, overload); ``hostile`` and
``fuzz`` are the hostile-input checks. Results are recorded in ``docs/reliability.md``.
"""
