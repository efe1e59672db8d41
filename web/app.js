// MT4 Hub dashboard: loads config over REST, then follows every channel over /ws.

import { Connection } from "./lib/connection.js";
import { LineChart } from "./lib/charts.js";
import { $, setText } from "./lib/dom.js";
import { age, money, signedMoney } from "./lib/format.js";
import { AgentCards } from "./views/cards.js";
import { EmergencyControls } from "./views/emergency.js";
import { Feed, orderKind, orderText, signalText, systemText } from "./views/feeds.js";
import { PositionsView } from "./views/positions.js";
import { PriceChart } from "./views/pricechart.js";
import { HistoryView, JournalView } from "./views/records.js";
import { TickBoard } from "./views/ticks.js";
import { TradeTicket } from "./views/ticket.js";

const TOKEN_KEY = "mt4hub.token";
const FETCH_TIMEOUT_MS = 10000;
const RISK_REFRESH_MS = 5000;
const EQUITY_HISTORY_MS = 24 * 3600 * 1000;

/** The token from ?token= (moved to sessionStorage and removed from the address bar). */
function takeToken() {
  const url = new URL(window.location.href);
  const fromUrl = url.searchParams.get("token");
  if (fromUrl) {
    sessionStorage.setItem(TOKEN_KEY, fromUrl);
    url.searchParams.delete("token");
    history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code || `http_${status}`;
  }
}

async function api(token, path) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), FETCH_TIMEOUT_MS);
  try {
    const resp = await fetch(path, {
      headers: { Authorization: `Bearer ${token}` },
      signal: controller.signal,
    });
    const body = await resp.json().catch(() => null);
    if (!resp.ok) throw new ApiError(resp.status, body);
    return body;
  } finally {
    clearTimeout(timer);
  }
}

function showProblem(message) {
  const node = $("#problem");
  node.hidden = !message;
  setText(node, message || "");
}

function showLogin(message) {
  $("#dashboard").hidden = true;
  const login = $("#login");
  login.hidden = false;
  setText($("[data-message]", login), message || "");
  const form = $("#login-form");
  form.onsubmit = (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, form.elements.namedItem("token").value.trim());
    window.location.reload();
  };
}

class Dashboard {
  constructor(token, me, agentList, symbols, risk) {
    this.token = token;
    this.me = me;
    this.symbols = symbols;
    this.emergencyState = risk?.emergency || { stopped: false };
    this.agents = new Map();
    for (const a of agentList) {
      this.agents.set(a.agent_id, {
        id: a.agent_id,
        config: a,
        status: a.status,
        account: a.account,
        positions: [],
        ticks: new Map(),
        risk: risk?.agents?.[a.agent_id],
        updatedAt: Date.now(),
      });
    }
    this.globalRisk = risk?.global;
    const send = (op) => (this.conn ? this.conn.request(op) : Promise.reject(new Error("not started")));
    this.cards = new AgentCards($("#agents"), this.agents);
    this.ticks = new TickBoard($("#ticks"));
    const canTrade = !me || me.role !== "read";
    this.positions = new PositionsView($("#positions"), this.agents, {
      close: (agent, ticket, lots) => send({ op: "close", agent, ticket, ...(lots ? { lots } : {}) }),
      modify: (agent, ticket, sl, tp) => send({ op: "modify", agent, ticket, sl, tp }),
      canTrade,
      lotStep: (symbol) => symbols[symbol]?.lot_step ?? 0.01,
    });
    const records = { agents: this.agents, api: (path) => api(this.token, path) };
    this.history = new HistoryView($("#history"), records);
    this.journal = new JournalView($("#journal"), records);
    this.ticket = new TradeTicket($("#ticket"), { agents: this.agents, symbols, send });
    if (!canTrade) this.ticket.setEnabled(false, "this token is read-only");
    this.feeds = {
      orders: new Feed($("#feed-orders")),
      signals: new Feed($("#feed-signals")),
      system: new Feed($("#feed-system")),
    };
    this.emergency = new EmergencyControls(
      {
        button: $("#emergency-stop"),
        dialog: $("#emergency-dialog"),
        banner: $("#emergency-banner"),
        resume: $("#resume"),
      },
      send,
    );
    this.emergency.setAdmin(!me || me.role === "admin");
    this.emergency.set(this.emergencyState);
    this.chart = new PriceChart(
      { form: $("#chart-controls"), chart: $("#price-chart"), status: $("#chart-controls [data-chart-status]") },
      {
        agents: this.agents,
        symbols,
        api: (path) => api(this.token, path),
        follow: (agentId) => this.conn.follow([`agent:${agentId}:candles`]),
        unfollow: (agentId) => this.conn.unfollow([`agent:${agentId}:candles`]),
      },
    );
    this.summaryChart = new LineChart($("#summary-chart"), {
      series: [
        { key: "balance", color: "#8a94a6", label: "balance" },
        { key: "equity", color: "#3fb68b", label: "equity" },
      ],
    });
    for (const agent of this.agents.values()) this.cards.update(agent, this.emergencyState, Date.now());
  }

