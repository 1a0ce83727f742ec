// The gallery filter works as a plain GET form without JavaScript; on a phone its panel
// opens as a sheet (list.css styles the open <details>) whose button submits the form.
// With JavaScript, each change fetches the filter panel and the results together
// (X-Fragment: layout) and puts both in place, so every count, every disabled option and
// the sheet's "Show N cases" button come from the same response. The address bar keeps a
// shareable link (history entries, so Back works).
(function () {
  "use strict";
  var wide = window.matchMedia("(min-width: 60em)");
  var status = document.getElementById("filter-status");
  var pending = null;

  function el(id) { return document.getElementById(id); }

  // On a wide screen the panel sits open beside the results; on a phone it is a sheet.
  function fit() {
    var panel = el("filter-panel");
    if (panel) panel.open = wide.matches;
  }
  fit();
  wide.addEventListener("change", fit);
  if (!el("filters") || !window.fetch) return;

  function query() {
    var params = new URLSearchParams(new FormData(el("filters")));
    Array.from(params.keys()).forEach(function (k) {
      if (!params.get(k)) params.delete(k);
    });
    if (params.get("sort") === "newest") params.delete("sort");
    var q = params.toString();
    return el("filters").action + (q ? "?" + q : "");
  }

  // The element to focus again in the new panel: the same input, or the same id.
  function selectorFor(node) {
    if (!node || !el("gallery-layout").contains(node)) return null;
    if (node.name && node.type === "checkbox") {
      return 'input[name="' + CSS.escape(node.name) + '"][value="' + CSS.escape(node.value) + '"]';
    }
    if (node.name) return '[name="' + CSS.escape(node.name) + '"]';
    return node.id ? "#" + CSS.escape(node.id) : null;
  }

  function swap(html) {
    var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("gallery-layout");
    if (!fresh) return false;
    var panel = el("filter-panel");
    var scroll = panel.scrollTop;
    var focused = document.activeElement;
    var selector = selectorFor(focused);
    fresh.querySelector("#filter-panel").open = panel.open;
    el("gallery-layout").replaceWith(fresh);
    el("filter-panel").scrollTop = scroll;
    var again = selector && fresh.querySelector(selector);
    if (again) {
      // A number being typed when the response arrived keeps what was typed.
      if (focused.type === "number") again.value = focused.value;
      again.focus({ preventScroll: true });
    }
    document.title = fresh.dataset.title || document.title;
    status.textContent = fresh.querySelector("#results .count").textContent;
    return true;
  }

  function load(url, push, then) {
    if (pending) pending.abort();
    var mine = (pending = new AbortController());
    el("results").setAttribute("aria-busy", "true");
    fetch(url, { headers: { "X-Fragment": "layout" }, signal: mine.signal })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        if (!swap(html)) return Promise.reject("no layout");
        if (push) history.pushState({}, "", url);
        pending = null;
        document.dispatchEvent(new Event("gallery:results"));
        if (then) then();
      })
      .catch(function (e) { if (!e || e.name !== "AbortError") window.location = url; });
  }

  // Back to the results: the sheet closes and the first result is in view.
  function showResults() {
    var panel = el("filter-panel");
    if (!wide.matches && panel.open) {
      panel.open = false;
      el("filter-toggle").focus({ preventScroll: true });
    }
    var results = el("results");
    if (results.getBoundingClientRect().top < 0 || !wide.matches) results.scrollIntoView();
  }

  document.addEventListener("change", function (e) {
    if (e.target.form && e.target.form.id === "filters") load(query(), true);
  });
  document.addEventListener("submit", function (e) {
    if (e.target.id !== "filters") return;
    e.preventDefault();
    var url = query();
    if (pending || new URL(url, location.href).href !== location.href) load(url, true, showResults);
    else showResults();
  });
  document.addEventListener("click", function (e) {
    var panel = el("filter-panel");
    var link = e.target.closest("a[data-filter-link]");
    if (link && !(e.ctrlKey || e.metaKey || e.shiftKey || e.altKey || e.button)) {
      e.preventDefault();
      load(link.href, true, showResults);
    } else if (e.target.closest("#filter-toggle") && wide.matches) {
      e.preventDefault(); // beside the results the panel stays open
    } else if (panel && panel.open && !wide.matches && !panel.contains(e.target)) {
      panel.open = false; // a tap on the dimmed page closes the sheet
    }
  });
  document.addEventListener("keydown", function (e) {
    var panel = el("filter-panel");
    if (e.key === "Escape" && panel && panel.open && !wide.matches) {
      panel.open = false;
      el("filter-toggle").focus();
    }
  });
  window.addEventListener("popstate", function () { load(location.href, false); });
})();
