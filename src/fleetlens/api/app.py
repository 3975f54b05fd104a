"""``create_app(store, settings)``: the query families as JSON endpoints (OpenAPI at ``/docs``).

Bad input answers 400 with ``{"error": ..., "param": ...}`` naming the parameter; a query that runs
out of time answers 504; nothing answers with a stack trace.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from fleetlens.api.export import FORMATS, MEDIA_TYPES, to_csv, to_ndjson
from fleetlens.api.hardening import harden
from fleetlens.api.stats import router as stats_router
from fleetlens.logsetup import get_logger
from fleetlens.query import anomalies, business, events, perf, rejections, trace, users
from fleetlens.query.common import Limits, QueryError, QueryResult
from fleetlens.settings import Settings
from fleetlens.store.client import Store
from fleetlens.ui import mount_ui

log = get_logger(__name__)

Start = Annotated[str | None, Query(description="Range start: RFC 3339 (2026-11-22T10:00:00Z) or epoch ms. Default: end − 1 h.")]
End = Annotated[str | None, Query(description="Range end (exclusive): RFC 3339 or epoch ms. Default: now.")]
Limit = Annotated[int | None, Query(description="Rows per page (1..settings.query.max_rows; default settings.query.default_limit).")]
Cursor = Annotated[str | None, Query(description="next_cursor of the previous page.")]


def _list(description: str) -> Any:
    return Query(None, description=description + " Repeat the parameter or separate values with commas.")


class _JSON(JSONResponse):
    """orjson rendering (datetimes and NaN-free floats; faster than the stdlib)."""

    def render(self, content: Any) -> bytes:
        import orjson

        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def create_app(store: Store, settings: Settings) -> FastAPI:
    """The API over ``store``, bounded by ``settings.query`` (timeouts, row limits, default range)."""
    from fleetlens.archive.reader import ArchiveView

    limits = Limits.from_settings(settings.query, archive=ArchiveView.from_settings(settings))  # hot ∪ archive
    app = FastAPI(
        title="fleetlens query API",
        version="1",
        description="Traces, event search, simultaneous users, business metrics, performance, anomalies and "
        "rejections over the fleet's events. Every query takes a time range (default: the last hour) and reports "
        "elapsed_ms. See docs/queries.md.",
        default_response_class=_JSON,
        docs_url=None,  # /docs is served by fleetlens.ui from a vendored Swagger UI (FastAPI's loads a CDN)
        redoc_url=None,
    )
    app.state.store, app.state.limits = store, limits
    _errors(app)
    harden(app, store, settings)  # access control, limits, headers; /auth, /admin/tokens, /healthz, /readyz, /metrics

    def answer(result: QueryResult) -> Any:
        # the query's time also as a header, as the CSV/NDJSON exports give it (fleetlens load reads it)
        return _JSON(result.to_json(), headers={"X-Elapsed-Ms": f"{result.elapsed_ms:.3f}"})

    @app.get("/health", summary="Liveness: the store answers")
    def health() -> dict[str, Any]:
        """``{"ok": true}`` when ``SELECT 1`` runs."""
        store.query_scalar("SELECT 1", timeout_s=limits.timeout_s)
        return {"ok": True}

    @app.get("/trace/{action_id}", summary="Every event of one action, in time order, with per-service spans")
    def get_trace(action_id: Annotated[str, Path(description="The action_id shared by the services.")],
                  start: Start = None, end: End = None, limit: Limit = None) -> dict[str, Any]:
        """Events (``events``) and one waterfall span per service (``spans``); 404 when nothing is stored."""
        result = trace.trace(store, action_id, start=start, end=end, limit=limit, limits=limits)
        if not result.meta["found"]:
            return _JSON({"error": f"no event with action_id {action_id!r}", "param": "action_id"}, status_code=404)
        return answer(result)

    @app.get("/events", summary="Search logs and business events, newest first")
    def get_events(
        start: Start = None, end: End = None, limit: Limit = None, cursor: Cursor = None,
        level: list[str] | None = _list("Levels: debug, info, warn, error."),
        service: list[str] | None = _list("Services."),
        event_type: list[str] | None = _list("Log event types (http_request, db_query, …)."),
        host: list[str] | None = _list("Hosts."), pod: list[str] | None = _list("Pods."),
        container: list[str] | None = _list("Containers."), node: list[str] | None = _list("Kubernetes nodes."),
        logger: list[str] | None = _list("Logger names."), source_file: list[str] | None = _list("Source files."),
        kind: list[str] | None = _list("log or business."), operation: list[str] | None = _list("Business operations."),
        event_id: list[str] | None = _list("Event ids (e.g. an alert's evidence)."),
        text: Annotated[str | None, Query(description="Words that must all occur in the message (case-insensitive).")] = None,
        format: Annotated[str, Query(description="json, csv or ndjson (csv/ndjson: the page only; next cursor in the X-Next-Cursor header).")] = "json",
    ) -> Any:
        """A page of events (``events``), counts by level over the whole range (``counts``), ``next_cursor``."""
        if format not in FORMATS:
            raise QueryError("format", f"must be one of {', '.join(FORMATS)}, got {format!r}")
        flt = events.EventFilter(levels=level or [], services=service or [], event_types=event_type or [],
                                 hosts=host or [], pods=pod or [], containers=container or [], nodes=node or [],
                                 loggers=logger or [], source_files=source_file or [], kinds=kind or [],
                                 operations=operation or [], event_ids=event_id or [], text=text or "")
        result = events.search_events(store, flt, start=start, end=end, limit=limit, cursor=cursor,
                                      counts=format == "json", limits=limits)
        if format == "json":
            return answer(result)
        body = to_csv(result.tables["events"]) if format == "csv" else to_ndjson(result.tables["events"])
        headers = {"X-Elapsed-Ms": f"{result.elapsed_ms:.3f}"}
        if result.meta["next_cursor"]:
            headers["X-Next-Cursor"] = result.meta["next_cursor"]
        return Response(body, media_type=MEDIA_TYPES[format], headers=headers)

    @app.get("/users", summary="Simultaneous users viewing and buying over time")
    def get_users(start: Start = None, end: End = None,
                  step: Annotated[str, Query(description="Distance between instants: 1m or coarser (5m, 1h, …).")] = "1m",
                  window_min: Annotated[int | None, Query(description="Trailing window in minutes (default settings.query.users_window_min).")] = None) -> dict[str, Any]:
        """At each instant t: distinct users with a page_view (viewing) / reserve, payment_attempt or buy (buying) in (t − window, t]."""
        return answer(users.simultaneous_users(store, start=start, end=end, step=step, window_min=window_min, limits=limits))

    @app.get("/business", summary="Transactions, page views, reservations, cancellations, refunds; retries by provider")
    def get_business(start: Start = None, end: End = None,
                     interval: Annotated[str, Query(description="15m, 1h, 3h or 1d.")] = "1h") -> dict[str, Any]:
        """``totals`` per bucket and ``retries`` (eventual outcome) per bucket and provider."""
        return answer(business.business_metrics(store, start=start, end=end, interval=interval, limits=limits))

    @app.get("/perf/durations", summary="Operation execution time: min/max/avg/p50/p90/p95/p99 per interval")
    def get_durations(start: Start = None, end: End = None,
                      interval: Annotated[str, Query(description="1m, 5m, 15m, 1h, 3h or 1d.")] = "1h",
                      by: Annotated[str, Query(description="operation (business events) or event_type (logs).")] = "operation",
                      service: list[str] | None = _list("Services."),
                      name: list[str] | None = _list("Operations or event types to keep.")) -> dict[str, Any]:
        """``durations`` per bucket, service and operation/event type."""
        return answer(perf.durations(store, by=by, services=service, names=name, start=start, end=end,
                                     interval=interval, limits=limits))

    @app.get("/perf/resources", summary="CPU and RAM per host or service per interval, beside active users")
    def get_resources(start: Start = None, end: End = None,
                      interval: Annotated[str, Query(description="1m, 5m, 15m, 1h, 3h or 1d.")] = "1h",
                      group: Annotated[str, Query(description="host or service.")] = "host",
                      host: list[str] | None = _list("Hosts."), service: list[str] | None = _list("Services.")) -> dict[str, Any]:
        """``resources`` (cpu/mem avg and max) per bucket and host/service; ``active_users`` per bucket."""
        return answer(perf.resources(store, group=group, hosts=host, services=service, start=start, end=end,
                                     interval=interval, limits=limits))

    @app.get("/anomalies", summary="Alerts raised by the detector")
    def get_anomalies(start: Start = None, end: End = None, limit: Limit = None, cursor: Cursor = None,
                      rule: list[str] | None = _list("Rules."), key: list[str] | None = _list("Keys (provider, user, service…)."),
                      severity: list[str] | None = _list("Severities."), status: list[str] | None = _list("firing or resolved.")) -> dict[str, Any]:
        """``alerts`` overlapping the range, newest first, ``next_cursor``."""
        return answer(anomalies.anomalies(store, rules=rule, keys=key, severities=severity, statuses=status,
                                          start=start, end=end, limit=limit, cursor=cursor, limits=limits))

    @app.get("/rejections", summary="Rejected lines by field and reason")
    def get_rejections(start: Start = None, end: End = None, limit: Limit = None) -> dict[str, Any]:
        """``by_field``, ``by_reason`` and ``total`` over the range of receipt time."""
        return answer(rejections.rejection_counts(store, start=start, end=end, limit=limit, limits=limits))

    app.include_router(stats_router)
    mount_ui(app)
    from fleetlens.demo.routes import scenarios_router

    app.include_router(scenarios_router)
    return app


def _errors(app: FastAPI) -> None:
    @app.exception_handler(QueryError)
    async def query_error(request: Request, exc: QueryError) -> JSONResponse:
        return _JSON({"error": str(exc), "param": exc.param}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        param = str(first.get("loc", ["", "?"])[-1])
        return _JSON({"error": f"{param}: {first.get('msg', 'invalid')}", "param": param}, status_code=400)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        text = str(exc)
        if "TIMEOUT_EXCEEDED" in text or "Timeout exceeded" in text:
            return _JSON({"error": "the query ran longer than settings.query.timeout_s; narrow the range or filters"},
                         status_code=504)
        log.exception("query failed", path=request.url.path)
        return _JSON({"error": f"the store could not answer ({exc.__class__.__name__})"}, status_code=503)
