// Live drop pages. One WebSocket per page keeps each drop's stock and buyers current;
// the drop page also reserves, buys and cancels over the REST API.
// Modules: time, drop-state, render, messages (snapshots and events), socket, api,
// list-page, detail-page.
import { readJson } from "./api.js";
import { setupDetail } from "./detail-page.js";
import { setupList } from "./list-page.js";
import { renderAll } from "./render.js";
import { syncClock } from "./time.js";

const root = document.getElementById("live-root");
const urls = readJson("page-urls");
syncClock(root.dataset.serverNow);
if (root.dataset.page === "list") setupList(root, urls);
else setupDetail(root, urls);
// Countdowns and "5s ago" labels; a quarter second keeps the timer's seconds crisp.
setInterval(renderAll, 250);
