// Inside the embed iframe: tell the host page our height so it can size the frame.
(function () {
  "use strict";
  function post() {
    window.parent.postMessage({ gallery: "height", height: document.documentElement.scrollHeight }, "*");
  }
  window.addEventListener("load", post);
  if (window.ResizeObserver) new ResizeObserver(post).observe(document.body);
})();
