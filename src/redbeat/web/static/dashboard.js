// RedBeat dashboard: the few lines htmx does not do by itself (no build step, no framework).
// A refused request (403: CSRF or read-only, 401, 5xx) is shown instead of failing silently.
document.addEventListener("htmx:responseError", function (event) {
  var box = document.getElementById("client-error");
  if (!box) return;
  var text = event.detail.xhr.responseText || "";
  try { text = JSON.parse(text).error || text; } catch (e) { /* not JSON */ }
  box.textContent = "Refused (" + event.detail.xhr.status + "): " + text;
  box.hidden = false;
});
document.addEventListener("htmx:afterRequest", function (event) {
  var box = document.getElementById("client-error");
  if (box && event.detail.successful && event.detail.requestConfig.verb !== "get") box.hidden = true;
});
