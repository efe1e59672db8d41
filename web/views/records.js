// History (closed trades from /api/trades?status=closed) and journal (/api/logs filtered by
// agent and event): newest first, paged with the `next_before` cursor the hub returns.

import { el, setText, clear } from "../lib/dom.js";
import { signedMoney } from "../lib/format.js";

const PAGE_SIZES = [10, 25, 50, 100];

function stamp(ms) {
  if (!ms) return "—";
  return new Date(ms).toISOString().replace("T", " ").slice(0, 19);
}

/** A paged table over one records endpoint; subclasses say which and how rows look. */
class PagedRecords {
  /**
   * @param {HTMLElement} root  the panel (holds form.records-filter, table, pager)
   * @param {object} deps  {agents: Map, api(path) -> Promise}
   */
  constructor(root, deps) {
    this.root = root;
    this.deps = deps;
    this.form = root.querySelector("form");
    this.tbody = root.querySelector("tbody");
    this.status = root.querySelector("[data-page]");
    this.older = root.querySelector("[data-older]");
    this.newer = root.querySelector("[data-newer]");
    const agentSelect = this.form.elements.namedItem("agent");
    agentSelect.append(el("option", { value: "" }, "all agents"));
    for (const agent of deps.agents.values()) {
      agentSelect.append(el("option", { value: agent.id }, `${agent.config.name} (${agent.id})`));
    }
    const sizes = this.form.elements.namedItem("limit");
    for (const size of PAGE_SIZES) sizes.append(el("option", { value: String(size) }, String(size)));
    this.cursors = [null]; // the `before` of each page shown so far; the last is this page's
    this.next = null;
    this.form.addEventListener("change", () => this.first());
    this.form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.first();
    });
    this.older.addEventListener("click", () => {
      if (this.next === null) return;
      this.cursors.push(this.next);
      this.load();
    });
    this.newer.addEventListener("click", () => {
      if (this.cursors.length < 2) return;
      this.cursors.pop();
      this.load();
    });
  }

  first() {
    this.cursors = [null];
    this.load();
  }

  /** Reload the first page (called when something new was recorded). */
  refresh() {
    if (this.cursors.length === 1) this.load();
  }

  params() {
    const form = this.form.elements;
    const params = new URLSearchParams({ limit: form.namedItem("limit").value });
    const agent = form.namedItem("agent").value;
    if (agent) params.set("agent", agent);
    const before = this.cursors[this.cursors.length - 1];
    if (before !== null) params.set("before", String(before));
    return params;
  }

  async load() {
    const seq = (this.seq = (this.seq || 0) + 1);
    let body;
    try {
      body = await this.deps.api(`${this.path}?${this.params()}`);
    } catch (err) {
      if (seq === this.seq) setText(this.status, `unavailable: ${err.message}`);
      return;
    }
    if (seq !== this.seq) return;
    const rows = body[this.key] || [];
    this.next = body.next_before;
    clear(this.tbody);
    for (const row of rows) this.tbody.append(this.row(row));
    if (!rows.length) {
      this.tbody.append(el("tr", {}, el("td", { colspan: 20, class: "muted" }, "nothing recorded")));
    }
    const page = this.cursors.length;
    this.root.dataset.page = String(page);
    this.root.dataset.rows = String(rows.length);
    setText(this.status, `page ${page}`);
    this.older.disabled = this.next === null;
    this.newer.disabled = page < 2;
  }
}

/** Closed trades with their P/L. */
export class HistoryView extends PagedRecords {
  constructor(root, deps) {
    super(root, deps);
    this.path = "/api/trades";
    this.key = "trades";
  }

  params() {
    const params = super.params();
    params.set("status", "closed");
    return params;
  }

  row(t) {
    const profit = t.profit ?? 0;
    return el(
      "tr",
      { dataset: { id: t.id, ticket: t.ticket ?? "" } },
      el("td", {}, stamp(t.close_time)),
      el("td", {}, t.agent_id),
      el("td", {}, String(t.ticket ?? "—")),
      el("td", {}, t.symbol),
      el("td", { class: t.action === "buy" ? "up" : "down" }, t.action),
      el("td", { class: "num" }, String(t.lots)),
      el("td", { class: "num" }, String(t.open_price ?? "—")),
      el("td", { class: "num" }, String(t.close_price ?? "—")),
      el(
        "td",
        { class: `num ${profit > 0 ? "up" : profit < 0 ? "down" : ""}`, dataset: { field: "profit" } },
        signedMoney(t.profit),
      ),
    );
  }
}

/** The journal: every command, risk decision, status change and emergency. */
export class JournalView extends PagedRecords {
  constructor(root, deps) {
    super(root, deps);
    this.path = "/api/logs";
    this.key = "logs";
    this.events = new Set();
    this.eventList = root.querySelector("datalist");
  }

  params() {
    const params = super.params();
    const event = this.form.elements.namedItem("event").value.trim();
    if (event) params.set("event", event);
    return params;
  }

  row(r) {
    if (!this.events.has(r.event_type)) {
      this.events.add(r.event_type);
      this.eventList.append(el("option", { value: r.event_type }));
    }
    return el(
      "tr",
      { dataset: { id: r.id, event: r.event_type } },
      el("td", {}, stamp(r.created_at)),
      el("td", {}, r.agent_id ?? "—"),
      el("td", {}, r.event_type),
      el("td", { class: "message" }, r.message),
    );
  }
}

