"""The HTTP API: FastAPI routes over ``fleetlens.query`` (``app.create_app``), served by uvicorn
in a thread of the process that owns the store (``server.serve_in_thread``). See docs/queries.md."""
