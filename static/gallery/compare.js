// Before/after comparison. Without JavaScript the pair shows side by side, Before on the
// left. With it, the after photo lies over the before photo, shown right of the divider,
// so Before stays on the left in both modes. A range input (a native, accessible slider:
// arrows, Home/End, touch, drag) moves the divider; its value is the divider's position
// from the left, spoken as "60 percent before, 40 percent after".
(function () {
  "use strict";
  function setup(root) {
    var range = root.querySelector(".compare-range");
    var mode = root.querySelector(".compare-mode");
    var frame = root.querySelector(".compare-frame");
    var start = null; // the pointerdown of a press on the photos
    var dragging = false;
    function show(value) {
      frame.style.setProperty("--pos", value + "%");
      // The words come from the page, in its language: "{before} percent before, …".
      var words = range.getAttribute("data-valuetext") || "{before} percent before, {after} percent after";
      range.setAttribute("aria-valuetext", words.replace("{before}", value).replace("{after}", 100 - value));
    }
    function move(e) {
      var r = frame.getBoundingClientRect();
      var v = Math.round(Math.min(100, Math.max(0, (e.clientX - r.left) / r.width * 100)));
      range.value = v;
      show(v);
    }
    range.addEventListener("input", function () { show(range.value); });
    // Drag or tap anywhere on the photos, not only on the thumb. A mouse moves the divider
    // at once; a finger only once it moves sideways or lifts without moving (a tap). The
    // frame is touch-action: pan-y, so a vertical swipe scrolls the page and the browser
    // cancels the pointer instead.
    frame.addEventListener("pointerdown", function (e) {
      if (root.classList.contains("side") || e.button > 0) return;
      start = e;
      dragging = e.pointerType === "mouse";
      if (dragging) {
        frame.setPointerCapture(e.pointerId);
        move(e);
      }
    });
    frame.addEventListener("pointermove", function (e) {
      if (!start) return;
      if (!dragging && Math.abs(e.clientX - start.clientX) > 6) {
        dragging = true;
        frame.setPointerCapture(e.pointerId);
      }
      if (dragging) move(e);
    });
    frame.addEventListener("pointerup", function (e) {
      // A tap (a finger lifted where it landed) moves the divider there.
      if (start && !dragging && Math.abs(e.clientX - start.clientX) + Math.abs(e.clientY - start.clientY) < 10) move(e);
      start = null;
    });
    frame.addEventListener("pointercancel", function () { start = null; });
    // Images are draggable by default: a native drag would cancel the pointer stream.
    frame.addEventListener("dragstart", function (e) { e.preventDefault(); });
    mode.addEventListener("click", function () {
      var side = root.classList.toggle("side");
      mode.setAttribute("aria-pressed", String(side));
      range.disabled = side;
    });
    // The page comes with the divider at the slider's starting value (--pos and
    // aria-valuetext are in the CSS and the HTML): only a value the browser restored (Back)
    // needs setting, so a first load costs no style recalculation.
    if (range.value !== range.defaultValue) show(range.value);
  }
  document.querySelectorAll("[data-compare]").forEach(setup);
  document.querySelectorAll(".reveal").forEach(function (b) {
    b.addEventListener("click", function () {
      b.closest(".sensitive").classList.add("revealed");
      b.parentNode.hidden = true;
    });
  });
})();
