// Time on the pages: countdowns follow the server's clock, dates the visitor's.

// Python sends microseconds; keep milliseconds so every engine parses the string.
export const parseTime = (value) => (value ? Date.parse(value.replace(/(\.\d{3})\d+/, "$1")) : NaN);

let clockOffset = 0;

// Countdowns follow the server's clock, not the visitor's (which may be off).
export function syncClock(serverNow) {
  clockOffset = parseTime(serverNow) - Date.now() || 0;
}

export const now = () => Date.now() + clockOffset;

export const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const dateTimeSeconds = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

export function formatDuration(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const pad = (n) => String(n).padStart(2, "0");
  const [d, h, m, s] = [total / 86400, (total % 86400) / 3600, (total % 3600) / 60, total % 60].map(Math.floor);
  if (d) return `${d}d ${pad(h)}h ${pad(m)}m`;
  if (h) return `${h}:${pad(m)}:${pad(s)}`;
  return `${m}:${pad(s)}`;
}

export function timeAgo(ms) {
  const seconds = Math.max(0, Math.round((now() - ms) / 1000));
  if (seconds < 5) return "just now";
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  return dateTime.format(ms);
}

// The server writes <time data-local-time datetime="..."> in UTC (so the page reads
// right without script); here it becomes the visitor's own time. data-local-time="seconds"
// keeps the seconds, which matter for holds of a minute.
export function showLocalTimes(scope = document) {
  for (const time of scope.querySelectorAll("time[data-local-time]")) {
    const format = time.dataset.localTime === "seconds" ? dateTimeSeconds : dateTime;
    const at = parseTime(time.dateTime);
    if (!Number.isNaN(at)) time.textContent = format.format(at);
  }
}
