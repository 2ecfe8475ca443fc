// A drop's own page: live stock and buyers, and the buyer's reserve, buy and cancel.
import { callApi, readJson, route } from "./api.js";
import { drops, hooks, phaseOf } from "./drop-state.js";
import { applySnapshot, handle } from "./messages.js";
import { connectLive } from "./socket.js";
import { formatDuration, now, parseTime } from "./time.js";

const HOLD_TITLES = { active: "Reserved for you", expired: "Reservation expired", purchased: "Purchased: it's yours" };

function blocker(drop, purchased) {
  switch (phaseOf(drop)) {
    case "upcoming":
      // The stock panel above already counts down ("Opens in"); this says what to do.
      return "Reserving opens when the drop starts; keep this page open.";
    case "ended":
      return "This drop has ended.";
    case "soldout":
      return "Sold out. Pairs come back when reservations expire, so keep this page open.";
  }
  if (purchased >= drop.purchaseLimit) return `You've reached the limit of ${drop.purchaseLimit} per buyer.`;
  return "";
}

// On a phone the action bar is fixed to the bottom of the screen; the page keeps room
// for it (--action-bar-height, read by drop-page.css) so nothing ends up underneath.
function keepRoomForActionBar() {
  const bar = document.querySelector(".action-bar");
  if (!bar || !window.ResizeObserver) return;
  const style = document.documentElement.style;
  new ResizeObserver(() => style.setProperty("--action-bar-height", `${bar.offsetHeight}px`)).observe(bar);
}

export function setupDetail(root, urls) {
  const drop = readJson("drop-data");
  const id = drop.id;
  const panel = document.getElementById("reservation-panel");
  const message = document.getElementById("action-message");
  const reserveButton = document.getElementById("reserve-button"); // absent when logged out
  const purchaseButton = document.getElementById("purchase-button");
  const cancelButton = document.getElementById("cancel-button");
  const hint = document.getElementById("reserve-hint");
  const holdTitle = document.getElementById("hold-title");
  const countdowns = [document.getElementById("reservation-countdown"), document.querySelector("[data-bar-countdown]")];
  const holdSeconds = Number(root.dataset.holdSeconds);
  let reservation = readJson("reservation-data"); // {id, status, expires_at, dropId} or null
  let purchased = Number(root.dataset.purchasedCount) || 0;
  let busy = false;

  const say = (text, kind = "info") => {
    message.dataset.kind = kind;
    message.textContent = text;
  };

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
      for (const countdown of countdowns) if (countdown && countdown.textContent !== left) countdown.textContent = left;
      holdTitle.textContent = HOLD_TITLES[state] ?? "";
    }
    const reason = blocker(drops.get(id), purchased);
    reserveButton.disabled = busy || Boolean(reason);
    purchaseButton.disabled = cancelButton.disabled = busy;
    panel.setAttribute("aria-busy", String(busy));
    const text = reason || `We hold one pair for you for ${holdSeconds} seconds while you check out.`;
    if (hint.textContent !== text) hint.textContent = text;
    hint.toggleAttribute("data-blocked", Boolean(reason));
  }

  // The server's view of this buyer's holds and purchases, after a refusal or a reconnect.
  async function syncReservation() {
    const result = await callApi(urls.reservations, "GET");
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
      if (result.code === "hold_expired") reservation = { ...reservation, status: "EXPIRED" };
      // Any other refusal (not active, sold out, ...) may mean this page's idea of the
      // buyer's hold is stale; a request that never arrived says nothing about it.
      else if (result.code !== "network_error") await syncReservation();
    }
    update();
  }

  hooks.rendered = update;
  keepRoomForActionBar();
  applySnapshot([drop]);
  connectLive(root.dataset.socketPath, { onMessage: handle, onReconnect: reserveButton && syncReservation });
  if (!reserveButton) return;

  reserveButton.addEventListener("click", () =>
    act(urls.reserve, (body) => {
      reservation = body.reservation;
      say("Reserved! One pair is held for you. Buy it before the timer runs out.", "success");
      update();
      purchaseButton.focus();
    }),
  );
  purchaseButton.addEventListener("click", () =>
    act(route(urls.purchase, reservation.id), () => {
      reservation = { ...reservation, status: "PURCHASED" };
      purchased += 1;
      say("Purchase complete. The pair is yours; it is listed under My orders.", "success");
    }),
  );
  cancelButton.addEventListener("click", () =>
    act(route(urls.cancel, reservation.id), () => {
      reservation = null;
      say("Reservation cancelled. The pair is back on the shelf.", "info");
      update();
      reserveButton.focus();
    }),
  );
}
