"""Streaming anomaly detection: micro-batches of decoded events through vectorized rules.

``engine.Engine`` runs the rules (``rules/``) over Polars frames with event-time windows and a
per-partition watermark; ``runner`` feeds it from the MQ (its own consumer group), rebuilds its
state on start by re-reading the last window-length of the stream, and hands hits to
``fleetlens.alerts`` for deduplication, cooldown and the sinks.
"""
