// Sparklines on a small canvas: CPU % over the last few minutes.

let colours = null;
const CSS_W = 100, CSS_H = 28;

function theme() {
  const cs = getComputedStyle(document.documentElement);
  return {
    line: cs.getPropertyValue("--spark").trim() || "#3b82f6",
    fill: cs.getPropertyValue("--spark-fill").trim() || "rgba(59,130,246,.15)",
    off: cs.getPropertyValue("--muted").trim() || "#888",
    key: document.documentElement.dataset.theme,
  };
}

// drawSpark draws n values of ring (oldest at head-n) scaled 0–100.
export function drawSpark(canvas, ring, head, n, size, online) {
  if (!colours || colours.key !== document.documentElement.dataset.theme) colours = theme();
  // The CSS size is fixed (app.css: 100×28): reading clientWidth here would
  // force a layout for every row drawn.
  const dpr = window.devicePixelRatio || 1;
  const W = Math.round(CSS_W * dpr), H = Math.round(CSS_H * dpr);
  if (canvas.width !== W || canvas.height !== H) {
    canvas.width = W;
    canvas.height = H;
  }
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, W, H);
  if (n < 2) return;
  const dx = W / (size - 1);
  const y = (v) => H - 1 - (Math.max(0, Math.min(100, v)) / 100) * (H - 2);
  const x0 = W - (n - 1) * dx;
  ctx.beginPath();
  for (let i = 0; i < n; i++) {
    const v = ring[(head - n + i + size) % size];
    if (i === 0) ctx.moveTo(x0, y(v));
    else ctx.lineTo(x0 + i * dx, y(v));
  }
  ctx.lineWidth = Math.max(1, dpr);
  ctx.strokeStyle = online ? colours.line : colours.off;
  ctx.stroke();
  ctx.lineTo(W, H);
  ctx.lineTo(x0, H);
  ctx.closePath();
  ctx.fillStyle = colours.fill;
  ctx.fill();
}