  /** True for a token limited to some agents: it may not read the cross-agent channels. */
  get limited() {
    return Boolean(this.me && Array.isArray(this.me.agents));
  }

  channels() {
    // summary and signals carry every agent: a limited token reads its summary over REST.
    const list = this.limited ? ["system"] : ["summary", "signals", "system"];
    for (const id of this.agents.keys()) {
      for (const kind of ["ticks", "account", "positions", "status", "orders"]) {
        list.push(`agent:${id}:${kind}`);
      }
    }
    return list;
  }

  start() {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    this.conn = new Connection(`${scheme}//${window.location.host}/ws`, this.token, this.channels());
    this.conn.addEventListener("publication", (ev) => this.onPublication(ev.detail));
    this.conn.addEventListener("state", (ev) => this.onState(ev.detail.state));
    this.conn.addEventListener("problem", (ev) => showProblem(ev.detail.message));
    this.conn.start();
    window.__dashboard = this; // for tests and the console
    for (const agent of this.agents.values()) this.loadEquity(agent);
    this.chart.load();
    this.history.first();
    this.journal.first();
    setInterval(() => this.tick(), 1000);
    setInterval(() => this.refreshRisk(), RISK_REFRESH_MS);
  }

  async loadEquity(agent) {
    const since = Date.now() - EQUITY_HISTORY_MS;
    let points = [];
    try {
      const body = await api(this.token, `/api/agents/${encodeURIComponent(agent.id)}/equity?since=${since}`);
      points = body.points || [];
    } catch (err) {
      showProblem(`equity history for ${agent.id}: ${err.message}`);
    }
    const chart = this.cards.chart(agent.id);
    const live = chart.points;
    chart.setHistory([...points, ...live]);
  }

  async refreshRisk() {
    if (this.conn.state !== "live") return;
    try {
      const risk = await api(this.token, "/api/risk");
      for (const [id, r] of Object.entries(risk.agents || {})) {
        const agent = this.agents.get(id);
        if (agent) agent.risk = r;
      }
      this.globalRisk = risk.global;
      if (this.limited) this.summary = await api(this.token, "/api/agents/summary");
      if (risk.emergency && Boolean(risk.emergency.stopped) !== Boolean(this.emergencyState.stopped)) {
        this.setEmergency(risk.emergency);
      }
      this.renderAll();
    } catch (err) {
      showProblem(`risk state: ${err.message}`);
    }
  }

  setEmergency(state) {
    this.emergencyState = state;
    this.emergency.set(state);
    this.renderAll();
  }

  renderAll() {
    const now = Date.now();
    for (const agent of this.agents.values()) this.cards.update(agent, this.emergencyState, now);
    this.renderSummary();
  }

