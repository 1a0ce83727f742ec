// Before/after comparison. Without JavaScript the pair shows side by side. With it, the
// after photo lies over the before photo, shown left of the divider, and a range input (a native, accessible slider:
// arrows, Home/End, touch, drag) reveals it; its spoken value is "60 percent after".
(function () {
  "use strict";
  function setup(root) {
    var range = root.querySelector(".compare-range");
    var mode = root.querySelector(".compare-mode");
    var frame = root.querySelector(".compare-frame");
    function show(value) {
      frame.style.setProperty("--pos", value + "%");
      range.setAttribute("aria-valuetext", value + " percent after");
    }
    range.addEventListener("input", function () { show(range.value); });
    // Drag or tap anywhere on the photos, not only on the thumb.
    frame.addEventListener("pointerdown", function (e) {
      if (root.classList.contains("side")) return;
      frame.setPointerCapture(e.pointerId);
      move(e);
      frame.addEventListener("pointermove", move);
    });
    // Images are draggable by default: a native drag would cancel the pointer stream.
    frame.addEventListener("dragstart", function (e) { e.preventDefault(); });
    frame.addEventListener("pointerup", function () { frame.removeEventListener("pointermove", move); });
    frame.addEventListener("pointercancel", function () { frame.removeEventListener("pointermove", move); });
    function move(e) {
      var r = frame.getBoundingClientRect();
      var v = Math.round(Math.min(100, Math.max(0, (e.clientX - r.left) / r.width * 100)));
      range.value = v;
      show(v);
    }
    mode.addEventListener("click", function () {
      var side = root.classList.toggle("side");
      mode.setAttribute("aria-pressed", String(side));
      range.disabled = side;
    });
    show(range.value);
  }
  document.querySelectorAll("[data-compare]").forEach(setup);
  document.querySelectorAll(".reveal").forEach(function (b) {
    b.addEventListener("click", function () {
      b.closest(".sensitive").classList.add("revealed");
      b.parentNode.hidden = true;
    });
  });
})();
