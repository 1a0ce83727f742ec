// Embed the gallery on a clinic's own website:
//   <div data-gallery-embed="treatment=microneedling&fitzpatrick=4"></div>
//   <script src="https://GALLERY-HOST/static/gallery/embed.js" async></script>
// Each placeholder becomes an iframe of GALLERY-HOST/embed/?<filters>, sized to its content:
// the frame reports its content's height whenever it changes, growing or shrinking.
(function () {
  "use strict";
  var script = document.currentScript;
  var origin = new URL(script.src).origin;
  var frames = [];
  document.querySelectorAll("[data-gallery-embed]").forEach(function (el) {
    var frame = document.createElement("iframe");
    var query = el.getAttribute("data-gallery-embed") || "";
    frame.src = origin + "/embed/" + (query ? "?" + query : "");
    frame.title = el.getAttribute("data-title") || "Before and after cases";
    frame.loading = "lazy";
    frame.style.display = "block";
    frame.style.width = "100%";
    frame.style.border = "0";
    frame.style.height = "30rem"; // until the frame reports its content's height
    el.appendChild(frame);
    frames.push(frame);
  });
  window.addEventListener("message", function (e) {
    if (e.origin !== origin || !e.data || e.data.gallery !== "height") return;
    var height = Number(e.data.height);
    if (!(height > 0)) return;
    frames.forEach(function (f) {
      if (f.contentWindow === e.source) f.style.height = height + "px";
    });
  });
})();
