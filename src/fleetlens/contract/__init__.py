"""The fleet event contract (``docs/events.md``): Arrow schemas, batch decoding and validation."""
