// The crop editor: each photo of a pair is shown in a frame of the pair's shape, moved by
// dragging, zoomed by pinching, the mouse wheel or the keyboard and turned by a slider,
// buttons or the keyboard, with the other photo of the pair laid over it at an adjustable
// opacity so the two line up. The preview is a CSS transform, computed as the server crops
// and renders (images.crop_at and render_crop); the form's zoom, centre and turn fields
// follow, and saving posts them once. Without JavaScript the same fields are plain number
// inputs.
(function () {
  "use strict";
  var MIN = 1, MAX = 4, KEY_ZOOM = 0.05, TURN_STEP = 0.1, TURN_BIG_STEP = 1;

  function clamp(v, lo, hi) { return Math.min(hi, Math.max(lo, v)); }
  function num(v, d) { var n = parseFloat(v); return isFinite(n) ? n : d; }

  // images.crop_at: a crop of the pair's aspect, zoom times closer than the largest one,
  // centred as near (cx, cy) as the photo's edges allow; turned by `rotation` (degrees,
  // Photo.rotation) it stays inside the photo, the zoom raised and the centre moved in as
  // far as that needs.
  function cropAt(photo, aspect, zoom, cx, cy, rotation) {
    var bw = 1, bh = 1;
    if (photo.width / photo.height > aspect) bw = aspect * photo.height / photo.width;
    else bh = (photo.width / aspect) / photo.height;
    var w0 = bw * photo.width, h0 = bh * photo.height;
    var r = (rotation || 0) * Math.PI / 180;
    var c = Math.abs(Math.cos(r)), s = Math.abs(Math.sin(r));
    var spanX = Math.max(w0, c * w0 + s * h0), spanY = Math.max(h0, s * w0 + c * h0);
    zoom = Math.max(zoom, spanX / photo.width, spanY / photo.height);
    var w = bw / zoom, h = bh / zoom;
    var ex = spanX / zoom / photo.width / 2, ey = spanY / zoom / photo.height / 2;
    cx = Math.min(Math.max(cx, ex), 1 - ex);
    cy = Math.min(Math.max(cy, ey), 1 - ey);
    return {
      left: clamp(cx - w / 2, 0, 1 - w), top: clamp(cy - h / 2, 0, 1 - h), w: w, h: h, zoom: zoom
    };
  }

  // Lay an image out so that the crop fills the frame. images.render_crop: rendered output
  // pixel u shows the photo at the crop's centre + R(rotation) u, so on screen the photo
  // turns by -rotation about the frame's centre, which is the turn staff set (state.turn).
  function place(img, photo, aspect, state, fw, fh) {
    var c = cropAt(photo, aspect, state.zoom, state.x, state.y, -state.turn);
    var iw = fw / c.w, ih = fh / c.h;
    img.style.width = iw + "px";
    img.style.height = ih + "px";
    img.style.transform = "translate(" + fw / 2 + "px," + fh / 2 + "px) rotate(" + state.turn +
      "deg) translate(" + -(c.left + c.w / 2) * iw + "px," + -(c.top + c.h / 2) * ih + "px)";
    return { crop: c, iw: iw, ih: ih };
  }

  // "2.5° clockwise", as the readout and the slider say it; "2.5° ↻" where room is short.
  function turnText(turn) {
    if (!turn) return "not turned";
    return Math.abs(turn).toFixed(1) + "° " + (turn > 0 ? "clockwise" : "anticlockwise");
  }
  function shortTurn(turn) {
    if (!turn) return "0°";
    return (turn < 0 ? "−" : "") + Math.abs(turn).toFixed(1) + "° " + (turn > 0 ? "↻" : "↺");
  }

  function fieldsOf(form) {
    return {
      zoom: form.querySelector("input[name=zoom]"),
      x: form.querySelector("input[name=centre_x]"),
      y: form.querySelector("input[name=centre_y]"),
      turn: form.querySelector("input[name=turn]"),
      limit: num(form.dataset.limit, 15)
    };
  }

  function readState(fields) {
    return {
      zoom: clamp(num(fields.zoom.value, 1), MIN, MAX),
      x: clamp(num(fields.x.value, 0.5), 0, 1),
      y: clamp(num(fields.y.value, 0.5), 0, 1),
      turn: fields.turn ? clamp(num(fields.turn.value, 0), -fields.limit, fields.limit) : 0
    };
  }

  var editors = [];

  function setup(form, index) {
    var d = form.dataset;
    var aspect = num(d.aspect, 1);
    var photo = { width: num(d.width, 1), height: num(d.height, 1) };
    var other = { width: num(d.partnerWidth, 1), height: num(d.partnerHeight, 1) };
    var fields = fieldsOf(form);
    var partnerForm = document.getElementById(d.partner);
    var partnerFields = partnerForm ? fieldsOf(partnerForm) : null;
    var legend = form.querySelector("legend");
    var role = legend ? legend.textContent.trim().toLowerCase() : "photo";
    var id = "crop-ui-" + index;

    var ui = document.createElement("div");
    ui.className = "crop-ui";
    var stage = document.createElement("div");
    stage.className = "crop-stage";
    stage.tabIndex = 0;
    stage.setAttribute("role", "group");
    stage.setAttribute("aria-roledescription", "crop editor");
    stage.setAttribute("aria-label", "Crop of the " + role);
    stage.setAttribute("aria-describedby", id + "-help " + id + "-readout");
    stage.style.aspectRatio = String(aspect);
    var img = document.createElement("img");
    img.className = "crop-image";
    img.alt = "";
    img.draggable = false;
    var onion = document.createElement("img");
    onion.className = "crop-onion";
    onion.alt = "";
    onion.draggable = false;
    stage.appendChild(img);
    stage.appendChild(onion);
    var readout = document.createElement("p");
    readout.className = "crop-readout";
    readout.id = id + "-readout";
    readout.setAttribute("aria-live", "polite");
    var help = document.createElement("p");
    help.className = "hint";
    help.id = id + "-help";
    help.textContent = "Drag the photo, or use the arrow keys, to move it; pinch, " +
      "the mouse wheel or + and − to zoom; the [\u00a0and\u00a0] keys turn it by 0.1° " +
      "(with Shift, by 1°).";
    var tools = document.createElement("div");
    tools.className = "crop-tools";
    var opacityLabel = document.createElement("label");
    opacityLabel.className = "crop-opacity";
    opacityLabel.textContent = "Show the " + (d.partnerRole || "other") + " photo over it ";
    var opacity = document.createElement("input");
    opacity.type = "range";
    opacity.min = "0";
    opacity.max = "100";
    opacity.step = "5";
    opacity.value = "40";
    opacityLabel.appendChild(opacity);
    function button(text, label, cls) {
      var b = document.createElement("button");
      b.type = "button";
      b.className = "secondary " + cls;
      b.textContent = text;
      if (label) b.setAttribute("aria-label", label);
      tools.appendChild(b);
      return b;
    }
    tools.appendChild(opacityLabel);
    var zoomOut = button("−", "Zoom out", "crop-zoom-out");
    var zoomIn = button("+", "Zoom in", "crop-zoom-in");
    var reset = button("Reset", "Show the whole photo, centred", "crop-reset");

    // The turn: a slider in 0.1° steps, a button each way for one step (a finger is not
    // that precise), straighten, and back to the turn as stored (the alignment's, until
    // staff save another).
    var limit = fields.limit;
    var turnBox = document.createElement("div");
    turnBox.className = "crop-turn";
    var turnHead = document.createElement("div");
    turnHead.className = "crop-tools";
    var turnLabel = document.createElement("label");
    turnLabel.htmlFor = id + "-turn";
    turnLabel.className = "crop-turn-label";
    turnLabel.textContent = "Turn";
    var turnOut = document.createElement("output");
    turnOut.htmlFor = id + "-turn";
    turnOut.className = "crop-turn-value";
    var turnRow = document.createElement("div");
    turnRow.className = "crop-turn-row";
    var slider = document.createElement("input");
    slider.type = "range";
    slider.id = id + "-turn";
    slider.min = String(-limit);
    slider.max = String(limit);
    slider.step = String(TURN_STEP);
    function turnButton(parent, text, label, cls) {
      var b = button(text, label, cls);
      parent.appendChild(b);
      return b;
    }
    turnHead.appendChild(turnLabel);
    turnHead.appendChild(turnOut);
    var straighten = turnButton(turnHead, "Straighten", "", "crop-straighten");
    var saved = fields.turn ? num(fields.turn.dataset.saved, 0) : 0;
    var back = turnButton(turnHead, "Back to saved (" + shortTurn(saved) + ")", "",
      "crop-saved-turn");
    back.hidden = !saved;
    var turnLeft = turnButton(turnRow, "↺", "Turn anticlockwise by 0.1°", "crop-turn-left");
    turnRow.appendChild(slider);
    var turnRight = turnButton(turnRow, "↻", "Turn clockwise by 0.1°", "crop-turn-right");
    turnBox.appendChild(turnHead);
    turnBox.appendChild(turnRow);
    ui.appendChild(stage);
    ui.appendChild(readout);
    ui.appendChild(help);
    ui.appendChild(tools);
    if (fields.turn) ui.appendChild(turnBox);
    var box = form.querySelector(".crop-fields");
    box.parentNode.insertBefore(ui, box);
    box.hidden = true;

    var state = readState(fields);
    // The zoom and centre staff last chose: a turn raises the zoom and moves the centre
    // only as far as it must, and turning back gives them back.
    var wish = { zoom: state.zoom, x: state.x, y: state.y };
    var layout = null;
    var loaded = false;

    function draw() {
      var fw = stage.clientWidth, fh = stage.clientHeight;
      if (!fw || !fh) return;
      layout = place(img, photo, aspect, state, fw, fh);
      if (partnerFields) place(onion, other, aspect, readState(partnerFields), fw, fh);
      onion.style.opacity = String(opacity.value / 100);
    }

    function show() {
      readout.textContent = "Zoom " + state.zoom.toFixed(2) + "× · centre " +
        Math.round(state.x * 100) + "% across, " + Math.round(state.y * 100) + "% down" +
        (fields.turn ? " · " + turnText(state.turn) : "");
      opacity.setAttribute("aria-valuetext", opacity.value + " percent");
      slider.value = String(state.turn);
      slider.setAttribute("aria-valuetext", turnText(state.turn));
      turnOut.textContent = shortTurn(state.turn);
      // aria-disabled rather than disabled: a button pressed from the keyboard keeps focus.
      straighten.setAttribute("aria-disabled", String(!state.turn));
      back.setAttribute("aria-disabled", String(state.turn === saved));
    }

    // Keep the zoom and centre where the server will put them, so the fields say what
    // is stored: a turned crop needs a closer zoom (rounded up, so the field's two
    // decimals still fit) and room about its centre.
    function settle() {
      state.zoom = clamp(state.zoom, MIN, MAX);
      var c = cropAt(photo, aspect, state.zoom, state.x, state.y, -state.turn);
      if (c.zoom > state.zoom) {
        state.zoom = Math.ceil(c.zoom * 100 - 1e-6) / 100;
        c = cropAt(photo, aspect, state.zoom, state.x, state.y, -state.turn);
      }
      state.x = c.left + c.w / 2;
      state.y = c.top + c.h / 2;
    }

    function update(turning) {
      settle();
      fields.zoom.value = state.zoom.toFixed(2);
      fields.x.value = state.x.toFixed(3);
      fields.y.value = state.y.toFixed(3);
      if (fields.turn && fields.turn.value !== String(state.turn)) {
        fields.turn.value = String(state.turn);
      }
      // The stored numbers are the rounded ones.
      state = readState(fields);
      if (!turning) wish = { zoom: state.zoom, x: state.x, y: state.y };
      draw();
      show();
      editors.forEach(function (e) { if (e.form === partnerForm) e.draw(); });
    }

    // Turn to `turn` degrees (clockwise on screen), on the slider's 0.1° grid, from the
    // zoom and centre staff chose.
    function turnTo(turn, exact) {
      turn = exact ? turn : Math.round(turn * 10) / 10;
      state.turn = clamp(turn, -limit, limit) || 0;
      state.zoom = wish.zoom;
      state.x = wish.x;
      state.y = wish.y;
      update(true);
    }

    function load() {
      if (loaded) return;
      loaded = true;
      img.src = d.frame;
      if (d.partnerFrame) onion.src = d.partnerFrame;
    }

    // Move by a distance on the screen (pixels), turned into the photo's own axes.
    function pan(dx, dy) {
      if (!layout) return;
      var r = -state.turn * Math.PI / 180, cos = Math.cos(r), sin = Math.sin(r);
      state.x -= (cos * dx - sin * dy) / layout.iw;
      state.y -= (sin * dx + cos * dy) / layout.ih;
    }

    var pointers = new Map();
    var pinch = null;
    function spread() {
      var p = Array.from(pointers.values());
      return {
        d: Math.hypot(p[0].x - p[1].x, p[0].y - p[1].y) || 1,
        x: (p[0].x + p[1].x) / 2,
        y: (p[0].y + p[1].y) / 2
      };
    }
    stage.addEventListener("pointerdown", function (e) {
      if (e.pointerType === "mouse" && e.button !== 0) return;
      stage.setPointerCapture(e.pointerId);
      pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
      pinch = pointers.size === 2 ? spread() : null;
      stage.classList.add("moving");
      e.preventDefault();
    });
    stage.addEventListener("pointermove", function (e) {
      var p = pointers.get(e.pointerId);
      if (!p) return;
      if (pointers.size === 1) {
        pan(e.clientX - p.x, e.clientY - p.y);
        p.x = e.clientX;
        p.y = e.clientY;
      } else if (pointers.size === 2 && pinch) {
        p.x = e.clientX;
        p.y = e.clientY;
        var now = spread();
        state.zoom *= now.d / pinch.d;
        settle();
        draw();
        pan(now.x - pinch.x, now.y - pinch.y);
        pinch = now;
      }
      update();
    });
    function lift(e) {
      pointers.delete(e.pointerId);
      pinch = pointers.size === 2 ? spread() : null;
      if (!pointers.size) stage.classList.remove("moving");
    }
    stage.addEventListener("pointerup", lift);
    stage.addEventListener("pointercancel", lift);
    stage.addEventListener("wheel", function (e) {
      e.preventDefault();
      var dy = e.deltaMode === 1 ? e.deltaY * 16 : e.deltaY;
      state.zoom *= Math.exp(-dy / 400);
      update();
    }, { passive: false });
    stage.addEventListener("keydown", function (e) {
      var step = e.shiftKey ? 0.05 : 0.01;
      var keys = {
        ArrowLeft: function () { state.x -= step; },
        ArrowRight: function () { state.x += step; },
        ArrowUp: function () { state.y -= step; },
        ArrowDown: function () { state.y += step; },
        "+": function () { state.zoom += KEY_ZOOM; },
        "=": function () { state.zoom += KEY_ZOOM; },
        "-": function () { state.zoom -= KEY_ZOOM; },
        "_": function () { state.zoom -= KEY_ZOOM; },
        "−": function () { state.zoom -= KEY_ZOOM; }
      };
      // [ and ] turn by a step, { and } (Shift) by a big one.
      var turns = { "[": -TURN_STEP, "]": TURN_STEP, "{": -TURN_BIG_STEP, "}": TURN_BIG_STEP };
      var by = turns[e.key];
      if (by !== undefined && fields.turn) {
        e.preventDefault();
        turnTo(state.turn + (e.shiftKey ? Math.sign(by) * TURN_BIG_STEP : by));
        return;
      }
      var act = keys[e.key];
      if (!act) return;
      e.preventDefault();
      act();
      update();
    });
    zoomIn.addEventListener("click", function () { state.zoom += KEY_ZOOM * 2; update(); });
    zoomOut.addEventListener("click", function () { state.zoom -= KEY_ZOOM * 2; update(); });
    reset.addEventListener("click", function () {
      state = { zoom: 1, x: 0.5, y: 0.5, turn: state.turn };
      update();
    });
    slider.addEventListener("input", function () { turnTo(num(slider.value, 0)); });
    turnLeft.addEventListener("click", function () { turnTo(state.turn - TURN_STEP); });
    turnRight.addEventListener("click", function () { turnTo(state.turn + TURN_STEP); });
    straighten.addEventListener("click", function () { turnTo(0); });
    // The stored turn exactly (the alignment's has three decimals), not the grid's.
    back.addEventListener("click", function () { turnTo(saved, true); });
    opacity.addEventListener("input", function () { draw(); show(); });
    [fields.zoom, fields.x, fields.y, fields.turn].forEach(function (f) {
      if (!f) return;
      f.addEventListener("input", function () { state = readState(fields); draw(); show(); });
    });
    img.addEventListener("load", draw);
    onion.addEventListener("load", draw);
    if (window.ResizeObserver) new ResizeObserver(draw).observe(stage);

    var details = form.closest("details");
    if (!details || details.open) load();
    else details.addEventListener("toggle", function () { if (details.open) { load(); draw(); } });
    show();
    draw();
    editors.push({ form: form, draw: draw });
  }

  document.querySelectorAll("form.crop-form[data-frame]").forEach(setup);
})();
