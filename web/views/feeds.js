// Feeds of orders, signals and system events: newest first, bounded.

import { el } from "../lib/dom.js";
import { clock } from "../lib/format.js";

const MAX_ITEMS = 100;

export class Feed {
  constructor(list) {
    this.list = list;
  }

  add(ts, text, kind = "") {
    const item = el("li", { class: kind }, el("time", {}, clock(ts)), " ", text);
    this.list.prepend(item);
    while (this.list.children.length > MAX_ITEMS) this.list.lastElementChild.remove();
  }
}

/** One line for an `agent:{id}:orders` event. */
export function orderText(e) {
  const what = [e.command, e.event, e.action, e.lots, e.symbol].filter((x) => x !== undefined);
  let text = `${e.agent_id} ${what.join(" ")}`;
  if (e.ticket) text += ` #${e.ticket}`;
  if (e.price) text += ` @ ${e.price}`;
  if (e.profit !== undefined && e.profit !== null && e.event === "closed") {
    text += ` P/L ${e.profit}`;
  }
  if (e.error) {
    text += ` — ${e.error.code}: ${e.error.message}`;
  } else if (e.reason) {
    text += ` — ${e.reason}`;
  }
  return text;
}

export function orderKind(e) {
  if (e.event === "rejected" || e.event === "failed") return "bad";
  if (e.event === "filled" || e.event === "closed") return "good";
  return "";
}

/** One line for a `signals` event (a signal and its routing outcome). */
export function signalText(s) {
  const head = [s.signal_id, s.symbol, s.direction, s.confidence].filter((x) => x !== undefined);
  const routes = (s.routes || [])
    .map((r) => `${r.agent}: ${r.outcome}${r.error ? ` (${r.error.code})` : ""}`)
    .join(", ");
  return routes ? `${head.join(" ")} → ${routes}` : head.join(" ") || JSON.stringify(s);
}

/** One line for a `system` event. */
export function systemText(s) {
  const parts = [s.event];
  if (s.by) parts.push(`by ${s.by}`);
  if (s.reason) parts.push(`— ${s.reason}`);
  if (s.message) parts.push(`— ${s.message}`);
  return parts.join(" ");
}
