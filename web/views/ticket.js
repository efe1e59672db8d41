// The trade ticket: agent, symbol (only the agent's), side, lots, SL, TP, a risk preview
// that is the engine's own decision (a debounced `trade` with `dry_run: true`: every check a
// real trade runs, nothing sent), and the hub's answer (rejections with their check).

import { el, setText, clear } from "../lib/dom.js";
import { money, stepDecimals } from "../lib/format.js";
import { describe } from "./positions.js";

const PREVIEW_DEBOUNCE_MS = 250;
const PREVIEW_REPRICE_MS = 2000; // at most this often on price moves of the chosen symbol

export class TradeTicket {
  /**
   * @param {HTMLFormElement} form
   * @param {object} deps  {agents: Map, symbols: object, send(op) -> Promise}
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
    this.previewSeq = 0;
    this.lastPreviewAt = 0;
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

  /** Ask the engine for its decision on the ticket as it stands (debounced). */
  refresh() {
    clearTimeout(this.previewTimer);
    this.previewTimer = setTimeout(() => this.askEngine(), PREVIEW_DEBOUNCE_MS);
    const spec = this.deps.symbols[this.symbolSelect.value];
    if (spec) {
      const lots = this.form.elements.namedItem("lots");
      lots.placeholder = `${spec.min_lots} (step ${spec.lot_step.toFixed(stepDecimals(spec.lot_step))})`;
    }
  }

  /** A tick of ``symbol`` for ``agentId``: the price moved, so may the decision. */
  priced(agentId, symbol) {
    const v = this.values();
    if (v.agent !== agentId || v.symbol !== symbol) return;
    if (Date.now() - this.lastPreviewAt < PREVIEW_REPRICE_MS || this.previewTimer) return;
    this.refresh();
  }

  askEngine() {
    this.previewTimer = undefined;
    const agent = this.agent;
    if (!agent) return;
    if (this.allowed === false) {
      this.showPreview("disabled", [this.submit.title || "trading is disabled"]);
      return;
    }
    const seq = ++this.previewSeq;
    this.lastPreviewAt = Date.now();
    const op = { ...this.order(), dry_run: true };
    delete op.client_order_id;
    const v = this.values();
    this.preview.dataset.pending = "1";
    this.preview.dataset.for = [v.agent, v.symbol, v.action, v.lots, v.sl, v.tp].join(" ");
    this.deps.send(op).then(
      (reply) => seq === this.previewSeq && this.showAccepted(reply.data, agent),
      (err) => seq === this.previewSeq && this.showRejected(err),
    );
  }

  showAccepted(data, agent) {
    const risk = data?.risk || {};
    const currency = agent.account?.currency || "USD";
    const pct = typeof risk.risk_pct === "number" ? `${risk.risk_pct.toFixed(2)}%` : "?";
    this.showPreview("ok", [`engine: accepted`, `risk at SL ${money(risk.risk, currency)} = ${pct} of balance`], {
      code: "",
      check: "",
      risk: String(risk.risk ?? ""),
      riskPct: String(risk.risk_pct ?? ""),
    });
  }

  showRejected(err) {
    const details = err.details || {};
    const verdict = err.code === "offline" || err.code === "timeout" ? "unknown" : "rejected";
    this.showPreview(verdict, [`engine: ${describe(err)}`], {
      code: err.code || "",
      check: details.check || "",
      value: details.value === undefined ? "" : JSON.stringify(details.value),
      limit: details.limit === undefined ? "" : JSON.stringify(details.limit),
    });
  }

  showPreview(verdict, lines, data = {}) {
    const node = this.preview;
    for (const key of ["code", "check", "value", "limit", "risk", "riskPct", "pending"]) delete node.dataset[key];
    Object.assign(node.dataset, data);
    node.dataset.verdict = verdict;
    node.replaceChildren(...lines.map((line) => el("div", {}, line)));
  }

  setEnabled(enabled, why) {
    this.allowed = enabled;
    this.submit.disabled = !enabled;
    this.submit.title = enabled ? "" : why;
    for (const field of this.form.elements) {
      if (field !== this.agentSelect && field !== this.symbolSelect) field.disabled = !enabled;
    }
    this.refresh();
  }

  /** The trade op for the ticket as it stands (what send() and the preview send). */
  order() {
    const v = this.values();
    const op = { op: "trade", agent: v.agent, symbol: v.symbol, action: v.action, lots: v.lots };
    if (v.sl !== null) op.sl = v.sl;
    if (v.tp !== null) op.tp = v.tp;
    op.client_order_id = `web-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    return op;
  }

  send() {
    if (this.allowed === false) return;
    const v = this.values();
    const op = this.order();
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
