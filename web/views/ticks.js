// The tick board: bid / ask per agent and symbol, flashing up or down, with the spread.

import { el, setText } from "../lib/dom.js";
import { price } from "../lib/format.js";

export class TickBoard {
  constructor(tbody) {
    this.tbody = tbody;
    this.rows = new Map();
  }

  row(agent, symbol) {
    const key = `${agent.id}:${symbol}`;
    let row = this.rows.get(key);
    if (!row) {
      const cells = {
        bid: el("td", { class: "num", dataset: { field: "bid" } }, "—"),
        ask: el("td", { class: "num", dataset: { field: "ask" } }, "—"),
        spread: el("td", { class: "num", dataset: { field: "spread" } }, "—"),
      };
      const tr = el(
        "tr",
        { dataset: { agent: agent.id, symbol } },
        el("td", {}, el("strong", {}, symbol)),
        el("td", { class: "muted" }, agent.config.name),
        cells.bid,
        cells.ask,
        cells.spread,
      );
      row = { tr, cells, bid: undefined, ask: undefined };
      this.rows.set(key, row);
      const after = [...this.rows.keys()].sort().indexOf(key);
      const next = [...this.rows.keys()].sort()[after + 1];
      this.tbody.insertBefore(tr, next ? this.rows.get(next).tr : null);
    }
    return row;
  }

  update(agent, tick, digits) {
    const row = this.row(agent, tick.symbol);
    flash(row.cells.bid, row.bid, tick.bid);
    flash(row.cells.ask, row.ask, tick.ask);
    row.bid = tick.bid;
    row.ask = tick.ask;
    setText(row.cells.bid, price(tick.bid, digits));
    setText(row.cells.ask, price(tick.ask, digits));
    const points = Math.round((tick.ask - tick.bid) * 10 ** digits);
    setText(row.cells.spread, `${points}`);
    row.tr.title = `${tick.symbol} at ${new Date(tick.time).toISOString()}`;
  }

  markStale(agent, staleSymbols) {
    for (const [key, row] of this.rows) {
      if (!key.startsWith(`${agent.id}:`)) continue;
      row.tr.classList.toggle("stale-feed", staleSymbols.includes(row.tr.dataset.symbol));
    }
  }
}

function flash(cell, before, after) {
  if (before === undefined || before === after) return;
  cell.classList.remove("up", "down");
  void cell.offsetWidth; // restart the animation
  cell.classList.add(after > before ? "up" : "down");
}
