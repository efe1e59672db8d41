// Open positions per agent with live profit, and close / modify (SL, TP) actions.
// Rows are keyed by ticket and updated in place, so an open SL/TP editor survives updates.

import { el, setText } from "../lib/dom.js";
import { price, signedMoney } from "../lib/format.js";

export class PositionsView {
  /**
   * @param {HTMLElement} container
   * @param {{close: Function, modify: Function, canTrade: boolean, lotStep: Function}} actions
   *   close(agentId, ticket, lots?) and modify(agentId, ticket, sl, tp) return promises;
   *   without canTrade every button and input is disabled (a read-only token)
   */
  constructor(container, agents, actions) {
    this.actions = actions;
    this.sections = new Map();
    for (const agent of agents.values()) {
      const tbody = el("tbody");
      const empty = el("p", { class: "muted empty" }, "no open positions");
      const table = el(
        "table",
        { class: "positions", hidden: true, dataset: { agent: agent.id } },
        el(
          "thead",
          {},
          el(
            "tr",
            {},
            ...["Ticket", "Symbol", "Side", "Lots", "Open", "SL", "TP", "Profit", ""].map((h) =>
              el("th", {}, h),
            ),
          ),
        ),
        tbody,
      );
      const section = el(
        "section",
        { class: "agent-positions", dataset: { agent: agent.id } },
        el("h3", {}, `${agent.config.name} `, el("small", {}, agent.id)),
        el("div", { class: "scroll" }, table),
        empty,
      );
      container.append(section);
      this.sections.set(agent.id, { tbody, empty, table, rows: new Map() });
    }
  }

  render(agentId, positions, digitsOf) {
    const section = this.sections.get(agentId);
    if (!section) return;
    const seen = new Set();
    for (const p of positions) {
      seen.add(p.ticket);
      let row = section.rows.get(p.ticket);
      if (!row) {
        row = this.buildRow(agentId, p);
        section.rows.set(p.ticket, row);
        section.tbody.append(row.tr, row.editor);
      }
      const digits = digitsOf(p.symbol);
      setText(row.cells.lots, p.lots);
      setText(row.cells.open, price(p.open_price, digits));
      setText(row.cells.sl, p.sl ? price(p.sl, digits) : "—");
      setText(row.cells.tp, p.tp ? price(p.tp, digits) : "—");
      setText(row.cells.profit, signedMoney(p.profit));
      row.cells.profit.className = `num ${p.profit > 0 ? "up" : p.profit < 0 ? "down" : ""}`;
      row.position = p;
    }
    for (const [ticket, row] of section.rows) {
      if (seen.has(ticket)) continue;
      row.tr.remove();
      row.editor.remove();
      section.rows.delete(ticket);
    }
    section.empty.hidden = positions.length > 0;
    section.table.hidden = positions.length === 0;
  }

  buildRow(agentId, p) {
    const cells = {
      lots: el("td", { class: "num" }),
      open: el("td", { class: "num" }),
      sl: el("td", { class: "num" }),
      tp: el("td", { class: "num" }),
      profit: el("td", { class: "num", dataset: { field: "profit" } }),
    };
    const message = el("span", { class: "row-message", role: "status" });
    const readOnly = this.actions.canTrade === false;
    const why = readOnly ? "this token is read-only" : undefined;
    const step = this.actions.lotStep ? this.actions.lotStep(p.symbol) : 0.01;
    const lotsInput = el("input", {
      type: "number", name: "close-lots", class: "close-lots", step: String(step), min: String(step),
      placeholder: "all", "aria-label": "lots to close", disabled: readOnly, title: why,
    });  // prettier-ignore
    const closeButton = el("button", { type: "button", class: "danger small", disabled: readOnly, title: why }, "Close");
    const editButton = el("button", { type: "button", class: "small", disabled: readOnly, title: why }, "SL/TP");
    const tr = el(
      "tr",
      { dataset: { ticket: p.ticket } },
      el("td", {}, String(p.ticket)),
      el("td", {}, p.symbol),
      el("td", { class: p.action === "buy" ? "up" : "down" }, p.action),
      cells.lots,
      cells.open,
      cells.sl,
      cells.tp,
      cells.profit,
      el("td", { class: "actions" }, editButton, lotsInput, closeButton, message),
    );
    const slInput = el("input", { type: "number", step: "any", name: "sl", "aria-label": "SL" });
    const tpInput = el("input", { type: "number", step: "any", name: "tp", "aria-label": "TP" });
    const editorMessage = el("span", { class: "row-message", role: "status" });
    const editor = el(
      "tr",
      { class: "editor", hidden: true, dataset: { editor: p.ticket } },
      el(
        "td",
        { colspan: 9 },
        el(
          "form",
          { class: "inline" },
          el("label", {}, "SL ", slInput),
          el("label", {}, "TP ", tpInput),
          el("button", { type: "submit", class: "small" }, "Save"),
          el("button", { type: "button", class: "small ghost", "data-cancel": "" }, "Cancel"),
          editorMessage,
        ),
      ),
    );
    const row = { tr, editor, cells, position: p };
    closeButton.addEventListener("click", () => {
      const lots = lotsInput.value === "" ? null : Number(lotsInput.value);
      closeButton.disabled = true;
      message.classList.remove("error");
      setText(message, lots ? `closing ${lots}…` : "closing…");
      this.actions.close(agentId, p.ticket, lots).then(
        () => {
          setText(message, lots ? `closed ${lots}` : "closed");
          lotsInput.value = "";
          closeButton.disabled = false;
        },
        (err) => {
          closeButton.disabled = false;
          setText(message, describe(err));
          message.classList.add("error");
        },
      );
    });
    editButton.addEventListener("click", () => {
      slInput.value = row.position.sl ?? "";
      tpInput.value = row.position.tp ?? "";
      setText(editorMessage, "");
      editor.hidden = !editor.hidden;
    });
    editor.querySelector("[data-cancel]").addEventListener("click", () => {
      editor.hidden = true;
    });
    editor.querySelector("form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const sl = slInput.value === "" ? null : Number(slInput.value);
      const tp = tpInput.value === "" ? null : Number(tpInput.value);
      setText(editorMessage, "saving…");
      editorMessage.classList.remove("error");
      this.actions.modify(agentId, p.ticket, sl, tp).then(
        () => {
          editor.hidden = true;
        },
        (err) => {
          setText(editorMessage, describe(err));
          editorMessage.classList.add("error");
        },
      );
    });
    return row;
  }
}

/** "risk_rejected: … (check max_risk_per_trade: value 10.3 > limit 2)" from an error body. */
export function describe(err) {
  const details = err.details;
  let text = err.code ? `${err.code}: ${err.message}` : String(err.message || err);
  if (details?.check) {
    text += ` [check ${details.check}`;
    if (details.value !== undefined) text += `, value ${details.value}`;
    if (details.limit !== undefined) text += `, limit ${details.limit}`;
    text += "]";
  }
  return text;
}
