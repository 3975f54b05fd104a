"""fleetlens: a microservice fleet's logs, metrics and business events turned into answers, alerts and dashboards."""

__version__ = "0.1.0"
