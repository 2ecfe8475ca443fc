// Live drop pages. One WebSocket per page keeps each drop's stock and buyers current;
// the drop page also reserves, buys and cancels over the REST API.
// The server sends absolute state with a version, so any message may be late or lost:
// older versions are ignored and every (re)connect starts with a fresh snapshot.

const root = document.getElementById("live-root");
const drops = new Map(); // id -> drop, in the shape of DropSerializer
const RECENT_PURCHASES = 3;
const BADGES = { live: "Live", soldout: "Sold out", upcoming: "Upcoming", ended: "Ended" };
const money = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });
const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

// Python sends microseconds; keep milliseconds so every engine parses the string.
const parseTime = (value) => (value ? Date.parse(value.replace(/(\.\d{3})\d+/, "$1")) : NaN);

// Countdowns follow the server's clock, not the visitor's (which may be off).
const clockOffset = parseTime(root.dataset.serverNow) - Date.now() || 0;
const now = () => Date.now() + clockOffset;

function readJson(id) {
  const node = document.getElementById(id);
  return node ? JSON.parse(node.textContent) : null;
}

function phaseOf(drop, at = now()) {
  if (parseTime(drop.dropStartTime) > at) return "upcoming";
  if (drop.dropEndTime && parseTime(drop.dropEndTime) <= at) return "ended";
  return drop.availableStock > 0 ? "live" : "soldout";
}

function formatDuration(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const pad = (n) => String(n).padStart(2, "0");
  const [d, h, m, s] = [total / 86400, (total % 86400) / 3600, (total % 3600) / 60, total % 60].map(Math.floor);
  if (d) return `${d}d ${pad(h)}h ${pad(m)}m`;
  if (h) return `${h}:${pad(m)}:${pad(s)}`;
  return `${m}:${pad(s)}`;
}

function timeAgo(ms) {
  const seconds = Math.max(0, Math.round((now() - ms) / 1000));
  if (seconds < 5) return "just now";
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  return dateTime.format(ms);
}

// ---- Rendering: every element with data-drop-id shows that drop; data-field marks slots.

function setText(scope, field, value) {
  for (const node of scope.querySelectorAll(`[data-field="${field}"]`)) {
    // Only real changes, so aria-live regions announce news rather than every tick.
    if (node.textContent !== String(value)) node.textContent = value;
  }
}

function renderFeed(list, purchases) {
  const key = purchases.map((p) => `${p.username}@${p.timestamp}`).join("|");
  if (list.dataset.key !== key) {
    list.dataset.key = key;
    list.replaceChildren(...purchases.map(feedItem));
    if (!purchases.length) {
      const empty = document.createElement("li");
      empty.className = "feed-empty";
      empty.textContent = "No purchases yet. Be the first.";
      list.append(empty);
    }
  }
  for (const time of list.querySelectorAll("time[data-ago]")) {
    time.textContent = timeAgo(parseTime(time.dateTime));
  }
}

function feedItem(purchase) {
  const item = document.createElement("li");
  const buyer = document.createElement("span");
  buyer.className = "buyer";
  buyer.textContent = purchase.username;
  const at = parseTime(purchase.timestamp);
  // Screen readers hear the fixed clock time; the ticking "5s ago" is for the eye only.
  const spoken = document.createElement("span");
  spoken.className = "visually-hidden";
  spoken.textContent = ` at ${clock.format(at)}`;
  const ago = document.createElement("time");
  ago.dateTime = purchase.timestamp;
  ago.dataset.ago = "";
  ago.setAttribute("aria-hidden", "true");
  ago.textContent = timeAgo(at);
  item.append(buyer, " bought a pair", spoken, " ", ago);
  return item;
}

function render(drop) {
  const phase = phaseOf(drop);
  for (const el of document.querySelectorAll(`[data-drop-id="${drop.id}"]`)) {
    el.dataset.phase = phase;
    setText(el, "badge", BADGES[phase]);
    setText(el, "name", drop.name);
    setText(el, "price", money.format(Number(drop.price)));
    setText(el, "available", drop.availableStock);
    setText(el, "total", drop.totalStock);
    setText(el, "countdown", formatDuration(parseTime(drop.dropStartTime) - now()));
    for (const bar of el.querySelectorAll('[data-field="bar"]')) {
      bar.style.width = `${(100 * drop.availableStock) / drop.totalStock}%`;
    }
    for (const feed of el.querySelectorAll('[data-field="feed"]')) {
      renderFeed(feed, drop.recentPurchases);
    }
  }
  page.rendered?.(drop, phase);
}

// ---- State: snapshots and events.

function byNewest(a, b) {
  return parseTime(b.timestamp) - parseTime(a.timestamp);
}

