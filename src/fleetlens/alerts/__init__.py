"""Alerts: hits of the detector turned into deduplicated alerts with a cooldown, sent to sinks.

``manager.AlertManager`` groups the hits of one (rule, key) into one alert while they keep coming
(within the cooldown), resolves it once they stop, and gives every alert a deterministic id (rule,
key, first window) so a replay after a restart never raises it twice. ``sinks`` writes alerts to
the store's alerts table, a JSON webhook, an Alertmanager, or an MQ stream/topic.
"""
