// Inside the embed iframe: tell the host page the height of our content so it can size the
// frame. The content is measured, not the document: a document is never shorter than its
// frame, so its scrollHeight would let the frame grow but never shrink again.
(function () {
  "use strict";
  var content = document.querySelector("[data-embed-content]");
  var last = 0;
  function post() {
    var height = Math.ceil(content.getBoundingClientRect().height);
    if (height === last) return;
    last = height;
    window.parent.postMessage({ gallery: "height", height: height }, "*");
  }
  window.addEventListener("load", post);
  if (window.ResizeObserver) new ResizeObserver(post).observe(content);
  else window.addEventListener("resize", post);
})();
