// One time-series chart on uPlot (global uPlot, loaded by app.js): lines, an
// optional min–max band per line (rollups, so spikes stay visible), a
// crosshair shared by every chart of the page, drag to zoom.
import { h, visible } from "./dom.js";
import { byUnit, axisIncrs, axisValues, timeAxisValues, timeAxisDay } from "./format.js";

export const PALETTE = ["#3b82f6", "#f97316", "#10b981", "#a855f7", "#ef4444", "#eab308", "#06b6d4", "#ec4899", "#84cc16", "#6366f1"];
const SYNC = "sysmonstm-machine";
const HEIGHT = 180;
const LABEL_GAP = 16; // px between two x labels, at least
// X_STEPS: the x axis' tick steps in s (uPlot's own lack 2 min, which
// keeps a phone-wide live chart from dropping to one tick per 5 min).
const M = 60, H = 3600, D = 86400;
const X_STEPS = [1, 2, 5, 10, 15, 30, M, 2 * M, 5 * M, 10 * M, 15 * M, 30 * M, H, 2 * H, 3 * H, 6 * H, 12 * H, D, 2 * D, 7 * D, 14 * D, 30 * D, 90 * D, 365 * D];

function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

// textWidth is the widest line of the labels in CSS px, in axis a's font.
function textWidth(u, a, labels) {
  u.ctx.font = a.font[0]; // uPlot scales the font by the pixel ratio
  let w = 0;
  for (const l of labels) {
    if (l == null) continue;
    for (const line of String(l).split("\n")) w = Math.max(w, u.ctx.measureText(line).width);
  }
  return w / (window.devicePixelRatio || 1);
}

// ySize sizes the y axis to its widest label, so none is clipped. uPlot
// calls it until the sizes settle; the third pass keeps the last size.
function ySize(u, values, i, cycle) {
  const a = u.axes[i];
  if (cycle > 1 && a._size) return a._size;
  return Math.ceil(textWidth(u, a, values || []) + a.ticks.size + a.gap + 2);
}

// xSpace is the least distance of two x ticks, in CSS px: the width of the
// labels the step would have (format.js: with seconds below a minute, with
// a day line below a day, else a day), plus LABEL_GAP. X_STEPS go from 30 s
// to 1 min and from 12 h to 1 day, so the check on a step of the wider kind
// holds for the step uPlot then picks.
function xSpace(u, i, min, max, dim) {
  const a = u.axes[i], perPx = (max - min) / dim;
  const secs = textWidth(u, a, ["00:00:00", timeAxisDay(min), timeAxisDay(max)]) + LABEL_GAP;
  if (perPx * secs < 60) return secs;
  const mins = textWidth(u, a, ["00:00", timeAxisDay(min), timeAxisDay(max)]) + LABEL_GAP;
  if (perPx * mins < 86400) return mins;
  return textWidth(u, a, [timeAxisDay(min), timeAxisDay(max), "Sep 30"]) + LABEL_GAP;
}

// xValues labels the time ticks and drops a label that would stick out of
// the canvas at either end.
function xValues(u, splits, i, space, step) {
  const a = u.axes[i];
  const labels = timeAxisValues(splits, step);
  const left = u.bbox.left / (window.devicePixelRatio || 1);
  return labels.map((l, j) => {
    if (l == null) return null;
    const x = left + u.valToPos(splits[j], "x"), half = textWidth(u, a, [l]) / 2;
    return x - half < 0 || x + half > u.width ? null : l;
  });
}

function alpha(hex, a) {
  const n = parseInt(hex.slice(1), 16);
  return "rgba(" + (n >> 16) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + a + ")";
}

// Chart renders spec {key, title, sub, unit, max, noBand, autoPoints, lines:[{label,
// metric, match, dash}]} into a card. opts: xRange() → [from, to] in s,
// onZoom(fromMs, toMs), explore (true: the title carries an "Explore" link,
// whose href setExplore sets).
export class Chart {
  constructor(spec, opts) {
    this.spec = spec;
    this.opts = opts;
    this.fmt = byUnit(spec.unit);
    this.plot = h("div", { class: "plot" });
    this.explore = opts.explore ? h("a", { class: "chart-explore", text: "Explore", title: "Open this chart's query in Explore" }) : null;
    this.el = h("div", { class: "chart", dataset: { chart: spec.key } },
      h("h3", {}, this.explore, spec.title, spec.sub ? h("span", { class: "sub", text: "  " + spec.sub }) : null), this.plot);
    this.data = [[], ...spec.lines.map(() => [])];
    this.bands = []; // [{i, min, max}]
    this.u = null;
    this.ro = new ResizeObserver(() => this.resize());
    this.ro.observe(this.plot);
  }

  // setExplore points the "Explore" link at url.
  setExplore(url) {
    if (this.explore) this.explore.href = url;
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
        // x: ticks a label's width plus LABEL_GAP apart, so no two touch.
        { stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 },
          space: xSpace, incrs: X_STEPS, values: xValues },
        // y: round steps of the unit (format.js), as wide as its labels.
        { stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 },
          size: ySize, incrs: (u, i, lo, hi) => axisIncrs(spec.unit, lo, hi),
          values: (u, splits, i, space, step) => axisValues(spec.unit, splits, step, u.scales.y.min, u.scales.y.max) },
      ],
      series: [
        { value: (u, v) => (v == null ? "–" : new Date(v * 1000).toLocaleString()) },
        ...spec.lines.map((l, i) => ({
          label: visible(l.label),
          stroke: PALETTE[i % PALETTE.length],
          width: spec.lines.length > 8 ? 1 : 1.5,
          dash: l.dash,
          spanGaps: false,
          points: spec.autoPoints ? {} : { show: false }, // {}: uPlot's, dots where sparse
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
    this.plot.uplot = this.u; // for the browser tests and the console
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