function mergePurchases(held, incoming) {
  const seen = new Set();
  return [...held, ...incoming]
    .filter((p) => {
      // The same purchase may come in a snapshot and as an event, with differently
      // written timestamps; the instant and the buyer identify it.
      const key = `${p.username}@${parseTime(p.timestamp)}`;
      return !seen.has(key) && seen.add(key);
    })
    .sort(byNewest)
    .slice(0, RECENT_PURCHASES);
}

function applySnapshot(list) {
  const ids = new Set(list.map((drop) => drop.id));
  for (const id of drops.keys()) if (!ids.has(id)) drops.delete(id); // ended meanwhile
  for (const fresh of list) {
    const held = drops.get(fresh.id);
    const drop = { ...fresh, recentPurchases: mergePurchases([], fresh.recentPurchases) };
    if (held && held.version > fresh.version) {
      Object.assign(drop, { availableStock: held.availableStock, totalStock: held.totalStock, version: held.version });
    }
    drops.set(drop.id, drop);
  }
  page.snapshot?.(list);
  drops.forEach(render);
}

function applyStock(event) {
  const drop = drops.get(event.dropId);
  if (!drop) return page.unknownDrop?.(event.dropId);
  if (event.version <= drop.version) return;
  Object.assign(drop, { availableStock: event.availableStock, totalStock: event.totalStock, version: event.version });
  render(drop);
}

function applyPurchase(event) {
  const drop = drops.get(event.dropId);
  if (!drop) return page.unknownDrop?.(event.dropId);
  drop.recentPurchases = mergePurchases(drop.recentPurchases, [event]);
  render(drop);
}

// ---- The socket: visible status, exponential backoff, snapshot on every connect.

