// Connection state in the top bar. The /ws client itself runs in a worker
// (feed.worker.js): it reconnects by itself (backoff up to 5 s), and after
// each (re)connect the hub sends a fresh snapshot that pages rebuild from.

// showStatus shows the connection state in the top bar.
export function showStatus(state, text) {
  const el = document.getElementById("conn");
  if (el) {
    el.dataset.state = state;
    el.textContent = text;
  }
  document.documentElement.dataset.conn = state;
}
