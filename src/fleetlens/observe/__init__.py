"""Self-observability: Prometheus metrics (``metrics``), liveness and readiness (``health``), a small
metrics and health HTTP server for roles without the API (``server``) and the Grafana dashboard of
fleetlens itself (``dashboard``)."""
