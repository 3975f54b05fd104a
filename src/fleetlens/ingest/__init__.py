"""Ingest: MQ deliveries → decoded, deduplicated Arrow batches → the hot store, acknowledged only once stored."""
