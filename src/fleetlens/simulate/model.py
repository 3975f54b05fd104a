"""The simulated shop and fleet: services and their log templates, pods on hosts, payment
providers, products, pages and users. Pure data, built once per run from the config and a seeded
``random.Random``; the generator (``generator.py``) brings it to life.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

APP = "shop"
CURRENCIES = (("EUR", 0.7), ("USD", 0.2), ("GBP", 0.1))
PAGES = (
    "/", "/search", "/category/shoes", "/category/jackets", "/category/bags", "/category/sale",
    "/product", "/product/reviews", "/cart", "/checkout", "/account", "/account/orders", "/help",
    "/wishlist", "/stores",
)


@dataclass(frozen=True, slots=True, eq=False)  # identity hash: pods cache event prototypes per template
class LogTemplate:
    """One kind of log line a service writes.

    ``message`` is a ``str.format_map`` template over the flow context (see ``generator.Ctx``).
    ``duration_ms`` is the median of a log-normal duration (``sigma`` its spread); 0 means the line
    carries no ``duration_ms``.
    """

    level: str
    event_type: str
    logger: str
    source_file: str
    line: int
    message: str
    duration_ms: float = 0.0
    sigma: float = 0.5


@dataclass(frozen=True)
class ServiceSpec:
    """A microservice: the logs of one request it handles, its failure logs, its named log lines."""

    name: str
    mem_mib: int
    request: tuple[tuple[float, LogTemplate], ...]  # (probability per request, template)
    errors: tuple[LogTemplate, ...]  # one of these when a request fails
    named: dict[str, LogTemplate] = field(default_factory=dict)  # flow-specific lines
    error_rate: float = 0.006  # share of requests that log an error in normal traffic


@dataclass(frozen=True)
class ProviderSpec:
    """An external payment provider: share of payments, latency and per-attempt failure odds."""

    name: str
    share: float
    latency_ms: float  # median of a log-normal
    sigma: float
    p_timeout: float
    p_503: float
    p_declined: float
    timeout_ms: float


PROVIDERS = (
    ProviderSpec("payflow", 0.40, 180.0, 0.35, 0.004, 0.004, 0.010, 3000.0),
    ProviderSpec("cardgate", 0.30, 250.0, 0.40, 0.006, 0.005, 0.012, 3000.0),
    ProviderSpec("paynova", 0.20, 320.0, 0.45, 0.008, 0.006, 0.015, 4000.0),
    ProviderSpec("swiftpay", 0.10, 420.0, 0.50, 0.010, 0.008, 0.015, 5000.0),
)

T = LogTemplate
_JAVA_TRACE = "\n\tat {frame}\n\tat org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:885)\n\tat jakarta.servlet.http.HttpServlet.service(HttpServlet.java:658)\n\tat java.base/java.lang.Thread.run(Thread.java:1583)"


def _py_trace(file: str, line: int, func: str, stmt: str, exc: str) -> str:
    return (
        "Traceback (most recent call last):\n"
        f'  File "/app/{file}", line {line}, in {func}\n    {stmt}\n'
        '  File "/usr/local/lib/python3.12/site-packages/asyncpg/pool.py", line 1029, in fetchrow\n'
        "    return await con.fetchrow(query, *args, timeout=timeout)\n"
        f"{exc}"
    )


CORE_SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        "gateway", 192,
        request=(
            (1.0, T("info", "http_request", "gateway.http", "internal/http/router.go", 142, "{method} {path} {status} {d}ms user={u}", 14.0, 0.6)),
            (0.35, T("debug", "auth", "gateway.auth", "internal/auth/jwt.go", 88, "jwt verified user={u} session={sess}")),
            (0.03, T("warn", "http_request", "gateway.ratelimit", "internal/http/ratelimit.go", 61, "rate limit at 80% for client of user={u} path={path}")),
        ),
        errors=(
            T("error", "exception", "gateway.http", "internal/http/proxy.go", 211, "upstream connect error: dial tcp 10.0.3.17:8080: connect: connection refused path={path}", 1002.0, 0.1),
            T("error", "http_request", "gateway.http", "internal/http/router.go", 157, "{method} {path} 504 upstream timeout after {d}ms", 5000.0, 0.05),
        ),
    ),
    ServiceSpec(
        "catalog", 512,
        request=(
            (1.0, T("info", "http_request", "catalog.api", "catalog/api/views.py", 57, "GET /products/{p} 200 {d}ms", 9.0, 0.5)),
            (0.6, T("debug", "db_query", "catalog.db", "catalog/db/queries.py", 133, "SELECT id, name, price, stock FROM products WHERE id = $1 [{p}] took {d}ms", 2.5, 0.6)),
            (0.4, T("debug", "cache", "catalog.cache", "catalog/cache.py", 41, "cache hit product:{p}")),
            (0.04, T("warn", "db_query", "catalog.db", "catalog/db/queries.py", 140, "slow query: SELECT ... FROM products WHERE id = $1 [{p}] took {d}ms (threshold 200ms)", 320.0, 0.3)),
        ),
        errors=(
            T("error", "exception", "catalog.api", "catalog/api/views.py", 71, _py_trace("catalog/api/views.py", 64, "get_product", "row = await db.fetch_product(pid)", "asyncpg.exceptions.QueryCanceledError: canceling statement due to statement timeout"), 2000.0, 0.1),
        ),
    ),
    ServiceSpec(
        "cart", 256,
        request=(
            (1.0, T("info", "http_request", "cart.routes", "src/routes/cart.js", 88, "{method} /cart/{u}/items {status} {d}ms", 7.0, 0.5)),
            (0.7, T("debug", "db_query", "cart.redis", "src/store/redisCart.js", 34, "HGETALL cart:{u} {d}ms", 0.8, 0.5)),
            (0.03, T("warn", "validation", "cart.pricing", "src/services/pricing.js", 112, "cart of {u} holds stale price for {p}, repricing")),
        ),
        errors=(
            T("error", "exception", "cart.routes", "src/services/cart.js", 57, "TypeError: Cannot read properties of undefined (reading 'sku')\n    at CartService.add (/app/src/services/cart.js:57:31)\n    at async /app/src/routes/cart.js:91:5"),
        ),
    ),
    ServiceSpec(
        "reservation", 768,
        request=(
            (1.0, T("info", "http_request", "com.shop.reservation.api.ReservationController", "ReservationController.java", 74, "{method} /reservations {status} {d}ms", 18.0, 0.5)),
            (0.8, T("debug", "db_query", "com.shop.reservation.repo.StockRepository", "StockRepository.java", 112, "UPDATE stock SET reserved = reserved + {q} WHERE sku = '{p}' ({d} ms)", 4.0, 0.6)),
            (0.03, T("warn", "db_query", "com.shop.reservation.repo.StockRepository", "StockRepository.java", 131, "low stock for {p}: {q} requested, 3 left")),
        ),
        errors=(
            T("error", "exception", "com.shop.reservation.api.ReservationController", "ReservationController.java", 96, "org.springframework.dao.CannotAcquireLockException: could not obtain lock on row in relation \"stock\"" + _JAVA_TRACE.format(frame="com.shop.reservation.service.ReservationService.reserve(ReservationService.java:58)"), 1500.0, 0.2),
        ),
        named={
            "reserved": T("info", "reservation", "com.shop.reservation.service.ReservationService", "ReservationService.java", 61, "reserved {q} x {p} for order {o}"),
            "released": T("info", "reservation", "com.shop.reservation.service.ReservationService", "ReservationService.java", 88, "released reservation of order {o} ({reason})"),
        },
    ),
    ServiceSpec(
        "order", 384,
        request=(
            (1.0, T("info", "http_request", "order.api", "order/api.py", 90, "{method} /orders {status} {d}ms", 11.0, 0.5)),
            (0.8, T("debug", "db_query", "order.repo", "order/repo.py", 45, "INSERT INTO order_events (order_id, state) VALUES ({o}, ...) took {d}ms", 3.0, 0.6)),
        ),
        errors=(
            T("error", "exception", "order.api", "order/api.py", 118, _py_trace("order/repo.py", 52, "save_order", "await conn.execute(INSERT_ORDER, order)", "asyncpg.exceptions.UniqueViolationError: duplicate key value violates unique constraint \"orders_pkey\"")),
        ),
        named={
            "created": T("info", "order", "order.service", "order/service.py", 77, "order {o} created for {u}: {q} x {p} = {amt} {cur}"),
            "paid": T("info", "order", "order.service", "order/service.py", 131, "order {o} paid via {prov} after {att} attempt(s)"),
            "failed": T("error", "order", "order.service", "order/service.py", 139, "order {o} payment failed: {code} after {att} attempt(s) via {prov}"),
            "refunded": T("info", "order", "order.service", "order/service.py", 164, "order {o} refunded {amt} {cur} to {u}"),
        },
    ),
    ServiceSpec(
        "payment", 1024,
        request=(
            (1.0, T("info", "http_request", "com.shop.payment.api.PaymentController", "PaymentController.java", 58, "POST /payments {status} {d}ms", 6.0, 0.5)),
            (0.5, T("debug", "db_query", "com.shop.payment.repo.PaymentRepository", "PaymentRepository.java", 77, "INSERT INTO payments (order_id, provider) VALUES ('{o}', '{prov}') ({d} ms)", 2.0, 0.5)),
        ),
        errors=(
            T("error", "exception", "com.shop.payment.api.PaymentController", "PaymentController.java", 66, "java.lang.IllegalStateException: idempotency key already used" + _JAVA_TRACE.format(frame="com.shop.payment.service.PaymentService.pay(PaymentService.java:91)")),
        ),
        named={
            "call_ok": T("info", "payment_call", "payment.client", "PaymentClient.java", 203, "{prov} charge ok attempt={att} amount={amt} {cur} {d}ms"),
            "call_retry": T("warn", "payment_call", "payment.client", "PaymentClient.java", 219, "{prov} charge failed attempt={att}: {code} after {d}ms, retrying in {backoff}ms"),
            "call_failed": T("error", "exception", "payment.client", "PaymentClient.java", 231, "com.shop.payment.client.PaymentFailedException: {prov} {code} on attempt {att} for order {o}" + _JAVA_TRACE.format(frame="com.shop.payment.client.PaymentClient.charge(PaymentClient.java:231)")),
            "refund_ok": T("info", "payment_call", "payment.client", "PaymentClient.java", 257, "{prov} refund ok {amt} {cur} order={o} {d}ms"),
        },
    ),
    ServiceSpec(
        "notification", 160,
        request=(
            (1.0, T("info", "notification", "notification.mail", "internal/mail/sender.go", 77, "sent {template} email to {u} for order {o}", 40.0, 0.6)),
            (0.5, T("debug", "queue", "notification.queue", "internal/queue/consumer.go", 45, "dequeued {template} message for order {o}")),
            (0.03, T("warn", "notification", "notification.mail", "internal/mail/sender.go", 93, "smtp 421 4.7.0 try again later, requeued {template} for {u}")),
        ),
        errors=(
            T("error", "exception", "notification.mail", "internal/mail/sender.go", 101, "panic: runtime error: invalid memory address or nil pointer dereference [recovered]\ngoroutine 1893 [running]:\nmain.(*Sender).Send(0xc000182000, {{0xc0004a6000}})\n\t/app/internal/mail/sender.go:101 +0x1c5"),
        ),
    ),
)

EXTRA_SERVICE_NAMES = ("search", "recommendation", "auth", "inventory", "shipping", "pricing", "reviews", "loyalty")


def extra_service(name: str) -> ServiceSpec:
    """A supporting service beyond the checkout path: serves page views, logs like the others."""
    return ServiceSpec(
        name, 320,
        request=(
            (1.0, T("info", "http_request", f"{name}.api", f"{name}/handlers.py", 40, "GET /" + name + "?user={u} 200 {d}ms", 8.0, 0.6)),
            (0.5, T("debug", "db_query", f"{name}.db", f"{name}/store.py", 22, "SELECT ... FROM " + name + " LIMIT 20 took {d}ms", 2.0, 0.6)),
            (0.03, T("warn", "http_request", f"{name}.api", f"{name}/handlers.py", 55, "GET /" + name + " took {d}ms, over the 250ms budget", 300.0, 0.2)),
        ),
        errors=(T("error", "exception", f"{name}.api", f"{name}/handlers.py", 61, _py_trace(f"{name}/handlers.py", 58, "handle", "return await store.query(params)", "TimeoutError: read timeout")),),
    )


HEALTH = T("debug", "http_request", "health.probe", "internal/health/probe.go", 27, "GET /healthz 200 {d}ms", 0.4, 0.3)
GC_PAUSE = T("warn", "runtime", "runtime.gc", "runtime/mgc.go", 1165, "GC pause {d}ms (young gen)", 180.0, 0.4)


def services(n: int) -> list[ServiceSpec]:
    """The first ``n`` services: the checkout path first, then supporting ones (``svc-NN`` beyond the named)."""
    out = list(CORE_SERVICES[:n])
    for i in range(max(0, n - len(CORE_SERVICES))):
        out.append(extra_service(EXTRA_SERVICE_NAMES[i] if i < len(EXTRA_SERVICE_NAMES) else f"svc-{i:02d}"))
    return out


class Host:
    """A machine (Kubernetes node) carrying pods; its load drives its metrics."""

    __slots__ = ("name", "node", "load", "cum_load", "mem_total", "base")

    def __init__(self, index: int):
        self.name = f"ip-10-0-{index // 8}-{10 + index}"
        self.node = f"k8s-worker-{index + 1:02d}"
        self.load = 0  # events handled since the last metrics tick
        self.cum_load = 0
        self.mem_total = 16 * 1024**3
        self.base = {"service": "node-exporter", "app": "infra", "host": self.name, "node": self.node}


class Pod:
    """A replica of a service on a host; ``base`` holds the envelope fields of its events."""

    __slots__ = ("service", "name", "host", "base", "load", "cum_load", "mem_base", "mem_limit", "protos")

    def __init__(self, service: ServiceSpec, replica: int, host: Host, rng: random.Random):
        self.service = service.name
        suffix = "".join(rng.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))
        self.name = f"{service.name}-{rng.randrange(16**9):09x}-{suffix}"  # like a Deployment's pod
        self.host = host
        self.base = {
            "service": service.name, "app": APP, "host": host.name, "pod": self.name,
            "container": service.name, "node": host.node,
        }
        self.load = 0
        self.cum_load = 0
        self.mem_base = service.mem_mib * 1024**2
        self.mem_limit = 2 * self.mem_base
        self.protos: dict[LogTemplate, dict] = {}  # log event prototypes, filled by the generator


class User:
    """A shop customer: currency, current session, orders that may be refunded."""

    __slots__ = ("id", "currency", "session", "session_left", "orders", "last_refund_ms")

    def __init__(self, index: int, currency: str):
        self.id = f"u{index:06d}"
        self.currency = currency
        self.session = ""
        self.session_left = 0
        self.orders: list[tuple[str, float, str, int]] = []  # (order_id, amount, provider, bought at ms)
        self.last_refund_ms = -(10**15)


@dataclass
class Fleet:
    """Everything the generator needs to know about the shop, built by ``build_fleet``."""

    services: dict[str, ServiceSpec]
    pods: dict[str, list[Pod]]
    hosts: list[Host]
    providers: tuple[ProviderSpec, ...]
    products: list[tuple[str, float]]  # (sku, unit price)
    users: list[User]

    @property
    def all_pods(self) -> list[Pod]:
        """Every pod, services in order."""
        return [p for pods in self.pods.values() for p in pods]


def build_fleet(rng: random.Random, n_services: int, replicas: int, n_hosts: int, n_users: int, n_providers: int) -> Fleet:
    """Services spread round-robin over hosts, products with prices, users with currencies."""
    specs = services(n_services)
    hosts = [Host(i) for i in range(n_hosts)]
    pods: dict[str, list[Pod]] = {}
    slot = 0
    for spec in specs:
        pods[spec.name] = []
        for r in range(replicas):
            pods[spec.name].append(Pod(spec, r, hosts[slot % n_hosts], rng))
            slot += 1
    products = [(f"sku-{rng.randrange(10**6):06d}", round(rng.lognormvariate(math.log(40), 0.8), 2)) for _ in range(200)]
    cur_names = [c for c, _ in CURRENCIES]
    cur_weights = [w for _, w in CURRENCIES]
    users = [User(i, rng.choices(cur_names, cur_weights)[0]) for i in range(n_users)]
    return Fleet({s.name: s for s in specs}, pods, hosts, PROVIDERS[: max(1, min(n_providers, len(PROVIDERS)))], products, users)
