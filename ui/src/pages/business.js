// Business: transactions, page views, amounts per interval; simultaneous users; payment retries by provider.
import { getJSON, url } from "../api.js";
import { timeChart } from "../chart.js";
import { h, fill, num, pct, table } from "../dom.js";
import { panel } from "../panel.js";
import { intervalFor } from "../state.js";

export const title = "Business";

export function mount(root) {
  const tx = timeChart("transactions", "Transactions per interval", { bars: true, colors: { transactions: "#29a36a", "failed buys": "#e4572e" } });
  const views = timeChart("page-views", "Page views per interval", { bars: true });
  const amounts = timeChart("amounts", "Amounts per interval", { bars: true, colors: { sales: "#2f7ed8", refunds: "#e4572e" } });
  const users = timeChart("users", "Simultaneous users (trailing window)", { colors: { viewing: "#2f7ed8", buying: "#29a36a" } });
  const retries = panel("retries", "Payment retries by provider and eventual outcome", {
    wide: true, note: "A retry is a purchase with more than one payment attempt; its outcome is that of its last attempt.",
  });
  root.append(h("div", { class: "panels" }, tx.el, views.el, amounts.el, users.el, retries.el));

  async function refresh(ctx) {
    const interval = intervalFor(ctx.params, ctx.range, ["15m", "1h", "3h", "1d"], 100);
    const step = intervalFor(ctx.params, ctx.range, ["1m", "5m", "15m", "1h", "3h", "1d"]);
    const bq = { start: ctx.range.start, end: ctx.range.end, interval };
    const uq = { start: ctx.range.start, end: ctx.range.end, step };
    await Promise.all([
      getJSON("/business", bq, ctx.signal).then((body) => {
        const source = url("/business", bq);
        const times = body.totals.map((r) => Date.parse(r.bucket));
        tx.update(times, { transactions: body.totals.map((r) => r.transactions), "failed buys": body.totals.map((r) => r.failed_buys) }, source);
        views.update(times, { "page views": body.totals.map((r) => r.page_views) }, source);
        amounts.update(times, { sales: body.totals.map((r) => r.transaction_amount), refunds: body.totals.map((r) => r.refund_amount) }, source);
        showRetries(body.retries, source);
      }).catch((err) => {
        if (err.name === "AbortError") throw err;
        [tx, views, amounts, retries].forEach((p) => p.error(err));
      }),
      getJSON("/users", uq, ctx.signal).then((body) => {
        users.update(body.users.map((r) => Date.parse(r.t)), { viewing: body.users.map((r) => r.viewing), buying: body.users.map((r) => r.buying) }, url("/users", uq));
      }).catch((err) => {
        if (err.name === "AbortError") throw err;
        users.error(err);
      }),
    ]);
  }

  function showRetries(rows, source) {
    const byProvider = new Map();
    for (const r of rows) {
      const acc = byProvider.get(r.provider) || { provider: r.provider, retries: 0, succeeded: 0, failed: 0, attempts: 0 };
      for (const k of ["retries", "succeeded", "failed", "attempts"]) acc[k] += r[k];
      byProvider.set(r.provider, acc);
    }
    const totals = [...byProvider.values()].sort((a, b) => b.retries - a.retries);
    retries.el.dataset.rows = JSON.stringify(totals);
    if (!totals.length) return retries.empty("No payment was retried in this range.", source);
    fill(retries.content, table([
      { label: "provider", value: (r) => r.provider },
      { label: "retried purchases", value: (r) => num(r.retries), class: "n" },
      { label: "succeeded in the end", value: (r) => num(r.succeeded), class: "n" },
      { label: "failed in the end", value: (r) => num(r.failed), class: "n" },
      { label: "eventual success", value: (r) => h("span", { class: r.failed > r.succeeded ? "bad-text" : "" }, pct(r.retries ? r.succeeded / r.retries : null)), class: "n" },
      { label: "attempts", value: (r) => num(r.attempts), class: "n" },
      { label: "attempts per purchase", value: (r) => num(r.retries ? r.attempts / r.retries : null), class: "n" },
    ], totals, (r, tr) => { tr.dataset.provider = r.provider; }));
    retries.ready(source);
  }

  return { refresh, destroy() { [tx, views, amounts, users].forEach((c) => c.destroy()); } };
}
