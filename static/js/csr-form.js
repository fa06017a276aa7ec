// SSL > CSRs > Create: suggest SANs from the common name (no inline scripts: the CSP forbids them).
(function () {
  "use strict";
  var touched = false;

  function sansField() { return document.getElementById("csr-sans"); }

  // Until the user edits the SANs, keep them equal to the suggestion for the CN.
  document.addEventListener("input", function (ev) {
    if (ev.target && ev.target.id === "csr-sans") touched = ev.target.value.trim() !== "";
  });

  document.addEventListener("click", function (ev) {
    var button = ev.target.closest && ev.target.closest("[data-fill-sans]");
    if (!button || !sansField()) return;
    sansField().value = button.dataset.fillSans;
    touched = true;
    sansField().focus();  // the button goes with the check it was part of
    sansField().dispatchEvent(new Event("change", { bubbles: true }));
  });

  document.addEventListener("htmx:afterSettle", function (ev) {
    var field = sansField();
    var button = document.querySelector("#name-check [data-fill-sans]");
    if (!field || !button || touched || field.value.trim() !== "") return;
    field.placeholder = button.dataset.fillSans;
  });
})();
