// One time-series chart on uPlot (global uPlot, loaded by app.js): lines, an
// optional min–max band per line (rollups, so spikes stay visible), a
// crosshair shared by every chart of the page, drag to zoom.
import { h } from "./dom.js";
import { byUnit } from "./format.js";

export const PALETTE = ["#3b82f6", "#f97316", "#10b981", "#a855f7", "#ef4444", "#eab308", "#06b6d4", "#ec4899", "#84cc16", "#6366f1"];
const SYNC = "sysmonstm-machine";
const HEIGHT = 180;

function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function alpha(hex, a) {
  const n = parseInt(hex.slice(1), 16);
  return "rgba(" + (n >> 16) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + a + ")";
}

// Chart renders spec {key, title, sub, unit, max, noBand, lines:[{label,
// metric, match, dash}]} into a card. opts: xRange() → [from, to] in s,
// onZoom(fromMs, toMs).
export class Chart {
  constructor(spec, opts) {
    this.spec = spec;
    this.opts = opts;
    this.fmt = byUnit(spec.unit);
    this.plot = h("div", { class: "plot" });
    this.el = h("div", { class: "chart", dataset: { chart: spec.key } },
      h("h3", {}, spec.title, spec.sub ? h("span", { class: "sub", text: "  " + spec.sub }) : null), this.plot);
    this.data = [[], ...spec.lines.map(() => [])];
    this.bands = []; // [{i, min, max}]
    this.u = null;
    this.ro = new ResizeObserver(() => this.resize());
    this.ro.observe(this.plot);
  }

  width() {
    return Math.max(200, this.plot.clientWidth || 500);
  }

  build() {
    if (this.u) this.u.destroy();
    const spec = this.spec, fmt = this.fmt;
    const axis = css("--axis"), grid = css("--grid");
    const pctMax = spec.max;
    const opts = {
      width: this.width(),
      height: HEIGHT,
      cursor: { sync: { key: SYNC }, drag: { x: true, y: false, setScale: false }, points: { size: 5 } },
      select: { show: true },
      legend: { live: true },
      scales: {
        x: { time: true, range: (u, mn, mx) => this.opts.xRange() || [mn, mx] },
        y: {
          range: (u, mn, mx) => {
            const lo = Math.min(0, mn == null ? 0 : mn);
            let hi = mx == null || mx <= lo ? lo + 1 : mx * 1.08;
            if (pctMax != null && hi > pctMax * 0.5) hi = Math.max(pctMax, mx == null ? 0 : mx);
            return [lo, hi];
          },
        },
      },
      axes: [
        { stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } },
        { stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, size: 70, values: (u, vals) => vals.map(fmt) },
      ],
      series: [
        { value: (u, v) => (v == null ? "–" : new Date(v * 1000).toLocaleString()) },
        ...spec.lines.map((l, i) => ({
          label: l.label,
          stroke: PALETTE[i % PALETTE.length],
          width: spec.lines.length > 8 ? 1 : 1.5,
          dash: l.dash,
          spanGaps: false,
          points: { show: false },
          value: (u, v) => (v == null ? "–" : fmt(v)),
        })),
      ],
      hooks: {
        drawAxes: [(u) => this.drawBands(u)],
        setSelect: [(u) => this.onSelect(u)],
        // Off the plot, the legend shows the newest values.
        setCursor: [(u) => { if (u.cursor.left < 0) this.legendLast(); }],
      },
    };
    this.u = new uPlot(opts, this.data, this.plot);
  }

  legendLast() {
    const n = this.data[0].length;
    if (this.u && n && this.u.cursor.left < 0 && this.u.legend.idx !== n - 1) this.u.setLegend({ idx: n - 1 });
  }

  // setData replaces the data: xs in s, ys per line, bands [{i, min, max}].
  setData(xs, ys, bands) {
    this.data = [xs, ...ys];
    this.bands = bands || [];
    if (!this.u) this.build();
    else this.u.setData(this.data);
    this.legendLast();
  }

  // append adds one point (live mode) and drops points before fromS.
  append(x, vals, fromS) {
    const d = this.data;
    d[0].push(x);
    for (let i = 0; i < vals.length; i++) d[i + 1].push(vals[i]);
    let cut = 0;
    while (cut < d[0].length && d[0][cut] < fromS) cut++;
    if (cut) for (const arr of d) arr.splice(0, cut);
    for (const b of this.bands) {
      b.min.push(null);
      b.max.push(null);
      if (cut) {
        b.min.splice(0, cut);
        b.max.splice(0, cut);
      }
    }
    if (this.u) this.u.setData(d);
    this.legendLast();
  }

  drawBands(u) {
    if (!this.bands.length) return;
    const ctx = u.ctx, xs = u.data[0];
    ctx.save();
    ctx.beginPath();
    ctx.rect(u.bbox.left, u.bbox.top, u.bbox.width, u.bbox.height);
    ctx.clip();
    for (const b of this.bands) {
      if (!u.series[b.i + 1].show) continue;
      ctx.fillStyle = alpha(PALETTE[b.i % PALETTE.length], 0.18);
      let seg = [];
      const flush = () => {
        if (seg.length > 0) {
          ctx.beginPath();
          seg.forEach((j, k) => {
            const x = u.valToPos(xs[j], "x", true), y = u.valToPos(b.max[j], "y", true);
            if (k === 0) ctx.moveTo(x, y);
            else ctx.lineTo(x, y);
          });
          for (let k = seg.length - 1; k >= 0; k--) {
            const j = seg[k];
            ctx.lineTo(u.valToPos(xs[j], "x", true), u.valToPos(b.min[j], "y", true));
          }
          ctx.closePath();
          ctx.fill();
        }
        seg = [];
      };
      for (let j = 0; j < xs.length; j++) {
        if (b.min[j] == null || b.max[j] == null) flush();
        else seg.push(j);
      }
      flush();
    }
    ctx.restore();
  }

  onSelect(u) {
    const s = u.select;
    if (s.width < 5) return;
    const from = u.posToVal(s.left, "x"), to = u.posToVal(s.left + s.width, "x");
    u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
    this.opts.onZoom(from * 1000, to * 1000);
  }

  resize() {
    if (this.u && Math.abs(this.u.width - this.width()) > 2) this.u.setSize({ width: this.width(), height: HEIGHT });
  }

  destroy() {
    this.ro.disconnect();
    if (this.u) this.u.destroy();
    this.u = null;
  }
}
