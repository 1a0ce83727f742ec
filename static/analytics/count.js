// Counts for the clinic's own report: which cases are looked at and compared, which filters
// are chosen. Each is a number sent to this site (navigator.sendBeacon, no cookie, no
// identifier); the server keeps only daily totals. Once per page view per kind.
(function () {
  "use strict";
  var root = document.querySelector("[data-count]");
  if (!root || !navigator.sendBeacon) return;
  var url = root.getAttribute("data-count");
  var sent = {};
  function send(kind, data) {
    var body = new URLSearchParams(data);
    body.set("k", kind);
    navigator.sendBeacon(url, body);
  }
  var id = root.getAttribute("data-case");
  if (id) {
    send("view", { c: id });
    // The first move of any slider, or the first switch of mode, on this page view.
    var compared = function (e) {
      if (sent.compare || !e.target.closest(".compare-range, .compare-mode")) return;
      sent.compare = true;
      send("compare", { c: id });
    };
    document.addEventListener("input", compared);
    document.addEventListener("click", compared);
  } else {
    // The list: its filters as loaded, and as chosen in place (filters.js announces each).
    var last = null;
    var filters = function (search) {
      var q = search.replace(/^\?/, "");
      if (!q || q === last) return;
      last = q;
      send("filter", { q: q });
    };
    filters(location.search);
    document.addEventListener("gallery:results", function () { filters(location.search); });
  }
})();