  onPublication(msg) {
    const data = msg.data;
    if (msg.ch === "summary") {
      this.summary = data;
      this.summaryChart.push({ time: Date.now(), equity: data.total_equity, balance: data.total_balance });
      this.renderSummary();
      return;
    }
    if (msg.ch === "signals") {
      this.feeds.signals.add(msg.ts, signalText(data));
      return;
    }
    if (msg.ch === "system") {
      this.feeds.system.add(msg.ts, systemText(data), data.event === "emergency_stop" ? "bad" : "");
      if (data.event === "emergency_stop") {
        this.setEmergency({ stopped: true, reason: data.reason, by: data.by, since: data.ts || msg.ts });
      } else if (data.event === "resume") {
        this.setEmergency({ stopped: false });
      }
      return;
    }
    const [, id, kind] = msg.ch.split(":");
    const agent = this.agents.get(id);
    if (!agent) return;
    if (kind === "candles") {
      this.chart.onCandle(id, data);
      return;
    }
    agent.updatedAt = Date.now();
    if (kind === "ticks") {
      agent.ticks.set(data.symbol, data);
      this.ticks.update(agent, data, this.symbols[data.symbol]?.digits ?? 5);
      this.ticket.priced(id, data.symbol);
      return;
    }
    if (kind === "account") {
      agent.account = data;
      this.cards.chart(id).push({ time: Date.now(), equity: data.equity, balance: data.balance });
    } else if (kind === "positions") {
      agent.positions = data.positions || [];
      this.positions.render(id, agent.positions, (s) => this.symbols[s]?.digits ?? 5);
      this.chart.onPositions(id, agent.positions);
    } else if (kind === "status") {
      agent.status = data;
      this.ticks.markStale(agent, data.stale || []);
    } else if (kind === "orders") {
      this.feeds.orders.add(msg.ts, orderText(data), orderKind(data));
      clearTimeout(this.recordsTimer); // the records writer batches: read a moment later
      this.recordsTimer = setTimeout(() => {
        this.history.refresh();
        this.journal.refresh();
      }, 1000);
      clearTimeout(this.riskTimer);
      this.riskTimer = setTimeout(() => this.refreshRisk(), 300);
    }
    this.cards.update(agent, this.emergencyState, Date.now());
  }

  renderSummary() {
    const s = this.summary;
    const root = $("#summary");
    const field = (name, value) => setText($(`[data-field="${name}"]`, root), value);
    if (s) {
      field("total_balance", money(s.total_balance));
      field("total_equity", money(s.total_equity));
      field("total_profit", signedMoney(s.total_profit));
      field("total_positions", s.total_positions);
      field("online", `${s.agents_online} / ${s.agents_online + s.agents_offline}`);
    }
    const g = this.globalRisk;
    if (g) field("exposure", `${money(g.open_risk)} / ${money(g.limit)}`);
  }

  onState(state) {
    const node = $("#connection");
    node.className = `connection ${state}`;
    document.body.classList.toggle("disconnected", state !== "live");
    if (state === "unauthorized") {
      this.conn.stop();
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin("the hub refused this token (expired or revoked): enter another");
      return;
    }
    if (state === "live") {
      this.lostAt = undefined;
      showProblem("");
      this.refreshRisk();
      this.ticket.refresh();
    } else if (this.lostAt === undefined) {
      this.lostAt = Date.now();
    }
    this.tick();
  }

  /** Once a second: connection text with the age of the data while disconnected. */
  tick() {
    const now = Date.now();
    const text = $("#connection [data-text]");
    const state = this.conn.state;
    if (state === "live") {
      setText(text, "live");
    } else if (state === "connecting") {
      setText(text, "connecting…");
    } else {
      const retry = this.conn.retryAt ? Math.max(0, this.conn.retryAt - now) : 0;
      const since = this.lostAt ? ` · data ${age(now - this.lostAt)} old` : "";
      setText(text, `offline${since} · retrying${retry ? ` in ${age(retry)}` : "…"}`);
    }
    this.emergency.render(now);
    for (const agent of this.agents.values()) {
      this.cards.update(agent, this.emergencyState, now);
      // Sample equity once a second while live, so quiet accounts still draw a line.
      if (state === "live" && agent.account) {
        const { equity, balance } = agent.account;
        this.cards.chart(agent.id).push({ time: now, equity, balance });
      }
    }
    if (state === "live" && this.summary) {
      const { total_equity: equity, total_balance: balance } = this.summary;
      this.summaryChart.push({ time: now, equity, balance });
    }
  }
}

async function main() {
  const token = takeToken();
  if (!token) {
    showLogin("open the URL that `mt4hub run` prints, or paste a token");
    return;
  }
  let me = null;
  try {
    me = await api(token, "/api/whoami");
  } catch (err) {
    if (err.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin(`token refused: ${err.message}`);
      return;
    }
    if (err.status !== 404) throw err;
  }
  const [agents, symbols, risk] = await Promise.all([
    api(token, "/api/agents"),
    api(token, "/api/symbols").catch((err) => {
      showProblem(`symbol specs unavailable (${err.message}): no risk preview`);
      return {};
    }),
    api(token, "/api/risk"),
  ]);
  if (me) setText($("#whoami"), `${me.name} (${me.role})`);
  $("#dashboard").hidden = false;
  new Dashboard(token, me, agents, symbols, risk).start();
}

main().catch((err) => showProblem(`dashboard failed to start: ${err.message}`));
