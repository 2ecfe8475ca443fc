// The page's one WebSocket: visible status, exponential backoff, snapshot on every connect.
// The status is worded ("Connected", "Reconnecting…") so it never reads as a drop's LIVE.

export function connectLive(path, { onMessage, onReconnect }) {
  const status = document.getElementById("connection-status");
  const statusText = status.querySelector("[data-status-text]");
  const base = new URL(document.body.dataset.wsUrl || "/ws/", location.href);
  base.protocol = base.protocol.replace(/^http/, "ws");
  const url = new URL(path, base);
  let socket = null;
  let attempt = 0;
  let everOpen = false;
  let heartbeat = null;

  const show = (state, text) => {
    status.dataset.state = state;
    if (statusText.textContent !== text) statusText.textContent = text;
  };
  const send = (message) => {
    if (socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
  };

  function connect() {
    socket = new WebSocket(url);
    socket.addEventListener("open", () => {
      attempt = 0;
      show("live", "Connected");
      if (everOpen) onReconnect?.();
      everOpen = true;
      // Keeps idle proxies from closing the socket and notices a dead peer.
      heartbeat = setInterval(() => send({ type: "ping" }), 25_000);
    });
    socket.addEventListener("message", (event) => onMessage(JSON.parse(event.data)));
    socket.addEventListener("close", (event) => {
      clearInterval(heartbeat);
      if (event.code === 4404) return show("offline", "This drop is no longer available.");
      const delay = Math.min(10_000, 500 * 2 ** attempt) * (0.75 + Math.random() / 2);
      attempt += 1;
      show("reconnecting", `Connection lost. Reconnecting${attempt > 1 ? ` (attempt ${attempt})` : ""}…`);
      setTimeout(connect, delay);
    });
  }

  connect();
  return { send };
}
