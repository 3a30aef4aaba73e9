// Human units: IEC bytes, rates, percent, load, °C, ages. Times are shown in
// the viewer's time zone.

const IEC = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

function scaled(v, units, base) {
  let i = 0;
  let a = Math.abs(v);
  while (a >= base && i < units.length - 1) {
    a /= base;
    v /= base;
    i++;
  }
  const digits = a >= 100 || i === 0 ? 0 : a >= 10 ? 1 : 2;
  return v.toFixed(digits) + " " + units[i];
}

const none = "–";

export function bytes(v) {
  return v == null || !isFinite(v) ? none : scaled(v, IEC, 1024);
}

export function rate(v) {
  return v == null || !isFinite(v) ? none : scaled(v, IEC, 1024) + "/s";
}

export function pct(v) {
  if (v == null || !isFinite(v)) return none;
  return (v >= 10 || v === 0 ? v.toFixed(0) : v.toFixed(1)) + " %";
}

export function num(v) {
  if (v == null || !isFinite(v)) return none;
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toFixed(1) + " G";
  if (a >= 1e6) return (v / 1e6).toFixed(1) + " M";
  if (a >= 1e4) return (v / 1e3).toFixed(1) + " k";
  return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
}

export function temp(v) {
  return v == null || !isFinite(v) ? none : v.toFixed(0) + " °C";
}

export function secs(v) {
  if (v == null || !isFinite(v)) return none;
  return v < 1 ? (v * 1000).toFixed(0) + " ms" : duration(v);
}

// byUnit returns the formatter for a chart unit name.
export function byUnit(unit) {
  return { pct, bytes, rate, temp, secs }[unit] || num;
}

// duration: 93784 → "1 d 2 h".
export function duration(s) {
  if (s == null || !isFinite(s)) return none;
  s = Math.max(0, Math.floor(s));
  const d = Math.floor(s / 86400), hr = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d) return d + " d " + hr + " h";
  if (hr) return hr + " h " + m + " m";
  if (m) return m + " m " + (s % 60) + " s";
  return s + " s";
}

// ago: elapsed time since ms as "4 s ago".
export function ago(ms, now) {
  if (!ms) return "never";
  const s = Math.max(0, ((now || Date.now()) - ms) / 1000);
  if (s < 2) return "just now";
  if (s < 90) return Math.round(s) + " s ago";
  if (s < 5400) return Math.round(s / 60) + " min ago";
  if (s < 172800) return Math.round(s / 3600) + " h ago";
  return Math.round(s / 86400) + " d ago";
}

// time: a local date and time for ms since epoch.
export function time(ms) {
  return ms ? new Date(ms).toLocaleString() : none;
}

// --- chart axes ----------------------------------------------------------------
//
// An axis shows its ticks in one display unit, chosen from the larger end of
// its scale (IEC for bytes and rates, k/M/G for counts), at 1-2-5 steps of
// that unit and with the decimals the step needs: labels are round in the
// unit they are shown in ("5 GiB", never "9.31 GiB" for 10^10 bytes),
// distinct (a 0.2 B/s step never shows "0 B/s" twice) and equally precise.

// AXIS: unit name → [base, prefixes, suffix]; base 0 has one display unit.
const AXIS = {
  bytes: [1024, IEC, ""],
  rate: [1024, IEC, "/s"],
  num: [1000, ["", "k", "M", "G", "T", "P"], ""],
  pct: [0, ["%"], ""],
  temp: [0, ["°C"], ""],
  secs: [0, ["s"], ""],
};

// axisUnit is the display unit of a scale from lo to hi: {div, name}, where
// a value v shows as v/div followed by name.
export function axisUnit(unit, lo, hi) {
  const [base, names, suffix] = AXIS[unit] || AXIS.num;
  const m = Math.max(Math.abs(lo || 0), Math.abs(hi || 0));
  let div = 1, i = 0;
  if (base) while (isFinite(m) && m >= div * base && i < names.length - 1) { div *= base; i++; }
  return { div, name: names[i] + suffix };
}

// axisIncrs lists the tick steps allowed for a scale from lo to hi (in the
// values' base unit): 1, 2 and 5 times a power of ten of the display unit.
export function axisIncrs(unit, lo, hi) {
  const { div } = axisUnit(unit, lo, hi);
  const out = [];
  for (let e = -3; e <= 5; e++) for (const m of [1, 2, 5]) out.push(m * Math.pow(10, e) * div);
  return out;
}

// axisValues labels the ticks (splits) of a scale from lo to hi that are
// step apart, all in the scale's display unit with the step's decimals.
export function axisValues(unit, splits, step, lo, hi) {
  const { div, name } = axisUnit(unit, lo, hi);
  const s = step / div;
  const dec = Math.max(0, Math.min(3, -Math.floor(Math.log10(s) + 1e-9)));
  return splits.map((v) => {
    if (v == null) return null;
    let x = v / div;
    if (Math.abs(x) < s / 2) x = 0; // no "-0.0"
    return x.toFixed(dec) + (name ? " " + name : "");
  });
}

function pad2(n) {
  return n < 10 ? "0" + n : String(n);
}

// dayLabel: "Dec 4" in the viewer's locale and time zone.
function dayLabel(d) {
  return d.toLocaleDateString(undefined, { month: "short", day: "numeric" });
}

// timeAxisDay is the day label of time s (s since epoch), as the x axis
// shows it.
export function timeAxisDay(s) {
  return dayLabel(new Date(s * 1000));
}

// timeAxisValues labels time ticks (s since epoch) step s apart, in the
// viewer's time zone: "14:05:30" below a minute's step, "14:05" below a
// day's (with the day on a second line at the first tick and where the day
// changes), else the day alone.
export function timeAxisValues(splits, step) {
  let day = "";
  return splits.map((s) => {
    if (s == null) return null;
    const d = new Date(s * 1000);
    if (step >= 86400) return dayLabel(d);
    let t = pad2(d.getHours()) + ":" + pad2(d.getMinutes());
    if (step < 60) t += ":" + pad2(d.getSeconds());
    const k = d.toDateString();
    if (k !== day) {
      day = k;
      t += "\n" + dayLabel(d);
    }
    return t;
  });
}
