"""The simulator: users acting on the shop, the fleet logging it, hosts reporting metrics.

Time is simulated. Actions (a page view, a purchase, ...) arrive one after the other; after each,
the clock advances by ``events of the action / rate`` (times an exponential jitter), so the event
time rate is the asked rate whatever the mix. An action writes its events at their own times
(a purchase with retries spans seconds) into 100 ms buckets; a bucket is sorted and released once
no later action can write into it, so the output is sorted by ``ts`` and a run cut by count or
duration is a clean prefix of the simulated world.

Per-event work is kept small (a copied prototype dict per pod and log template, table-driven
log-normal draws, one ``random.Random``, id and ts strings formatted at release in order) because
benchmarks use this as their load source.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import threading
import time
from collections import Counter
from concurrent.futures import Future
from operator import itemgetter
from statistics import NormalDist
from typing import Any, Callable, Iterator

from fleetlens.simulate.config import SimulationConfig
from fleetlens.simulate.model import GC_PAUSE, HEALTH, PAGES, LogTemplate, Pod, ProviderSpec, User, build_fleet
from fleetlens.simulate.scenarios import AnomalyLabel, ScenarioSpec, install

MAX_ATTEMPTS = 3
BACKOFF_MS = 200.0  # before attempt n+1: BACKOFF_MS * 2**(n-1), +-20 % jitter
NORMAL_CPU_CAP = 85.0  # normal load never reaches cpu_saturation's > 95 %
REFUND_MIN_AGE_MS = 60_000  # a normal user refunds an order at least a minute after buying it...
REFUND_EVERY_MS = 3_600_000  # ...and at most once an hour

# Natural action mix (cumulative thresholds of one uniform draw).
_MIX = (("page_view", 0.70), ("browse", 0.78), ("purchase", 0.91), ("reserve_cancel", 0.97), ("refund", 1.0))

# Every field a message template may use, with neutral values.
_CTX: dict[str, Any] = {
    "a": "", "u": "", "sess": "", "o": "", "p": "", "q": 1, "amt": 0.0, "cur": "", "prov": "", "att": 1,
    "code": "", "d": 0.0, "backoff": 0, "method": "GET", "path": "/", "status": 200, "template": "", "reason": "",
}

BUCKET_MS = 100  # events wait in 100 ms buckets until no later action can write into them

# Standard normal quantiles: a log-normal draw is one uniform draw and one exp (random.lognormvariate
# is pure Python and was a fifth of the generation time).
_ZN = 4096
_Z = tuple(NormalDist().inv_cdf((i + 0.5) / _ZN) for i in range(_ZN))
_MS = tuple(f".{i:03d}Z" for i in range(1000))  # ts suffixes
_by_ts = itemgetter(0)  # list.sort is stable: equal ts keep their creation order

Window = tuple[int, int, float, AnomalyLabel]


def active(windows: list[Window] | None, t: int) -> Window | None:
    """The scenario window covering ``t``, if any."""
    if windows:
        for w in windows:
            if w[0] <= t < w[1]:
                return w
    return None


def format_ts(ms: int) -> str:
    """RFC 3339 UTC with milliseconds: ``2026-11-22T10:15:00.123Z``."""
    sec, milli = divmod(ms, 1000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(sec))}.{milli:03d}Z"


class Simulator:
    """Deterministic generator of contract events for one ``SimulationConfig``.

    Iterate ``batches()`` (lists of event dicts, in ``ts`` order) or ``events()`` once; afterwards
    ``counts``, ``operations`` and ``labels()`` describe what was produced.
    """

    def __init__(self, config: SimulationConfig):
        self.config = config
        self.rng = random.Random(config.seed)
        self.fleet = build_fleet(self.rng, config.services, config.replicas, config.hosts, config.users, config.providers)
        self.start_ms = config.start_ms
        self.counts: Counter[str] = Counter({"log": 0, "metric": 0, "business": 0})
        self.operations: Counter[str] = Counter()
        # Scenario effects (see scenarios.install): key -> [(start ms, end ms, strength, label)],
        # applied to events whose own time falls in the window.
        self.outages: list[tuple[str, int, int, AnomalyLabel]] = []
        self.latency: dict[str, list[Window]] = {}  # operation -> duration factor
        self.error_boost: dict[str, list[Window]] = {}  # service -> share of failing requests
        self.cpu_pinned: dict[str, list[Window]] = {}  # host
        self.traffic_drop: list[Window] = []  # share of the normal action rate left

        self._prefix = config.id_prefix
        self._buckets: dict[int, list[tuple[int, dict[str, Any], AnomalyLabel | None]]] = {}
        self._made = 0  # events written into buckets
        self._sched: list[tuple[float, int, Callable[[int], None]]] = []
        self._seq = itertools.count()
        self._n_actions = 0
        self._n_orders = 0
        self._n_sessions = 0
        self._emitted = 0
        self._normal_users = list(self.fleet.users)
        self._pods = self.fleet.all_pods
        self._cum_total = 0
        n_pods, n_hosts = len(self._pods), len(self.fleet.hosts)
        interval_ms = config.metrics_interval_s * 1000
        # metrics (3 per pod and host) and one health-check log per pod, every interval
        self._background_rate = (4 * n_pods + 3 * n_hosts) / config.metrics_interval_s
        self._prov_cum = list(itertools.accumulate(p.share for p in self.fleet.providers))
        self._t_next = float(self.start_ms)
        self._started = False
        self.last_ms: int | None = None  # ts of the last event released
        self._labels = [install(self, spec, i, config.expected_length_s) for i, spec in enumerate(config.scenarios)]
        self._injections: list[tuple[ScenarioSpec, float, Future]] = []  # asked for by other threads
        self._inject_lock = threading.Lock()
        self.schedule(self.start_ms + interval_ms, self._metrics_tick)

    # ---- public API -------------------------------------------------------------------------

    def events(self) -> Iterator[dict[str, Any]]:
        """Every event, one dict at a time, in ``ts`` order."""
        for batch in self.batches():
            yield from batch

    def batches(self, max_batch: int = 4096) -> Iterator[list[dict[str, Any]]]:
        """Events in lists of at most ``max_batch``, in ``ts`` order, until the config's count/duration."""
        if self._started:
            raise RuntimeError("a Simulator runs once; make a new one")
        self._started = True
        cfg = self.config
        end = self.start_ms + round(cfg.duration_s * 1000) if cfg.duration_s is not None else math.inf
        limit = cfg.count if cfg.count is not None else math.inf
        if limit == 0:
            return
        buckets, sched, heappop = self._buckets, self._sched, heapq.heappop
        counts, ops, prefix = self.counts, self.operations, self._prefix
        n = self._emitted
        next_k = self.start_ms // BUCKET_MS
        last_sec, sec_str, last_ts = -1, "", 0
        out: list[dict[str, Any]] = []
        while True:
            if self._injections:
                self._install_injections()
            if sched and sched[0][0] <= self._t_next:
                t, _, fn = heappop(sched)
                fn(int(t))
            else:
                t = self._t_next
                made = self._made
                self._natural(int(t))
                k = max(1, self._made - made)
                self._t_next = t + k * 1000.0 / self._action_rate(t) * self.rng.expovariate(1.0)
            # every later event has ts >= floor(horizon): buckets wholly before it are complete
            horizon = math.floor(min(self._t_next, sched[0][0] if sched else math.inf, end))
            final = horizon >= end
            last_k = (horizon - 1) // BUCKET_MS if final else horizon // BUCKET_MS - 1
            while next_k <= last_k:
                bucket = buckets.pop(next_k, None)
                next_k += 1
                if not bucket:
                    continue
                bucket.sort(key=_by_ts)
                for ts, ev, tag in bucket:
                    if ts >= end:
                        break
                    ev["event_id"] = f"{prefix}-{n}"
                    n += 1
                    sec = ts // 1000
                    if sec != last_sec:
                        last_sec, sec_str = sec, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
                    ev["ts"] = sec_str + _MS[ts % 1000]
                    kind = ev["kind"]
                    counts[kind] += 1
                    if kind == "business":
                        ops[ev["operation"]] += 1
                    if tag is not None:
                        tag.emitted(ts, ev)
                    out.append(ev)
                    last_ts = ts
                    if n >= limit or len(out) >= max_batch:
                        self._emitted, self.last_ms = n, ts
                        yield out
                        if n >= limit:
                            return
                        out = []
            if final:
                if out:
                    self._emitted, self.last_ms = n, last_ts
                    yield out
                return

    def inject(self, spec: ScenarioSpec, lead_s: float = 2.0) -> Future:
        """Ask a running simulation (another thread) to start ``spec`` ``lead_s`` simulated seconds from now.

        ``spec.start_s`` is ignored; the default duration is 120 s. The future resolves to the
        scenario's ``AnomalyLabel`` once installed.
        """
        done: Future = Future()
        with self._inject_lock:
            self._injections.append((spec, lead_s, done))
        return done

    def _install_injections(self) -> None:
        with self._inject_lock:
            todo, self._injections = self._injections, []
        for spec, lead_s, done in todo:
            try:
                start_s = (self._t_next - self.start_ms) / 1000 + lead_s
                spec = ScenarioSpec(spec.name, spec.target, start_s, spec.duration_s or 120.0)
                label = install(self, spec, len(self._labels), self.config.expected_length_s)
                self._labels.append(label)
                done.set_result(label)
            except Exception as exc:  # noqa: BLE001 - handed to the caller
                done.set_exception(exc)

    def labels(self) -> list[dict[str, Any]]:
        """Labels-file lines of the scenarios whose anomaly made it into the output."""
        return [lab.to_json(format_ts) for lab in self._labels if lab.events]

    def skipped_scenarios(self) -> list[str]:
        """Ids of scenarios that emitted nothing (their window lies after the run's end)."""
        return [lab.id for lab in self._labels if not lab.events]

    @property
    def emitted(self) -> int:
        """Events released so far."""
        return self._emitted

    # ---- hooks used by scenarios -------------------------------------------------------------

    def schedule(self, t_ms: float, fn: Callable[[int], None]) -> None:
        """Run ``fn(t)`` when simulated time reaches ``t_ms``."""
        heapq.heappush(self._sched, (t_ms, next(self._seq), fn))

    def pick_user(self) -> User:
        """A random user of the normal population."""
        users = self._normal_users
        return users[int(self.rng.random() * len(users))]

    def take_user(self, user_id: str | None = None) -> User:
        """Take a user out of the normal population (a scenario's actor)."""
        if user_id is None:
            user = self._normal_users[self.rng.randrange(len(self._normal_users))]
        else:
            found = [u for u in self._normal_users if u.id == user_id]
            if not found:
                raise ValueError(f"no free user {user_id!r} (users are u000000..u{len(self.fleet.users) - 1:06d})")
            user = found[0]
        self._normal_users.remove(user)
        return user

    # ---- actions ----------------------------------------------------------------------------

    def _natural(self, t: int) -> None:
        """One action of a random normal user."""
        r = self.rng.random()
        user = self.pick_user()
        if r < _MIX[0][1]:
            self.page_view(t, user)
        elif r < _MIX[1][1]:
            self.browse(t, user)
        elif r < _MIX[2][1]:
            self.purchase(t, user)
        elif r < _MIX[3][1]:
            self.reserve(t, user, cancel=True)
        elif not self.refund(t, user):
            self.page_view(t, user)

    def page_view(self, t: int, user: User) -> None:
        """A user opens a page: gateway, catalog (product pages), maybe a supporting service."""
        rng = self.rng
        page = PAGES[int(rng.random() * len(PAGES))]
        ctx = self._ctx(t, user, method="GET", path=page)
        t1 = self._hop(t, "gateway", ctx)
        if page.startswith(("/product", "/category", "/search")):
            ctx["p"] = self._product()[0]
            t1 = self._hop(t1, "catalog", ctx)
        extras = self._extras()
        if extras and rng.random() < 0.5:
            t1 = self._hop(t1, extras[int(rng.random() * len(extras))], ctx)
        drop = active(self.traffic_drop, t1) if self.traffic_drop else None
        self._business(t1, "gateway", "page_view", ctx, float(t1 - t + 1), drop[3] if drop else None, page=page)

    def browse(self, t: int, user: User) -> None:
        """Requests without a business event (search, cart look-ups): logs only."""
        ctx = self._ctx(t, user, method="GET", path="/api/cart")
        t1 = self._hop(t, "gateway", ctx)
        self._hop(t1, "cart", ctx)

    def purchase(self, t: int, user: User, tag: AnomalyLabel | None = None, provider: str | None = None,
                 force_success: bool = False) -> dict[str, Any]:
        """Checkout: reserve -> payment attempt(s) with retries -> buy, one action_id throughout.

        Returns the order (``order_id``, ``amount``, ``provider``, ``outcome``, ``bought_ms``).
        """
        rng = self.rng
        sku, price = self._product()
        qty = 1 + int(rng.random() * 3)
        amount = round(price * qty, 2)
        order = self._order_id()
        ctx = self._ctx(t, user, method="POST", path="/api/checkout", o=order, p=sku, q=qty, amt=amount, cur=user.currency)
        t1 = self._hop(t, "gateway", ctx)
        t1 = self._hop(t1, "cart", ctx)
        t1 = self._hop(t1, "catalog", ctx)
        t1 = self._reserve_step(t1, ctx)
        t1 = self._hop(t1, "order", ctx)
        t1 = self._log_named(t1, "order", "created", ctx)
        prov = self._provider(provider)
        ctx["prov"] = prov.name
        t1 = self._hop(t1, "payment", ctx)
        outcome, code, attempt, t1, failed_tag = self._pay(t1, prov, ctx, force_success)
        ok = outcome == "success"
        ctx["att"], ctx["code"] = attempt, code
        t1 = self._log_named(t1, "order", "paid" if ok else "failed", ctx)
        extra: dict[str, Any] = {"order_id": order, "amount": amount, "currency": user.currency, "outcome": outcome}
        if not ok:
            extra["error_code"] = code
        self._business(t1, "order", "buy", ctx, float(t1 - t), tag or failed_tag, **extra)
        bought = t1
        if ok:
            user.orders.append((order, amount, prov.name, bought))
        else:
            ctx["reason"] = "payment failed"
            t1 = self._log_named(t1, "reservation", "released", ctx)
        ctx["template"] = "order_confirmation" if ok else "payment_failed"
        self._hop(t1 + 5, "notification", ctx)
        return {"order_id": order, "amount": amount, "provider": prov.name, "outcome": outcome, "bought_ms": bought}

    def reserve(self, t: int, user: User, tag: AnomalyLabel | None = None, product: tuple[str, float] | None = None,
                qty: int | None = None, cancel: bool = False) -> None:
        """A reservation without checkout; with ``cancel`` the user releases it 5-60 s later."""
        rng = self.rng
        sku, price = product or self._product()
        qty = qty or 1 + int(rng.random() * 3)
        ctx = self._ctx(t, user, method="POST", path="/api/reservations", o=self._order_id(), p=sku, q=qty,
                        amt=round(price * qty, 2), cur=user.currency)
        t1 = self._hop(t, "gateway", ctx)
        self._reserve_step(t1, ctx, tag)
        if cancel:
            t2 = t1 + int(5000 + rng.random() * 55000)
            ctx["method"], ctx["path"], ctx["reason"] = "DELETE", f"/api/reservations/{ctx['o']}", "cancelled by user"
            t3 = self._hop(t2, "gateway", ctx)
            t3 = self._hop(t3, "reservation", ctx)
            t3 = self._log_named(t3, "reservation", "released", ctx)
            self._business(t3, "reservation", "cancel_reservation", ctx, float(t3 - t2), order_id=ctx["o"])

    def refund(self, t: int, user: User, tag: AnomalyLabel | None = None, order: dict[str, Any] | None = None) -> bool:
        """Refund one of the user's bought orders (normal users: old enough, at most hourly)."""
        if order is None:
            if not user.orders or t - user.orders[0][3] < REFUND_MIN_AGE_MS or t - user.last_refund_ms < REFUND_EVERY_MS:
                return False
            order_id, amount, prov, _ = user.orders.pop(0)
        else:
            order_id, amount, prov = order["order_id"], order["amount"], order["provider"]
        user.last_refund_ms = t
        ctx = self._ctx(t, user, method="POST", path=f"/api/orders/{order_id}/refund", o=order_id, amt=amount,
                        cur=user.currency, prov=prov)
        t1 = self._hop(t, "gateway", ctx)
        t1 = self._hop(t1, "order", ctx)
        t1 = self._hop(t1, "payment", ctx)
        spec = self._provider(prov)
        ctx["d"] = round(self._lognormal(spec.latency_ms * 1.5, spec.sigma), 1)
        t1 = self._log_named(t1, "payment", "refund_ok", ctx, keep_d=True)
        t1 = self._log_named(t1, "order", "refunded", ctx)
        self._business(t1, "order", "refund", ctx, float(t1 - t), tag, order_id=order_id, amount=amount,
                       currency=user.currency, outcome="success", provider=prov)
        ctx["template"] = "refund_confirmation"
        self._hop(t1 + 5, "notification", ctx)
        return True

    def failed_request(self, t: int, service: str, tag: AnomalyLabel) -> None:
        """A request to ``service`` that fails with an error log (error_spike's extra load)."""
        ctx = self._ctx(t, self.pick_user(), method="GET", path=f"/api/{service}")
        pods = self.fleet.pods[service]
        pod = pods[int(self.rng.random() * len(pods))]
        errors = self.fleet.services[service].errors
        self._log(t, pod, errors[int(self.rng.random() * len(errors))], ctx, tag)

    def crash(self, t: int, service: str, tag: AnomalyLabel) -> None:
        """One pod of ``service`` crashes: an ``error`` log of event_type ``crash`` (service_crash)."""
        pods = self.fleet.pods[service]
        pod = pods[int(self.rng.random() * len(pods))]
        self._put(t, {"event_id": "", "ts": "", "kind": "log", **pod.base, "level": "error", "event_type": "crash",
                      "message": f"process exited: OOMKilled (exit code 137), restarting container {pod.base.get('container', '')}",
                      "logger": "runtime", "source_file": "", "line": 0}, tag)

    # ---- building blocks ---------------------------------------------------------------------

    def _ctx(self, t: int, user: User, **fields: Any) -> dict[str, Any]:
        self._n_actions += 1
        if user.session_left <= 0:
            self._n_sessions += 1
            user.session = f"{self._prefix}-s{self._n_sessions}"
            user.session_left = 1 + int(self.rng.expovariate(1 / 12))
        user.session_left -= 1
        ctx = _CTX.copy()
        ctx["a"] = f"{self._prefix}-a{self._n_actions}"
        ctx["u"] = user.id
        ctx["sess"] = user.session
        ctx.update(fields)
        return ctx

    def _order_id(self) -> str:
        self._n_orders += 1
        return f"ord-{self._prefix}-{self._n_orders}"

    def _product(self) -> tuple[str, float]:
        products = self.fleet.products
        # a few best sellers get most of the traffic
        return products[int(len(products) * self.rng.random() ** 2)]

    def _provider(self, name: str | None) -> ProviderSpec:
        providers = self.fleet.providers
        if name is not None:
            return next(p for p in providers if p.name == name)
        r = self.rng.random() * self._prov_cum[-1]
        for p, c in zip(providers, self._prov_cum):
            if r < c:
                return p
        return providers[-1]

    def _extras(self) -> list[str]:
        return [s for s in self.fleet.services if s not in ("gateway", "catalog", "cart", "reservation", "order", "payment", "notification")]

    def _action_rate(self, t: float) -> float:
        """Events/s left for actions at time t: the load wave minus metrics and health checks."""
        cfg = self.config
        wave = 1.0 + cfg.load_wave_amplitude * math.sin(2 * math.pi * (t - self.start_ms) / (cfg.load_wave_period_s * 1000))
        rate = max(cfg.rate * wave - self._background_rate, 0.05 * cfg.rate)
        drop = active(self.traffic_drop, int(t)) if self.traffic_drop else None
        return rate * drop[2] if drop is not None else rate

    def _hop(self, t: int, service: str, ctx: dict[str, Any], tag: AnomalyLabel | None = None) -> int:
        """One request handled by ``service``: its request logs, maybe an error; returns when it ended."""
        pods = self.fleet.pods.get(service)
        if not pods:  # a fleet with fewer services skips the missing step
            return t
        rnd = self.rng.random
        pod = pods[int(rnd() * len(pods))]
        spec = self.fleet.services[service]
        for p, tmpl in spec.request:
            if p >= 1.0 or rnd() < p:
                t = self._log(t, pod, tmpl, ctx)
        boost = active(self.error_boost.get(service), t)
        if boost is not None and rnd() < boost[2]:
            t = self._log(t, pod, spec.errors[int(rnd() * len(spec.errors))], ctx, boost[3])
        elif rnd() < spec.error_rate:
            t = self._log(t, pod, spec.errors[int(rnd() * len(spec.errors))], ctx, tag)
        return t

    def _reserve_step(self, t: int, ctx: dict[str, Any], tag: AnomalyLabel | None = None) -> int:
        t0 = t
        t = self._hop(t, "reservation", ctx)
        t = self._log_named(t, "reservation", "reserved", ctx)
        self._business(t, "reservation", "reserve", ctx, float(t - t0 + 1), tag, order_id=ctx["o"], amount=ctx["amt"],
                       currency=ctx["cur"])
        return t

    def _pay(self, t: int, prov: ProviderSpec, ctx: dict[str, Any], force_success: bool) -> tuple[str, str, int, int, AnomalyLabel | None]:
        """Payment attempts with backoff; returns (outcome, error_code, attempts, end time, outage label)."""
        rng = self.rng
        outage_label = None
        for attempt in range(1, MAX_ATTEMPTS + 1):
            code, lat, down = self._charge(t, prov, force_success)
            outage_label = down or outage_label
            t_end = t + int(lat)
            ok = not code
            ctx["att"], ctx["code"], ctx["d"] = attempt, code, round(lat, 1)
            extra: dict[str, Any] = {"amount": ctx["amt"], "currency": ctx["cur"], "provider": prov.name,
                                     "attempt": attempt, "outcome": "success" if ok else "failure"}
            if code:
                extra["error_code"] = code
            self._business(t_end, "payment", "payment_attempt", ctx, round(lat, 1), down, **extra)
            if ok:
                return "success", "", attempt, self._log_named(t_end, "payment", "call_ok", ctx, keep_d=True), outage_label
            if code == "card_declined" or attempt == MAX_ATTEMPTS:
                return "failure", code, attempt, self._log_named(t_end, "payment", "call_failed", ctx, keep_d=True), outage_label
            backoff = int(BACKOFF_MS * 2 ** (attempt - 1) * (0.8 + 0.4 * rng.random()))
            ctx["backoff"] = backoff
            self._log_named(t_end, "payment", "call_retry", ctx, keep_d=True)
            t = t_end + backoff
        raise AssertionError("unreachable")  # pragma: no cover

    def _charge(self, t: int, prov: ProviderSpec, force_success: bool) -> tuple[str, float, AnomalyLabel | None]:
        """One call to the provider: (error code or "", latency ms, outage label if the outage caused it)."""
        rng = self.rng
        for name, start, end, label in self.outages:
            if name == prov.name and start <= t < end:
                if rng.random() < 0.6:
                    return "provider_timeout", prov.timeout_ms, label
                return "provider_503", self._lognormal(40.0, 0.4), label
        lat = self._lognormal(prov.latency_ms, prov.sigma)
        if force_success:
            return "", lat, None
        r = rng.random()
        if r < prov.p_timeout:
            return "provider_timeout", prov.timeout_ms, None
        r -= prov.p_timeout
        if r < prov.p_503:
            return "provider_503", lat * 0.2, None
        r -= prov.p_503
        if r < prov.p_declined:
            return "card_declined", lat, None
        return "", lat, None

    def _lognormal(self, median: float, sigma: float) -> float:
        return median * math.exp(sigma * _Z[int(self.rng.random() * _ZN)])

    def _put(self, t: int, ev: dict[str, Any], tag: AnomalyLabel | None) -> None:
        """File an event under its 100 ms bucket."""
        k = t // BUCKET_MS
        bucket = self._buckets.get(k)
        if bucket is None:
            self._buckets[k] = bucket = []
        bucket.append((t, ev, tag))
        self._made += 1

    def _log(self, t: int, pod: Pod, tmpl: LogTemplate, ctx: dict[str, Any], tag: AnomalyLabel | None = None,
             duration: float | None = None) -> int:
        """Write one log line at ``t``; returns the time after the work it reports.

        ``duration`` reports a duration measured elsewhere (e.g. the provider call's).
        """
        proto = pod.protos.get(tmpl)
        if proto is None:
            proto = pod.protos[tmpl] = {
                "event_id": "", "ts": "", "kind": "log", **pod.base, "level": tmpl.level, "event_type": tmpl.event_type,
                "message": "", "action_id": "", "user_id": "", "logger": tmpl.logger, "source_file": tmpl.source_file,
                "line": tmpl.line}
        ev = proto.copy()  # a dict copy is ~4x cheaper than building the dict
        ev["action_id"] = ctx["a"]
        ev["user_id"] = ctx["u"]
        if tmpl.duration_ms:
            d = int(tmpl.duration_ms * math.exp(tmpl.sigma * _Z[int(self.rng.random() * _ZN)]) * 100) / 100
            ctx["d"] = d
            ev["duration_ms"] = d
            t += int(d)
        elif duration is not None:
            ev["duration_ms"] = duration
        ev["message"] = tmpl.message.format_map(ctx)
        pod.load += 1
        # inlined self._put: this is the hottest path
        k = t // BUCKET_MS
        bucket = self._buckets.get(k)
        if bucket is None:
            self._buckets[k] = bucket = []
        bucket.append((t, ev, tag))
        self._made += 1
        return t + 1

    def _log_named(self, t: int, service: str, name: str, ctx: dict[str, Any], keep_d: bool = False) -> int:
        """A flow-specific log line; ``keep_d`` reports ctx's duration (e.g. the provider call's)."""
        pods = self.fleet.pods.get(service)
        if not pods:
            return t
        pod = pods[int(self.rng.random() * len(pods))]
        return self._log(t, pod, self.fleet.services[service].named[name], ctx, duration=ctx["d"] if keep_d else None)

    def _business(self, t: int, service: str, op: str, ctx: dict[str, Any], duration: float,
                  tag: AnomalyLabel | None = None, **fields: Any) -> None:
        pods = self.fleet.pods.get(service) or self.fleet.pods[next(iter(self.fleet.pods))]
        pod = pods[int(self.rng.random() * len(pods))]
        slow = active(self.latency.get(op), t)
        if slow is not None:
            duration *= slow[2]
            tag = tag or slow[3]
        ev = {"event_id": "", "ts": "", "kind": "business", **pod.base, "operation": op, "action_id": ctx["a"],
              "user_id": ctx["u"], "session_id": ctx["sess"], **fields, "duration_ms": round(duration, 1)}
        pod.load += 1
        self._put(t, ev, tag)

    def _metrics_tick(self, t: int) -> None:
        """cpu/mem of every pod and host, from the load since the last tick; health-check logs."""
        cfg = self.config
        rng = self.rng
        interval_ms = cfg.metrics_interval_s * 1000
        self.schedule(t + interval_ms, self._metrics_tick)
        tick_load = sum(p.load for p in self._pods)
        self._cum_total += tick_load
        # Each pod's share of the traffic is learned over the run; the load wave shows as the
        # ratio of this tick's load to the mean-rate expectation.
        expected_total = max(cfg.rate - self._background_rate, 0.05 * cfg.rate) * cfg.metrics_interval_s
        host_load: dict[str, int] = {h.name: 0 for h in self.fleet.hosts}
        for pod in self._pods:
            pod.cum_load += pod.load
            host_load[pod.host.name] += pod.load
            ratio = pod.load / (expected_total * pod.cum_load / self._cum_total) if pod.cum_load else 0.0
            pinned = active(self.cpu_pinned.get(pod.host.name), t) is not None
            cpu = 90 + rng.random() * 9 if pinned else self._cpu(ratio)
            mem = int(pod.mem_base * (1.0 + 0.15 * ratio) + rng.gauss(0, 4) * 1024**2)
            self._metrics(t, pod.base, cpu, mem, pod.mem_limit, None)
            self._background_log(t + int(rng.random() * 50), pod, HEALTH)
            if rng.random() < 0.02:
                self._background_log(t + int(rng.random() * 500), pod, GC_PAUSE)
            pod.load = 0
        for host in self.fleet.hosts:
            host.cum_load += host_load[host.name]
            ratio = host_load[host.name] / (expected_total * host.cum_load / self._cum_total) if host.cum_load else 0.0
            pin = active(self.cpu_pinned.get(host.name), t)
            label = pin[3] if pin else None
            cpu = 96 + rng.random() * 3.8 if label else self._cpu(ratio)
            used = sum(p.mem_base for p in self._pods if p.host is host) + 2 * 1024**3 + int(ratio * 256 * 1024**2)
            self._metrics(t, host.base, cpu, used, host.mem_total, label)

    def _background_log(self, t: int, pod: Pod, tmpl: LogTemplate) -> None:
        """A log line outside any user action (health checks, GC): no action_id, not load."""
        d = round(self._lognormal(tmpl.duration_ms, tmpl.sigma), 2)
        self._put(t, {"event_id": "", "ts": "", "kind": "log", **pod.base, "level": tmpl.level,
                              "event_type": tmpl.event_type, "message": tmpl.message.format(d=d), "logger": tmpl.logger,
                              "source_file": tmpl.source_file, "line": tmpl.line, "duration_ms": d}, None)

    def _cpu(self, ratio: float) -> float:
        return min(NORMAL_CPU_CAP, max(0.5, 6.0 + 40.0 * ratio + self.rng.gauss(0, 1.5)))

    def _metrics(self, t: int, base: dict[str, str], cpu: float, mem: int, mem_total: int, cpu_tag: AnomalyLabel | None) -> None:
        for name, value, unit, tag in (
            ("cpu_percent", round(cpu, 2), "percent", cpu_tag),
            ("mem_percent", round(100.0 * mem / mem_total, 2), "percent", None),
            ("mem_bytes", mem, "bytes", None),
        ):
            self._put(t, {"event_id": "", "ts": "", "kind": "metric", **base, "name": name, "value": value, "unit": unit}, tag)
