// What the server hands the page: JSON embedded by the template (json_script), the API
// routes it names (so no path is written here), and REST calls with the session cookie
// and the CSRF token.

export function readJson(id) {
  const node = document.getElementById(id);
  return node ? JSON.parse(node.textContent) : null;
}

// A route from the page's config with the object's id in its "{id}" slot.
export const route = (template, id) => template.replace("{id}", encodeURIComponent(id));

function csrfToken() {
  const cookie = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="));
  return cookie ? decodeURIComponent(cookie.slice(10)) : document.querySelector("[name=csrfmiddlewaretoken]")?.value;
}

// Resolves to {ok: true, body} or {ok: false, code, error}: callers branch on the error's
// stable code ("sold_out", "hold_expired", ...; inventory_project/api_errors.py), never
// on the HTTP status, and show its sentence.
// A POST sends `body` as JSON (the reserve call names the size there: {"size": 5}).
export async function callApi(url, method = "POST", body = {}) {
  const headers = { Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin" };
  if (method !== "GET") Object.assign(headers, { "Content-Type": "application/json", "X-CSRFToken": csrfToken() });
  if (method !== "GET") init.body = JSON.stringify(body);
  let response;
  try {
    response = await fetch(url, init);
  } catch {
    return { ok: false, code: "network_error", error: "Network problem: the request did not reach the shop. Please try again." };
  }
  const answer = await response.json().catch(() => ({}));
  if (response.ok) return { ok: true, body: answer };
  // An answer that is not the API's JSON (a proxy's error page) has no code.
  const error = answer.error || `Something went wrong (HTTP ${response.status}). Please try again.`;
  return { ok: false, code: answer.code || "unknown", error };
}
