// A small canvas line chart for equity (and balance) over time. No dependencies.

const MAX_POINTS = 2000;

export class LineChart {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {{series: {key: string, color: string, label: string}[]}} options
   */
  constructor(canvas, options) {
    this.canvas = canvas;
    this.series = options.series;
    this.points = []; // [{time, equity, balance, ...}] oldest first
    this.frame = 0;
    new ResizeObserver(() => this.schedule()).observe(canvas);
  }

  /** Replace the history (points oldest first). */
  setHistory(points) {
    this.points = points.slice(-MAX_POINTS);
    this.schedule();
  }

  /** Append a live point; points older than the last one are ignored. */
  push(point) {
    const last = this.points[this.points.length - 1];
    if (last && point.time < last.time) return;
    if (last && point.time === last.time) this.points[this.points.length - 1] = point;
    else this.points.push(point);
    if (this.points.length > MAX_POINTS) this.points.splice(0, this.points.length - MAX_POINTS);
    this.schedule();
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  draw() {
    const { canvas } = this;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (!width || !height) return;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const styles = getComputedStyle(canvas);
    ctx.font = `11px ${styles.fontFamily}`;
    ctx.fillStyle = styles.color;
    if (this.points.length < 2) {
      ctx.fillText("collecting equity…", 8, height / 2);
      return;
    }
    const values = this.points.flatMap((p) =>
      this.series.map((s) => p[s.key]).filter((v) => typeof v === "number"),
    );
    let lo = Math.min(...values);
    let hi = Math.max(...values);
    if (hi - lo < 1e-9) {
      lo -= 1;
      hi += 1;
    }
    const t0 = this.points[0].time;
    const t1 = this.points[this.points.length - 1].time;
    const pad = { left: 4, right: 56, top: 6, bottom: 6 };
    const x = (t) => pad.left + ((t - t0) / Math.max(1, t1 - t0)) * (width - pad.left - pad.right);
    const y = (v) => pad.top + (1 - (v - lo) / (hi - lo)) * (height - pad.top - pad.bottom);
    ctx.globalAlpha = 0.8;
    ctx.textAlign = "left";
    ctx.fillText(hi.toFixed(2), width - pad.right + 4, pad.top + 8);
    ctx.fillText(lo.toFixed(2), width - pad.right + 4, height - pad.bottom);
    ctx.globalAlpha = 1;
    for (const s of this.series) {
      ctx.strokeStyle = s.color;
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      let started = false;
      for (const p of this.points) {
        const v = p[s.key];
        if (typeof v !== "number") continue;
        if (started) ctx.lineTo(x(p.time), y(v));
        else ctx.moveTo(x(p.time), y(v));
        started = true;
      }
      ctx.stroke();
    }
  }
}
