// The drop list: cards move from "Upcoming" to "Live now" as drops open, and a drop
// announced while the page is open gets a card.
import { hooks, phaseOf } from "./drop-state.js";
import { readJson, route } from "./api.js";
import { applySnapshot, handle } from "./messages.js";
import { connectLive } from "./socket.js";

export function setupList(root, urls) {
  const grids = { live: document.getElementById("live-drops"), upcoming: document.getElementById("upcoming-drops") };
  const template = document.getElementById("drop-card-template");

  const updateEmptyStates = () => {
    for (const note of document.querySelectorAll("[data-empty-for]")) {
      note.hidden = document.getElementById(note.dataset.emptyFor).children.length > 0;
    }
  };

  hooks.rendered = (drop, phase) => {
    const card = grids.upcoming.querySelector(`[data-drop-id="${drop.id}"]`);
    if (card && phase !== "upcoming") {
      grids.live.append(card); // it has just opened
      updateEmptyStates();
    }
  };
  hooks.snapshot = (list) => {
    const ids = new Set(list.map((drop) => drop.id));
    for (const card of document.querySelectorAll(".drop-card[data-drop-id]")) {
      if (!ids.has(Number(card.dataset.dropId))) card.remove(); // ended meanwhile
    }
    for (const drop of list) {
      if (document.querySelector(`.drop-card[data-drop-id="${drop.id}"]`)) continue;
      const card = template.content.firstElementChild.cloneNode(true);
      card.dataset.dropId = drop.id;
      card.querySelector(".card-art").dataset.art = drop.id % 4; // as Drop.fallback_art
      card.querySelector(".card-link").href = route(urls.dropPage, drop.id);
      grids[phaseOf(drop) === "upcoming" ? "upcoming" : "live"].append(card);
    }
    updateEmptyStates();
  };

  applySnapshot(readJson("drops-data") ?? []);
  const live = connectLive(root.dataset.socketPath, { onMessage: handle });
  // A drop this page has not seen yet (just created): ask for a fresh snapshot.
  hooks.unknownDrop = () => live.send({ type: "refresh" });
}
