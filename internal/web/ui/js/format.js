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
