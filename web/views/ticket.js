// The trade ticket: agent, symbol (only the agent's), side, lots, SL, TP, a live risk preview
// against the agent's per-trade limit, and the hub's answer (rejections with their check).

import { el, setText, clear } from "../lib/dom.js";
import { money, price, stepDecimals } from "../lib/format.js";
import { tradeRisk } from "../lib/risk.js";
import { describe } from "./positions.js";

export class TradeTicket {
  /**
   * @param {HTMLFormElement} form
   * @param {object} deps  {agents: Map, symbols: object, priceOf(agentId, symbol),
   *                        anyPrice(symbol), send(op) -> Promise}
   */
  constructor(form, deps) {
    this.form = form;
    this.deps = deps;
    this.agentSelect = form.elements.namedItem("agent");
    this.symbolSelect = form.elements.namedItem("symbol");
    this.preview = form.querySelector("[data-preview]");
    this.outcome = form.querySelector("[data-outcome]");
    this.submit = form.querySelector("button[type=submit]");
    for (const agent of deps.agents.values()) {
      const label = `${agent.config.name} (${agent.id})${agent.config.enabled ? "" : " — disabled"}`;
      this.agentSelect.append(el("option", { value: agent.id }, label));
    }
    this.agentSelect.addEventListener("change", () => this.fillSymbols());
    form.addEventListener("input", () => this.refresh());
    form.addEventListener("change", () => this.refresh());
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.send();
    });
    this.fillSymbols();
  }

  get agent() {
    return this.deps.agents.get(this.agentSelect.value);
  }

  fillSymbols() {
    const agent = this.agent;
    clear(this.symbolSelect);
    for (const symbol of agent?.config.symbols || []) {
      this.symbolSelect.append(el("option", { value: symbol }, symbol));
    }
    const spec = this.deps.symbols[this.symbolSelect.value];
    const lots = this.form.elements.namedItem("lots");
    if (spec) {
      lots.step = String(spec.lot_step);
      lots.min = String(spec.min_lots);
      lots.max = String(spec.max_lots);
    }
    this.refresh();
  }

  values() {
    const number = (name) => {
      const raw = this.form.elements.namedItem(name).value.trim();
      return raw === "" ? null : Number(raw);
    };
    return {
      agent: this.agentSelect.value,
      symbol: this.symbolSelect.value,
      action: this.form.elements.namedItem("action").value,
      lots: number("lots"),
      sl: number("sl"),
      tp: number("tp"),
    };
  }

  /** Recompute the risk preview (called on input and on ticks of the chosen symbol). */
  refresh() {
    const agent = this.agent;
    if (!agent) return;
    const v = this.values();
    const spec = this.deps.symbols[v.symbol];
    const currency = agent.account?.currency || "USD";
    const balance = agent.account?.balance;
    const result = tradeRisk({
      ...v,
      tick: this.deps.priceOf(agent.id, v.symbol),
      spec,
      currency,
      symbol: v.symbol,
      priceOf: (s) => this.deps.priceOf(agent.id, s) || this.deps.anyPrice(s),
    });
    const limitFraction = agent.config.risk.max_risk_per_trade;
    const limit = balance !== undefined ? balance * limitFraction : undefined;
    const digits = spec?.digits ?? 5;
    const lines = [];
    if (result.entry !== undefined) lines.push(`entry ≈ ${price(result.entry, digits)}`);
    let verdict = "unknown";
    if (result.problem) {
      lines.push(result.problem);
      verdict = "problem";
    } else {
      const pct = balance ? (result.risk / balance) * 100 : NaN;
      lines.push(
        `risk at SL ${money(result.risk, currency)} = ${pct.toFixed(2)}% of balance ` +
          `${money(balance)} · limit ${money(limit)} (${(limitFraction * 100).toFixed(2)}%)`,
      );
      verdict = limit !== undefined && result.risk > limit + 1e-9 ? "over" : "ok";
      if (verdict === "over") lines.push("above the per-trade limit: the hub will reject it");
    }
    this.preview.dataset.verdict = verdict;
    this.preview.replaceChildren(...lines.map((line) => el("div", {}, line)));
    if (spec) {
      const lots = this.form.elements.namedItem("lots");
      lots.placeholder = `${spec.min_lots} (step ${spec.lot_step.toFixed(stepDecimals(spec.lot_step))})`;
    }
  }

  setEnabled(enabled, why) {
    this.allowed = enabled;
    this.submit.disabled = !enabled;
    this.submit.title = enabled ? "" : why;
  }

  send() {
    const v = this.values();
    const op = { op: "trade", agent: v.agent, symbol: v.symbol, action: v.action, lots: v.lots };
    if (v.sl !== null) op.sl = v.sl;
    if (v.tp !== null) op.tp = v.tp;
    op.client_order_id = `web-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    this.outcome.className = "outcome pending";
    setText(this.outcome, `sending ${v.action} ${v.lots} ${v.symbol}…`);
    this.submit.disabled = true;
    this.deps.send(op).then(
      (reply) => {
        this.outcome.className = "outcome ok";
        const ticket = reply.data?.ticket;
        setText(this.outcome, `filled: ticket ${ticket ?? "?"} ${v.action} ${v.lots} ${v.symbol}`);
      },
      (err) => {
        this.outcome.className = "outcome error";
        this.outcome.dataset.code = err.code || "";
        this.outcome.dataset.check = err.details?.check || "";
        setText(this.outcome, describe(err));
      },
    ).finally(() => {
      this.submit.disabled = this.allowed === false;
    });
  }
}
