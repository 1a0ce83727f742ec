// Staff upload: drop photos or pick them (camera or library); choose before/after and the
// view for each; every file goes up in its own request with its own progress bar and its
// own error, so one bad file never holds back the others.
(function () {
  "use strict";
  // While a worker builds previews, poll their progress and reload when they are ready.
  var rendering = document.getElementById("rendering");
  if (rendering) {
    var statusUrl = document.getElementById("pairs").getAttribute("data-status");
    var poll = function () {
      fetch(statusUrl, { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (s) {
          if (s.pending === 0) window.location.reload();
          else setTimeout(poll, 1500);
        })
        .catch(function () { setTimeout(poll, 5000); });
    };
    setTimeout(poll, 1500);
  }
  var panel = document.getElementById("upload");
  if (!panel) return;
  var url = panel.getAttribute("data-url");
  var rows = document.getElementById("upload-rows");
  var template = document.getElementById("upload-row");
  var start = document.getElementById("upload-start");
  var form = document.getElementById("upload-form");
  var csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  var queue = [];

  function add(files) {
    Array.prototype.forEach.call(files, function (file) {
      var row = template.content.firstElementChild.cloneNode(true);
      row.querySelector(".file-name").textContent = file.name;
      // A first guess: the first photo is the before, the next the after.
      row.querySelector("select[name=role]").value = queue.length % 2 ? "after" : "before";
      rows.appendChild(row);
      queue.push({ file: file, row: row, done: false });
    });
    start.hidden = queue.every(function (q) { return q.done; });
  }

  function send(item) {
    return new Promise(function (resolve) {
      var row = item.row, bar = row.querySelector("progress"), status = row.querySelector(".upload-status");
      var data = new FormData();
      data.append("file", item.file);
      data.append("role", row.querySelector("select[name=role]").value);
      data.append("view", row.querySelector("select[name=view]").value);
      var xhr = new XMLHttpRequest();
      xhr.open("POST", url);
      xhr.setRequestHeader("X-CSRFToken", csrf);
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) bar.value = Math.round(e.loaded / e.total * 100);
      });
      xhr.addEventListener("load", function () {
        var body = {};
        try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
        if (xhr.status === 201) {
          bar.value = 100;
          status.textContent = "Uploaded";
          row.classList.add("ok");
          item.done = true;
        } else {
          status.textContent = body.error || "The upload failed. Try again.";
          row.classList.add("error");
        }
        resolve();
      });
      xhr.addEventListener("error", function () {
        status.textContent = "The connection dropped. Try again.";
        row.classList.add("error");
        resolve();
      });
      status.textContent = "Uploading…";
      row.classList.remove("error");
      xhr.send(data);
    });
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var pending = queue.filter(function (q) { return !q.done; });
    start.disabled = true;
    Promise.all(pending.map(send)).then(function () {
      start.disabled = false;
      if (queue.some(function (q) { return q.done; }) && pending.some(function (q) { return q.done; })) {
        // Show the new pairs; rows with errors stay listed until the page reloads.
        var failed = queue.filter(function (q) { return !q.done; }).length;
        if (!failed) window.location.reload();
        else document.getElementById("pairs").insertAdjacentHTML("afterbegin",
          '<p class="notice">Some photos uploaded; <a href="">reload to see the pairs</a>.</p>');
      }
    });
  });
  // One photo from the in-page camera (capture.js), its role and view already known: it goes
  // up at once, in its own row, and the page reloads to show it once it is in.
  panel.addEventListener("gallery:upload", function (e) {
    var d = e.detail;
    var row = template.content.firstElementChild.cloneNode(true);
    row.querySelector(".file-name").textContent = d.file.name;
    row.querySelector("select[name=role]").value = d.role;
    row.querySelector("select[name=view]").value = d.view;
    rows.appendChild(row);
    var item = { file: d.file, row: row, done: false };
    queue.push(item);
    row.scrollIntoView({ block: "nearest" });
    send(item).then(function () {
      if (item.done && queue.every(function (q) { return q.done; })) window.location.reload();
      else start.hidden = queue.every(function (q) { return q.done; });
    });
  });
  document.getElementById("pick-files").addEventListener("change", function (e) { add(e.target.files); e.target.value = ""; });
  document.getElementById("take-photo").addEventListener("change", function (e) { add(e.target.files); e.target.value = ""; });
  var zone = document.getElementById("dropzone");
  ["dragenter", "dragover"].forEach(function (t) {
    zone.addEventListener(t, function (e) { e.preventDefault(); zone.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (t) {
    zone.addEventListener(t, function () { zone.classList.remove("over"); });
  });
  zone.addEventListener("drop", function (e) { e.preventDefault(); add(e.dataTransfer.files); });
})();
