// The case form's sessions: add a session or a zone from the blank copies the page holds
// (Django formsets: fill in the form's number, count it in TOTAL_FORMS), and show the RF
// settings only when an RF treatment is chosen.
(() => {
  const box = document.getElementById("sessions");
  if (!box) return;
  const form = box.closest("form");
  const rfIds = (box.dataset.rfTreatments || "").split(",").filter(Boolean);
  const total = (prefix) => form.querySelector(`input[name="${prefix}-TOTAL_FORMS"]`);

  const showRf = () => {
    const chosen = form.querySelector('input[name="treatment"]:checked');
    box.dataset.rf = chosen && rfIds.includes(chosen.value) ? "on" : "off";
  };
  form.addEventListener("change", (event) => {
    if (event.target.name === "treatment") showRf();
  });
  showRf();

  // The blank rows held for use without a script give way to the add buttons (they are
  // the last forms of their formsets, so the others keep their numbers).
  box.querySelectorAll("[data-spare]").forEach((row) => {
    const count = total(row.dataset.spare);
    if (!count || !box.contains(row)) return;
    row.remove();
    count.value = String(Number(count.value) - 1);
  });

  const reveal = (root) => {
    root.querySelectorAll("[data-add-session], [data-add-zone]").forEach((b) => {
      b.hidden = false;
    });
  };
  reveal(box);

  box.addEventListener("click", (event) => {
    if (event.target.closest("[data-add-session]")) {
      const count = total("sessions");
      const n = Number(count.value);
      const list = box.querySelector(".session-list");
      const html = document.getElementById("session-template").innerHTML;
      list.insertAdjacentHTML("beforeend", html.replaceAll("__prefix__", String(n)));
      count.value = String(n + 1);
      const added = list.lastElementChild;
      added.querySelector("[data-number]").textContent = String(list.children.length);
      reveal(added);
      added.querySelector("input").focus();
      return;
    }
    const addZone = event.target.closest("[data-add-zone]");
    if (addZone) {
      const session = addZone.closest(".session");
      const count = total(`${session.dataset.prefix}-zones`);
      const n = Number(count.value);
      const list = session.querySelector(".zone-list");
      const html = session.querySelector(".zone-template").innerHTML;
      list.insertAdjacentHTML("beforeend", html.replaceAll("__zone__", String(n)));
      count.value = String(n + 1);
      list.lastElementChild.querySelector("select").focus();
    }
  });
})();
