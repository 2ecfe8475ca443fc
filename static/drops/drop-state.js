// What the page knows of each drop (in the shape of DropSerializer), and the hooks a
// page sets to follow it.
import { now, parseTime } from "./time.js";

export const drops = new Map(); // id -> drop
export const RECENT_PURCHASES = 3;

// Set by the page: rendered(drop, phase), snapshot(list), unknownDrop(id).
export const hooks = {};

export function phaseOf(drop, at = now()) {
  if (parseTime(drop.dropStartTime) > at) return "upcoming";
  if (drop.dropEndTime && parseTime(drop.dropEndTime) <= at) return "ended";
  return drop.availableStock > 0 ? "live" : "soldout";
}