function connectLive(path, { onMessage, onReconnect }) {
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
      show("live", "Live");
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

// ---- REST calls with the session cookie and the CSRF token.

function csrfToken() {
  const cookie = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="));
  return cookie ? decodeURIComponent(cookie.slice(10)) : document.querySelector("[name=csrfmiddlewaretoken]")?.value;
}

async function callApi(url, method = "POST") {
  const headers = { Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin" };
  if (method !== "GET") Object.assign(headers, { "Content-Type": "application/json", "X-CSRFToken": csrfToken() });
  if (method !== "GET") init.body = "{}";
  let response;
  try {
    response = await fetch(url, init);
  } catch {
    return { ok: false, status: 0, error: "Network problem: the request did not reach the shop. Please try again." };
  }
  const body = await response.json().catch(() => ({}));
  const error = body.error || `Something went wrong (HTTP ${response.status}). Please try again.`;
  return { ok: response.ok, status: response.status, body, error };
}

// ---- Pages.

const page = {};

function setupList() {
  const grids = { live: document.getElementById("live-drops"), upcoming: document.getElementById("upcoming-drops") };
  const template = document.getElementById("drop-card-template");

  const updateEmptyStates = () => {
    for (const note of document.querySelectorAll("[data-empty-for]")) {
      note.hidden = document.getElementById(note.dataset.emptyFor).children.length > 0;
    }
  };

  page.rendered = (drop, phase) => {
    const card = grids.upcoming.querySelector(`[data-drop-id="${drop.id}"]`);
    if (card && phase !== "upcoming") {
      grids.live.append(card); // it has just opened
      updateEmptyStates();
    }
  };
  page.snapshot = (list) => {
    const ids = new Set(list.map((drop) => drop.id));
    for (const card of document.querySelectorAll(".drop-card[data-drop-id]")) {
      if (!ids.has(Number(card.dataset.dropId))) card.remove(); // ended meanwhile
    }
    for (const drop of list) {
      if (document.querySelector(`.drop-card[data-drop-id="${drop.id}"]`)) continue;
      const card = template.content.firstElementChild.cloneNode(true);
      card.dataset.dropId = drop.id;
      card.querySelector(".card-link").href = `/drops/${drop.id}/`;
      grids[phaseOf(drop) === "upcoming" ? "upcoming" : "live"].append(card);
    }
    updateEmptyStates();
  };

  const initial = readJson("drops-data") ?? [];
  applySnapshot(initial);
  const live = connectLive(root.dataset.socketPath, { onMessage: handle });
  // A drop this page has not seen yet (just created): ask for a fresh snapshot.
  page.unknownDrop = () => live.send({ type: "refresh" });
}

function setupDetail() {
  const drop = readJson("drop-data");
  const id = drop.id;
  const panel = document.getElementById("reservation-panel");
  const message = document.getElementById("action-message");
  const reserveButton = document.getElementById("reserve-button"); // absent when logged out
  const purchaseButton = document.getElementById("purchase-button");
  const cancelButton = document.getElementById("cancel-button");
  const hint = document.getElementById("reserve-hint");
  const holdTitle = document.getElementById("hold-title");
  const countdown = document.getElementById("reservation-countdown");
  const holdSeconds = Number(root.dataset.holdSeconds);
  let reservation = readJson("reservation-data"); // {id, status, expires_at, dropId} or null
  let purchased = Number(root.dataset.purchasedCount) || 0;
  let busy = false;

  const say = (text, kind = "info") => {
    message.dataset.kind = kind;
    message.textContent = text;
  };

  function blocker(current) {
    switch (phaseOf(current)) {
      case "upcoming":
        return `Opens in ${formatDuration(parseTime(current.dropStartTime) - now())}.`;
      case "ended":
        return "This drop has ended.";
      case "soldout":
        return "Sold out. Pairs come back when reservations expire, so keep this page open.";
    }
    if (purchased >= current.purchaseLimit) return `You've reached the limit of ${current.purchaseLimit} per buyer.`;
    return "";
  }

  function update() {
    if (!reserveButton) return;
    if (reservation?.status === "ACTIVE" && parseTime(reservation.expires_at) <= now()) {
      reservation = { ...reservation, status: "EXPIRED" };
      say("Your reservation expired and the pair went back on the shelf. You can reserve again while stock lasts.", "error");
    }
    const state = reservation ? reservation.status.toLowerCase() : "none";
    panel.dataset.state = state;
    if (reservation) {
      const left = formatDuration(parseTime(reservation.expires_at) - now());
      if (countdown.textContent !== left) countdown.textContent = left;
      holdTitle.textContent = { active: "Reserved for you", expired: "Reservation expired", purchased: "Purchased: it's yours" }[state] ?? "";
    }
    const reason = blocker(drops.get(id));
    reserveButton.disabled = busy || Boolean(reason);
    purchaseButton.disabled = cancelButton.disabled = busy;
    panel.setAttribute("aria-busy", String(busy));
    const text = reason || `We hold one pair for you for ${holdSeconds} seconds while you check out.`;
    if (hint.textContent !== text) hint.textContent = text;
  }

  // The server's view of this buyer's holds and purchases, after a refusal or a reconnect.
  async function syncReservation() {
    const result = await callApi("/api/reservations", "GET");
    if (!result.ok) return;
    const mine = result.body.reservations.filter((r) => r.dropId === id);
    const active = mine.find((r) => r.status === "ACTIVE");
    const known = reservation && mine.find((r) => r.id === reservation.id);
    reservation = active ?? known ?? null;
    if (reservation?.status === "CANCELLED") reservation = null;
    purchased = result.body.purchases.filter((p) => p.dropId === id).length;
    update();
  }

  async function act(url, succeeded) {
    if (busy) return;
    busy = true;
    update();
    const result = await callApi(url);
    busy = false;
    if (result.ok) {
      succeeded(result.body);
    } else {
      say(result.error, "error");
      if (result.status === 410) reservation = { ...reservation, status: "EXPIRED" };
      else if (result.status) await syncReservation();
    }
    update();
  }

  page.rendered = update;
  applySnapshot([drop]);
  connectLive(root.dataset.socketPath, { onMessage: handle, onReconnect: reserveButton && syncReservation });
  if (!reserveButton) return;

  reserveButton.addEventListener("click", () =>
    act(`/api/reserve/${id}`, (body) => {
      reservation = body.reservation;
      say("Reserved! One pair is held for you. Buy it before the timer runs out.", "success");
      update();
      purchaseButton.focus();
    }),
  );
  purchaseButton.addEventListener("click", () =>
    act(`/api/purchase/${reservation.id}`, () => {
      reservation = { ...reservation, status: "PURCHASED" };
      purchased += 1;
      say("Purchase complete. The pair is yours; it is listed under My orders.", "success");
    }),
  );
  cancelButton.addEventListener("click", () =>
    act(`/api/reservations/${reservation.id}/cancel`, () => {
      reservation = null;
      say("Reservation cancelled. The pair is back on the shelf.", "info");
      update();
      reserveButton.focus();
    }),
  );
}

function handle(message) {
  if (message.type === "snapshot") applySnapshot(message.drops);
  else if (message.type === "stockUpdate") applyStock(message);
  else if (message.type === "newPurchase") applyPurchase(message);
  else if (message.type === "error") console.warn("live updates:", message.error);
}

function tick() {
  drops.forEach(render);
}

for (const time of document.querySelectorAll("time[data-local-time]")) {
  time.textContent = dateTime.format(parseTime(time.dateTime));
}
if (root.dataset.page === "list") setupList();
else setupDetail();
// Countdowns and "5s ago" labels; a quarter second keeps the timer's seconds crisp.
setInterval(tick, 250);
