// Snapshots and events from the socket. The server sends absolute state with a version,
// so any message may be late or lost: older versions are ignored and every (re)connect
// starts with a fresh snapshot.
import { RECENT_PURCHASES, drops, hooks } from "./drop-state.js";
import { render } from "./render.js";
import { parseTime } from "./time.js";

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

export function applySnapshot(list) {
  const ids = new Set(list.map((drop) => drop.id));
  for (const id of drops.keys()) if (!ids.has(id)) drops.delete(id); // ended meanwhile
  for (const fresh of list) {
    const held = drops.get(fresh.id);
    const drop = { ...fresh, recentPurchases: mergePurchases([], fresh.recentPurchases) };
    if (held && held.version > fresh.version) Object.assign(drop, stockOf(held));
    drops.set(drop.id, drop);
  }
  hooks.snapshot?.(list);
  drops.forEach(render);
}

// A drop's stock: its sums, their version and every size (a frame's list is complete).
function stockOf({ availableStock, totalStock, version, sizes }) {
  return { availableStock, totalStock, version, ...(sizes && { sizes }) };
}

function applyStock(event) {
  const drop = drops.get(event.dropId);
  if (!drop) return hooks.unknownDrop?.(event.dropId);
  if (event.version <= drop.version) return;
  Object.assign(drop, stockOf(event));
  render(drop);
}

function applyPurchase(event) {
  const drop = drops.get(event.dropId);
  if (!drop) return hooks.unknownDrop?.(event.dropId);
  drop.recentPurchases = mergePurchases(drop.recentPurchases, [event]);
  render(drop);
}

export function handle(message) {
  if (message.type === "snapshot") applySnapshot(message.drops);
  else if (message.type === "stockUpdate") applyStock(message);
  else if (message.type === "newPurchase") applyPurchase(message);
  else if (message.type === "error") console.warn("live updates:", message.error);
}
