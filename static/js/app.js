// CertDesk page behaviour. No inline scripts anywhere (the CSP forbids them).
(function () {
  "use strict";

  // Show <time datetime="..."> values in the viewer's local time zone.
  function localiseTimes(root) {
    root.querySelectorAll("time[datetime]:not([data-local])").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d)) return;
      el.title = el.textContent;
      el.textContent = d.toLocaleString([], { year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit" });
      el.dataset.local = "1";
    });
  }

  // Confirmation before destructive actions: <button data-confirm="...">. With
  // data-confirm-filled="field", only once that field of the form is filled in (while it is
  // empty the server's own message says what is missing, without a question first).
  document.addEventListener("submit", function (ev) {
    var button = ev.submitter;
    var message = (button && button.dataset.confirm) || ev.target.dataset.confirm;
    var needs = button && button.dataset.confirmFilled;
    if (needs) {
      var field = ev.target.elements[needs];
      if (field && !field.value.trim()) return;
    }
    if (message && !window.confirm(message)) ev.preventDefault();
  }, true);

  // A list's "select all" box: <input type="checkbox" data-select-all="name"> ticks or clears
  // every box of that name in its table.
  document.addEventListener("change", function (ev) {
    var all = ev.target.closest && ev.target.closest("input[data-select-all]");
    if (!all) return;
    var table = all.closest("table") || document;
    table.querySelectorAll('input[type=checkbox][name="' + all.dataset.selectAll + '"]')
      .forEach(function (box) { box.checked = all.checked; });
  });

  // Close an open dropdown when clicking elsewhere.
  document.addEventListener("click", function (ev) {
    document.querySelectorAll("details.dropdown[open]").forEach(function (d) {
      if (!d.contains(ev.target)) d.removeAttribute("open");
    });
  });

  // From the keyboard: Escape closes an open dropdown and gives the focus back to its summary;
  // tabbing out of a dropdown closes it.
  document.addEventListener("keydown", function (ev) {
    if (ev.key !== "Escape") return;
    var open = ev.target.closest && ev.target.closest("details.dropdown[open]");
    if (!open) return;
    open.removeAttribute("open");
    open.querySelector("summary").focus();
  });
  document.addEventListener("focusout", function (ev) {
    var open = ev.target.closest && ev.target.closest("details.dropdown[open]");
    if (open && ev.relatedTarget && !open.contains(ev.relatedTarget)) open.removeAttribute("open");
  });

  // A request that never reached CertDesk (network down, server stopped) says so in the banner
  // instead of leaving the page as it was.
  document.addEventListener("htmx:sendError", function () {
    var banner = document.getElementById("banner");
    if (!banner) return;
    var box = document.createElement("article");
    box.className = "flash flash-error";
    box.setAttribute("role", "alert");
    var title = document.createElement("strong");
    title.textContent = "CertDesk did not answer.";
    box.appendChild(title);
    box.appendChild(document.createTextNode(" Check the connection, then reload the page to " +
      "see whether the last action was done."));
    banner.replaceChildren(box);
  });

  // A choice that bounds a date: <select data-sets-max="input id"> whose options carry data-max
  // (the order form's product and its expiration date).
  document.addEventListener("change", function (ev) {
    var select = ev.target.closest && ev.target.closest("select[data-sets-max]");
    if (!select) return;
    var input = document.getElementById(select.dataset.setsMax);
    var option = select.selectedOptions[0];
    if (input && option && option.dataset.max) input.max = option.dataset.max;
  });

  // A form sent back with errors puts the focus on its first wrong field (unless the page
  // chose a field itself with autofocus), so the keyboard and a screen reader start there.
  function focusFirstError() {
    if (document.querySelector("main [autofocus]")) return;
    var wrong = document.querySelector("main [aria-invalid='true']");
    if (wrong) wrong.focus();
  }

  document.addEventListener("DOMContentLoaded", function () {
    localiseTimes(document);
    focusFirstError();
  });
  document.addEventListener("htmx:afterSettle", function (ev) { localiseTimes(ev.detail.elt || document); });
})();
