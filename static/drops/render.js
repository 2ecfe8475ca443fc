// Rendering: every element with data-drop-id shows that drop; data-field marks its slots.
import { drops, hooks, phaseOf } from "./drop-state.js";
import { clock, formatDuration, now, parseTime, timeAgo } from "./time.js";

const BADGES = { live: "Live", soldout: "Sold out", upcoming: "Upcoming", ended: "Ended" };
const money = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });

function setText(scope, field, value) {
  for (const node of scope.querySelectorAll(`[data-field="${field}"]`)) {
    // Only real changes, so aria-live regions announce news rather than every tick.
    if (node.textContent !== String(value)) node.textContent = value;
  }
}

// A drop of several sizes names them; a drop of one is sold as before sizes.
const hasSizes = (drop) => (drop.sizes?.length ?? 0) > 1;

// "11 sizes: US 7–US 12" on a drop's card, as the list page's template writes it.
function sizesHint(drop) {
  if (!hasSizes(drop)) return "";
  const { sizes } = drop;
  return `${sizes.length} sizes: ${sizes[0].label}–${sizes[sizes.length - 1].label}`;
}

// The size chips of the drop page: each size's stock, and a sold-out size not choosable.
function renderSizes(scope, sizes) {
  for (const size of sizes ?? []) {
    const chip = scope.querySelector(`[data-size-id="${size.id}"]`);
    if (!chip) continue; // added after the page loaded: shown on the next visit
    const stock = size.availableStock > 0 ? "in" : "out";
    if (chip.dataset.stock !== stock) {
      chip.dataset.stock = stock;
      chip.querySelector("input").disabled = stock === "out";
    }
    setText(chip, "size-label", size.label);
    setText(chip, "size-stock", stock === "in" ? `${size.availableStock} left` : "Sold out");
  }
}

function renderFeed(list, purchases, sized) {
  const key = purchases.map((p) => `${p.username}@${p.timestamp}`).join("|");
  if (list.dataset.key !== key) {
    list.dataset.key = key;
    list.replaceChildren(...purchases.map((purchase) => feedItem(purchase, sized)));
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

function feedItem(purchase, sized) {
  const item = document.createElement("li");
  const buyer = document.createElement("span");
  buyer.className = "buyer";
  buyer.textContent = purchase.username; // masked by the server
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
  const what = sized && purchase.size ? ` bought a pair in ${purchase.size}` : " bought a pair";
  item.append(buyer, what, spoken, " ", ago);
  return item;
}

export function render(drop) {
  const phase = phaseOf(drop);
  for (const el of document.querySelectorAll(`[data-drop-id="${drop.id}"]`)) {
    el.dataset.phase = phase;
    setText(el, "badge", BADGES[phase]);
    setText(el, "name", drop.name);
    setText(el, "price", money.format(Number(drop.price)));
    setText(el, "available", drop.availableStock);
    setText(el, "total", drop.totalStock);
    setText(el, "sizes", sizesHint(drop));
    setText(el, "countdown", formatDuration(parseTime(drop.dropStartTime) - now()));
    for (const bar of el.querySelectorAll('[data-field="bar"]')) {
      bar.style.width = `${(100 * drop.availableStock) / drop.totalStock}%`;
    }
    renderSizes(el, drop.sizes);
    for (const feed of el.querySelectorAll('[data-field="feed"]')) {
      renderFeed(feed, drop.recentPurchases, hasSizes(drop));
    }
  }
  hooks.rendered?.(drop, phase);
}

// Countdowns and "5s ago" labels.
export function renderAll() {
  drops.forEach(render);
}
