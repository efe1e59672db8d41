// The symbol chart: pick an agent, one of its symbols and a timeframe; candles come from
// GET /api/agents/{id}/candles/{symbol} (history) and then live from agent:{id}:candles.
// Open positions of that agent and symbol draw their entry, SL and TP as price lines.

import { CandleChart } from "../lib/charts.js";
import { el, setText, clear } from "../lib/dom.js";

const HISTORY_BARS = 500;
export const TIMEFRAMES = ["M1", "M5", "M15", "H1"];

export class PriceChart {
  /**
   * @param {{form: HTMLFormElement, chart: HTMLElement, status: HTMLElement}} nodes
   * @param {object} deps  {agents: Map, symbols: object, api(path) -> Promise,
   *                        follow(agentId), unfollow(agentId)}
   */
  constructor(nodes, deps) {
    this.form = nodes.form;
    this.status = nodes.status;
    this.deps = deps;
    this.chart = new CandleChart(nodes.chart);
    this.agentSelect = this.form.elements.namedItem("agent");
    this.symbolSelect = this.form.elements.namedItem("symbol");
    this.tfSelect = this.form.elements.namedItem("tf");
    for (const agent of deps.agents.values()) {
      this.agentSelect.append(el("option", { value: agent.id }, `${agent.config.name} (${agent.id})`));
    }
    for (const tf of TIMEFRAMES) this.tfSelect.append(el("option", { value: tf }, tf));
    this.agentSelect.addEventListener("change", () => {
      this.fillSymbols();
      this.load();
    });
    this.symbolSelect.addEventListener("change", () => this.load());
    this.tfSelect.addEventListener("change", () => this.load());
    this.form.addEventListener("submit", (ev) => ev.preventDefault());
    this.fillSymbols();
    this.following = undefined;
    this.loading = 0;
  }

  get selection() {
    return { agent: this.agentSelect.value, symbol: this.symbolSelect.value, tf: this.tfSelect.value };
  }

  fillSymbols() {
    clear(this.symbolSelect);
    for (const symbol of this.deps.agents.get(this.agentSelect.value)?.config.symbols || []) {
      this.symbolSelect.append(el("option", { value: symbol }, symbol));
    }
  }

  /** Load the selection's history and follow its agent's candles channel. */
  async load() {
    const { agent, symbol, tf } = this.selection;
    if (!agent || !symbol) return;
    if (this.following !== agent) {
      if (this.following) this.deps.unfollow(this.following);
      this.following = agent;
      this.deps.follow(agent);
    }
    const seq = ++this.loading;
    this.pending = [];
    setText(this.status, `loading ${symbol} ${tf}…`);
    try {
      const path = `/api/agents/${encodeURIComponent(agent)}/candles/${encodeURIComponent(symbol)}`;
      const body = await this.deps.api(`${path}?tf=${tf}&limit=${HISTORY_BARS}`);
      if (seq !== this.loading) return;
      this.chart.setBars(body.candles || [], this.deps.symbols[symbol]?.digits ?? 5);
      for (const bar of this.pending) this.chart.update(bar); // arrived during the request
      this.pending = undefined;
      setText(this.status, `${agent} · ${symbol} · ${tf} · bid`);
    } catch (err) {
      if (seq === this.loading) setText(this.status, `candles unavailable: ${err.message}`);
    }
    this.showPositions(this.deps.agents.get(agent)?.positions || []);
  }

  /** A publication on agent:{id}:candles. */
  onCandle(agentId, bar) {
    const { agent, symbol, tf } = this.selection;
    if (agentId !== agent || bar.symbol !== symbol || bar.tf !== tf) return;
    if (this.pending) this.pending.push(bar);
    else this.chart.update(bar);
  }

  /** The agent's open positions changed: redraw this symbol's entry/SL/TP lines. */
  onPositions(agentId, positions) {
    if (agentId === this.selection.agent) this.showPositions(positions);
  }

  showPositions(positions) {
    const lines = [];
    for (const p of positions) {
      if (p.symbol !== this.selection.symbol) continue;
      lines.push({ kind: "entry", ticket: p.ticket, price: p.open_price });
      if (p.sl) lines.push({ kind: "sl", ticket: p.ticket, price: p.sl });
      if (p.tp) lines.push({ kind: "tp", ticket: p.ticket, price: p.tp });
    }
    this.chart.setLines(lines);
  }
}
