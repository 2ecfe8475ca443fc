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

// The size picker of a drop of several sizes (the template _size_picker.html), or
// null. onChoose runs when the buyer picks a size.
function setupSizes(onChoose) {
  const picker = document.getElementById("size-picker");
  if (!picker) return null;
  const input = (id) => picker.querySelector(`input[value="${id}"]`);
  let chosenId = Number(picker.querySelector("input:checked")?.value) || null; // kept by a reload
  picker.addEventListener("change", (event) => {
    chosenId = Number(event.target.value);
    delete picker.dataset.prompt;
    onChoose();
  });
  return {
    picker,
    chosen: (drop) => drop.sizes?.find((size) => size.id === chosenId) ?? null,
    choose(sizeId) {
      if (sizeId === chosenId) return;
      chosenId = sizeId;
      if (sizeId === null) for (const radio of picker.querySelectorAll("input:checked")) radio.checked = false;
      else if (input(sizeId)) input(sizeId).checked = true;
    },
    // Reserve without a size brings the picker into view, focus on its first size left.
    show() {
      const still = matchMedia("(prefers-reduced-motion: reduce)").matches;
      picker.dataset.prompt = ""; // outlines the sizes left (sizes.css)
      picker.scrollIntoView({ block: "center", behavior: still ? "auto" : "smooth" });
      picker.querySelector("input:not(:disabled)")?.focus({ preventScroll: true });
    },
  };
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
  const holdSize = document.getElementById("hold-size");
  // null for a drop of one size. Choosing a size answers a prompt or sold-out word.
  const sizes = setupSizes(() => {
    if (message.dataset.kind !== "success") say("");
    update();
  });
  let reservation = readJson("reservation-data"); // {id, status, expires_at, dropId, size} or null
  let purchased = Number(root.dataset.purchasedCount) || 0;
  let busy = false;

  const say = (text, kind = "info") => {
    message.dataset.kind = kind;
    message.textContent = text;
  };
  // "in US 9.5", or nothing for a drop of one size.
  const inSize = (size) => (sizes && size ? ` in ${size.label}` : "");

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
      if (holdSize && reservation.size && holdSize.textContent !== reservation.size.label) holdSize.textContent = reservation.size.label;
    }
    const reason = blocker(drops.get(id), purchased);
    const size = sizes && updateSizes(state);
    reserveButton.disabled = busy || Boolean(reason);
    purchaseButton.disabled = cancelButton.disabled = busy;
    panel.setAttribute("aria-busy", String(busy));
    const label = !sizes ? "Reserve a pair" : size ? `Reserve ${size.label}` : "Choose a size";
    if (reserveButton.textContent !== label) reserveButton.textContent = label;
    const ask = sizes && !size ? "Choose your size, then reserve: we hold the pair" : "We hold one pair";
    const text = reason || `${ask} for you for ${holdSeconds} seconds while you check out.`;
    if (hint.textContent !== text) hint.textContent = text;
    hint.toggleAttribute("data-blocked", Boolean(reason));
  }

  // The picker follows the hold (its size, and no other chosen while it lasts); a
  // chosen size that sells out meanwhile is let go, with a word unless it was the
  // buyer's own last pair. Returns the chosen size, if any.
  function updateSizes(state) {
    if (state === "active" && reservation.size) sizes.choose(reservation.size.id);
    sizes.picker.disabled = state === "active";
    const size = sizes.chosen(drops.get(id));
    if (size && size.availableStock <= 0 && state !== "active") {
      sizes.choose(null);
      if (state === "none" || state === "expired") say(`${size.label} just sold out. Choose another size.`, "error");
      return null;
    }
    return size;
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

  async function act(url, succeeded, body) {
    if (busy) return;
    busy = true;
    update();
    const result = await callApi(url, "POST", body);
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

  reserveButton.addEventListener("click", () => {
    const size = sizes?.chosen(drops.get(id));
    if (sizes && !size) {
      say("Choose your size first.", "info");
      return sizes.show();
    }
    act(
      urls.reserve,
      (body) => {
        reservation = { size: size && { id: size.id, label: size.label }, ...body.reservation };
        say(`Reserved! One pair${inSize(reservation.size)} is held for you. Buy it before the timer runs out.`, "success");
        update();
        purchaseButton.focus();
      },
      size ? { size: size.id } : {},
    );
  });
  purchaseButton.addEventListener("click", () =>
    act(route(urls.purchase, reservation.id), () => {
      reservation = { ...reservation, status: "PURCHASED" };
      purchased += 1;
      say(`Purchase complete. The pair${inSize(reservation.size)} is yours; it is listed under My orders.`, "success");
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
