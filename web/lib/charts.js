// Charts on TradingView's lightweight-charts (pinned in package.json; scripts/setup puts its
// standalone ES module in web/vendor/): equity lines and a candlestick chart with price lines.
// Times on the wire are epoch ms; the library wants UTC seconds.

import {
  CandlestickSeries,
  ColorType,
  LineSeries,
  LineStyle,
  createChart,
} from "../vendor/lightweight-charts.js";

const MAX_POINTS = 2000;
const THEME = {
  layout: {
    background: { type: ColorType.Solid, color: "transparent" },
    textColor: "#8a94a6",
    fontFamily: "system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', sans-serif",
    attributionLogo: false,
  },
  grid: { vertLines: { color: "#1e2638" }, horzLines: { color: "#1e2638" } },
  rightPriceScale: { borderColor: "#273049" },
  timeScale: { borderColor: "#273049", timeVisible: true, secondsVisible: false, rightOffset: 6 },
  autoSize: true,
};

const seconds = (ms) => Math.floor(ms / 1000);

/** Equity (and balance) over time: one line per series key. */
export class LineChart {
  /**
   * @param {HTMLElement} container
   * @param {{series: {key: string, color: string, label: string}[]}} options
   */
  constructor(container, options) {
    this.container = container;
    this.series = options.series;
    this.points = []; // [{time (ms), equity, balance, ...}] oldest first
    this.chart = createChart(container, {
      ...THEME,
      handleScroll: false,
      handleScale: false,
      timeScale: { ...THEME.timeScale, visible: false },
      crosshair: { horzLine: { visible: false }, vertLine: { visible: false } },
    });
    this.lines = new Map();
    for (const s of this.series) {
      this.lines.set(
        s.key,
        this.chart.addSeries(LineSeries, {
          color: s.color,
          lineWidth: 2,
          priceLineVisible: false,
          lastValueVisible: true,
        }),
      );
    }
  }

  /** Replace the history (points oldest first). */
  setHistory(points) {
    const bySecond = new Map();
    for (const p of [...points].sort((a, b) => a.time - b.time)) bySecond.set(seconds(p.time), p);
    this.points = [...bySecond.values()].slice(-MAX_POINTS);
    for (const s of this.series) {
      const data = this.points
        .filter((p) => typeof p[s.key] === "number")
        .map((p) => ({ time: seconds(p.time), value: p[s.key] }));
      this.lines.get(s.key).setData(data);
    }
    this.chart.timeScale().fitContent();
    this.container.dataset.points = String(this.points.length);
  }

  /** Append a live point; a point older than the last one is ignored. */
  push(point) {
    const last = this.points[this.points.length - 1];
    if (last && seconds(point.time) < seconds(last.time)) return;
    if (last && seconds(point.time) === seconds(last.time)) this.points[this.points.length - 1] = point;
    else this.points.push(point);
    if (this.points.length > MAX_POINTS) this.points.splice(0, this.points.length - MAX_POINTS);
    for (const s of this.series) {
      if (typeof point[s.key] === "number") {
        this.lines.get(s.key).update({ time: seconds(point.time), value: point[s.key] });
      }
    }
    this.chart.timeScale().fitContent(); // the whole series, however few points it has
    this.container.dataset.points = String(this.points.length);
  }
}

/** Candles of one symbol and timeframe, with horizontal price lines (entry, SL, TP). */
export class CandleChart {
  /** @param {HTMLElement} container */
  constructor(container) {
    this.container = container;
    this.chart = createChart(container, THEME);
    this.candles = this.chart.addSeries(CandlestickSeries, {
      upColor: "#3fb68b",
      downColor: "#e5534b",
      borderVisible: false,
      wickUpColor: "#3fb68b",
      wickDownColor: "#e5534b",
      // Keep the position lines (entry, SL, TP) in view, not only the candles.
      autoscaleInfoProvider: (original) => {
        const info = original();
        const prices = this.priceLines.map(({ spec }) => spec.price);
        if (!info || !prices.length) return info;
        const range = info.priceRange;
        return {
          ...info,
          priceRange: {
            minValue: Math.min(range.minValue, ...prices),
            maxValue: Math.max(range.maxValue, ...prices),
          },
        };
      },
    });
    this.bars = []; // wire bars {t, o, h, l, c, ticks}, oldest first
    this.priceLines = []; // [{line, spec}]
  }

  /** Show ``bars`` (oldest first); ``digits`` sets the price format. */
  setBars(bars, digits) {
    const minMove = 1 / 10 ** digits;
    this.candles.applyOptions({ priceFormat: { type: "price", precision: digits, minMove } });
    this.bars = bars.slice();
    this.candles.setData(bars.map(toCandle));
    this.chart.timeScale().scrollToRealTime();
    this.publish();
  }

  /** A live bar: updates the last one or appends; an older bar than the last is ignored. */
  update(bar) {
    const last = this.bars[this.bars.length - 1];
    if (last && bar.t < last.t) return;
    if (last && bar.t === last.t) this.bars[this.bars.length - 1] = bar;
    else this.bars.push(bar);
    this.candles.update(toCandle(bar));
    this.publish();
  }

  /** Replace the price lines: [{kind: entry|sl|tp, ticket, price}]. */
  setLines(specs) {
    for (const { line } of this.priceLines) this.candles.removePriceLine(line);
    this.priceLines = specs.map((spec) => ({
      spec,
      line: this.candles.createPriceLine({
        price: spec.price,
        color: LINE_COLORS[spec.kind],
        lineWidth: 1,
        lineStyle: spec.kind === "entry" ? LineStyle.Solid : LineStyle.Dashed,
        axisLabelVisible: true,
        title: `${spec.kind.toUpperCase()} #${spec.ticket}`,
      }),
    }));
    this.publish();
  }

  /** What the chart shows, for tests and the console. */
  state() {
    return {
      bars: this.bars.slice(),
      lines: this.priceLines.map(({ line, spec }) => ({ ...spec, price: line.options().price })),
    };
  }

  publish() {
    const last = this.bars[this.bars.length - 1];
    this.container.dataset.bars = String(this.bars.length);
    this.container.dataset.last = last ? JSON.stringify(last) : "";
  }
}

const LINE_COLORS = { entry: "#4c8dff", sl: "#e5534b", tp: "#3fb68b" };

function toCandle(bar) {
  return { time: seconds(bar.t), open: bar.o, high: bar.h, low: bar.l, close: bar.c };
}
