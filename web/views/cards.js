// One card per agent: status light, money, positions and daily loss against limits, equity chart.

import { LineChart } from "../lib/charts.js";
import { el, setText } from "../lib/dom.js";
import { age, money, signedMoney } from "../lib/format.js";

/** online | offline | halted | disabled | stopped, from the agent's status and the kill switch. */
export function agentLight(agent, emergency) {
  const status = agent.status;
  if (!status || status.status !== "online") return "offline";
  if (emergency.stopped || status.trading === "stopped") return "stopped";
  if (!agent.config.enabled || status.trading === "disabled") return "disabled";
  if (status.trading === "halted") return "halted";
  return "online";
}

export class AgentCards {
  constructor(container, agents) {
    this.cards = new Map();
    for (const agent of agents.values()) {
      const card = this.build(agent);
      this.cards.set(agent.id, card);
      container.append(card.root);
    }
  }

  build(agent) {
    const f = (name) => el("dd", { dataset: { field: name } }, "—");
    const fields = {
      balance: f("balance"),
      equity: f("equity"),
      profit: f("profit"),
      positions: f("positions"),
      dailyLoss: f("daily-loss"),
    };
    const light = el("span", { class: "light offline", dataset: { field: "light" } });
    const lightText = el("span", { class: "light-text", dataset: { field: "status" } }, "offline");
    const note = el("p", { class: "card-note", dataset: { field: "note" } });
    const canvas = el("div", { class: "chart", "aria-label": `${agent.config.name} equity` });
    const root = el(
      "article",
      { class: "card", dataset: { agent: agent.id } },
      el(
        "header",
        {},
        el("h3", {}, agent.config.name, " ", el("small", {}, agent.id)),
        el("span", { class: "status" }, light, lightText),
      ),
      el("p", { class: "strategy" }, `strategy: ${agent.config.strategy}`),
      el(
        "dl",
        { class: "figures" },
        el("dt", {}, "Balance"),
        fields.balance,
        el("dt", {}, "Equity"),
        fields.equity,
        el("dt", {}, "Floating P/L"),
        fields.profit,
        el("dt", {}, "Positions"),
        fields.positions,
        el("dt", {}, "Daily loss"),
        fields.dailyLoss,
      ),
      canvas,
      note,
    );
    const chart = new LineChart(canvas, {
      series: [
        { key: "balance", color: "#8a94a6", label: "balance" },
        { key: "equity", color: "#3fb68b", label: "equity" },
      ],
    });
    return { root, fields, light, lightText, note, chart };
  }

  update(agent, emergency, now) {
    const card = this.cards.get(agent.id);
    if (!card) return;
    const account = agent.account;
    const currency = account?.currency || "";
    setText(card.fields.balance, money(account?.balance, currency));
    setText(card.fields.equity, money(account?.equity, currency));
    setText(card.fields.profit, signedMoney(account?.profit));
    card.fields.profit.classList.toggle("up", (account?.profit ?? 0) > 0);
    card.fields.profit.classList.toggle("down", (account?.profit ?? 0) < 0);
    const limit = agent.risk?.positions_limit ?? agent.config.risk.max_positions;
    setText(card.fields.positions, `${agent.positions.length} / ${limit}`);
    const risk = agent.risk;
    setText(
      card.fields.dailyLoss,
      risk ? `${money(risk.daily_loss_used)} / ${money(risk.daily_loss_limit)}` : "—",
    );
    const light = agentLight(agent, emergency);
    card.light.className = `light ${light}`;
    setText(card.lightText, light);
    card.root.dataset.status = light;
    const offline = light === "offline";
    card.root.classList.toggle("agent-offline", offline);
    let note = "";
    if (offline && agent.status?.error) note = `bridge: ${agent.status.error}`;
    if (offline && agent.updatedAt) note += ` · last data ${age(now - agent.updatedAt)} ago`;
    if (agent.status?.stale?.length) note += ` stale feed: ${agent.status.stale.join(", ")}`;
    setText(card.note, note.trim());
  }

  chart(agentId) {
    return this.cards.get(agentId)?.chart;
  }
}
