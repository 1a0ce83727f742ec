// Guided capture: the tablet's camera opens inside the case page, with the view's before
// photo (its staff preview) laid over the live picture at an adjustable opacity and a
// rule-of-thirds grid, so the after photo is taken from the same place. Capture grabs a
// still at the camera's full resolution and hands it to the per-file upload (upload.js).
// Without a camera, or when it is refused, the normal file picker takes over.
(function () {
  "use strict";
  var box = document.getElementById("capture");
  var dialog = document.getElementById("capture-dialog");
  var panel = document.getElementById("upload");
  if (!box || !dialog || !panel) return;
  var video = dialog.querySelector(".capture-video");
  var ghost = dialog.querySelector(".capture-ghost");
  var title = dialog.querySelector(".capture-title");
  var status = dialog.querySelector(".capture-status");
  var opacity = dialog.querySelector(".capture-opacity input");
  var opacityLabel = dialog.querySelector(".capture-opacity");
  var shoot = dialog.querySelector(".capture-shoot");
  var fallback = document.getElementById("capture-fallback");
  var fallbackText = fallback.querySelector(".capture-fallback-text");
  var fallbackFile = document.getElementById("capture-file");
  var stream = null, target = null, opener = null;

  function setOpacity() {
    ghost.style.opacity = String(opacity.value / 100);
    opacity.setAttribute("aria-valuetext", opacity.value + " percent");
  }

  function stop() {
    if (stream) stream.getTracks().forEach(function (t) { t.stop(); });
    stream = null;
    video.srcObject = null;
  }

  function refused(error) {
    var name = error && error.name;
    var why = name === "NotAllowedError" || name === "SecurityError"
      ? "The camera is not allowed on this tablet or browser."
      : name === "NotFoundError" || name === "OverconstrainedError" || !name
        ? "No camera was found."
        : "The camera could not be started.";
    fallbackText.textContent = why + " Choose a photo for the " + target.role + " photo, "
      + target.label.toLowerCase() + " view, from the camera app or the library instead.";
    fallback.hidden = false;
    if (dialog.open) dialog.close();
    fallback.querySelector(".capture-pick").focus();
  }

  function open(button) {
    opener = button;
    target = {
      role: button.getAttribute("data-role"),
      view: button.getAttribute("data-view"),
      label: button.getAttribute("data-view-label"),
      ghost: button.getAttribute("data-ghost")
    };
    fallback.hidden = true;
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      refused(null);
      return;
    }
    title.textContent = (target.role === "after" ? "After photo" : "Before photo")
      + " · " + target.label + " view";
    if (target.ghost) {
      ghost.src = target.ghost;
      ghost.alt = "Before photo, " + target.label.toLowerCase() + " view, laid over the camera";
      ghost.hidden = false;
      opacityLabel.hidden = false;
      setOpacity();
    } else {
      ghost.removeAttribute("src");
      ghost.hidden = true;
      opacityLabel.hidden = true;
    }
    shoot.disabled = true;
    status.textContent = "Starting the camera…";
    dialog.showModal();
    navigator.mediaDevices.getUserMedia({
      video: { facingMode: "environment", width: { ideal: 4096 }, height: { ideal: 3072 } },
      audio: false
    }).then(function (s) {
      if (!dialog.open) { s.getTracks().forEach(function (t) { t.stop(); }); return; }
      stream = s;
      video.srcObject = s;
      video.addEventListener("loadedmetadata", function ready() {
        video.removeEventListener("loadedmetadata", ready);
        video.play().catch(function () { /* muted camera preview: play is allowed */ });
        status.textContent = target.ghost
          ? "Line the live picture up with the before photo, then capture."
          : "Frame the view, then capture.";
        shoot.disabled = false;
        shoot.focus();
      });
    }, refused);
  }

  function capture() {
    var w = video.videoWidth, h = video.videoHeight;
    if (!w || !h) return;
    var canvas = document.createElement("canvas");
    canvas.width = w;
    canvas.height = h;
    canvas.getContext("2d").drawImage(video, 0, 0, w, h);
    shoot.disabled = true;
    status.textContent = "Saving the photo…";
    canvas.toBlob(function (blob) {
      if (!blob) {
        status.textContent = "The photo could not be taken. Try again.";
        shoot.disabled = false;
        return;
      }
      var stamp = new Date().toISOString().replace(/[-:]/g, "").slice(0, 15);
      var file = new File([blob], "camera-" + target.role + "-" + target.view + "-" + stamp + ".jpg",
        { type: "image/jpeg" });
      dialog.close();
      hand(file);
    }, "image/jpeg", 0.92);
  }

  function hand(file) {
    panel.dispatchEvent(new CustomEvent("gallery:upload",
      { detail: { file: file, role: target.role, view: target.view } }));
  }

  box.addEventListener("click", function (e) {
    var button = e.target.closest(".capture-open");
    if (button) open(button);
  });
  opacity.addEventListener("input", setOpacity);
  shoot.addEventListener("click", capture);
  dialog.querySelector(".capture-close").addEventListener("click", function () { dialog.close(); });
  // Escape closes the dialog too (its "cancel"); either way the camera goes off.
  dialog.addEventListener("close", function () {
    stop();
    if (opener && fallback.hidden) opener.focus();
  });
  fallback.querySelector(".capture-pick").addEventListener("click", function () { fallbackFile.click(); });
  fallbackFile.addEventListener("change", function () {
    if (fallbackFile.files.length && target) {
      hand(fallbackFile.files[0]);
      fallback.hidden = true;
    }
    fallbackFile.value = "";
  });
})();
