// The gallery filter works as a plain GET form without JavaScript. With it, results and
// facet counts update in place as options change, and the address bar keeps a shareable
// link (history entries, so Back works).
(function () {
  "use strict";
  var form = document.getElementById("filters");
  var panel = document.getElementById("filter-panel");
  // The filters fold away on a phone; on a wide screen they sit open beside the results.
  if (panel && window.matchMedia("(min-width: 60em)").matches) panel.open = true;
  if (!form || !window.fetch) return;
  var pending = null;

  function query() {
    var params = new URLSearchParams(new FormData(form));
    Array.from(params.keys()).forEach(function (k) {
      if (!params.get(k)) params.delete(k);
    });
    if (params.get("sort") === "newest") params.delete("sort");
    var q = params.toString();
    return q ? "?" + q : "";
  }

  function load(url, push) {
    if (pending) pending.abort();
    pending = new AbortController();
    document.getElementById("results").setAttribute("aria-busy", "true");
    fetch(url, { headers: { "X-Fragment": "layout" }, signal: pending.signal })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        document.getElementById("results").innerHTML = doc.getElementById("results").innerHTML;
        // Refresh each option's count without re-rendering the form the user is using.
        doc.querySelectorAll("#filters label.option").forEach(function (label) {
          var input = label.querySelector("input");
          var mine = form.querySelector('input[name="' + input.name + '"][value="' + input.value + '"]');
          if (mine) mine.closest("label").querySelector(".count").replaceWith(label.querySelector(".count"));
        });
        if (push) history.pushState({ q: url }, "", url);
        document.getElementById("results").removeAttribute("aria-busy");
      })
      .catch(function (e) { if (e && e.name !== "AbortError") window.location = url; });
  }

  form.addEventListener("change", function () { load(form.action + query(), true); });
  form.addEventListener("submit", function (e) { e.preventDefault(); load(form.action + query(), true); });
  window.addEventListener("popstate", function () { window.location.reload(); });
})();
