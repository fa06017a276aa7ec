// CertDesk page behaviour. No inline scripts anywhere (the CSP forbids them).
(function () {
  "use strict";

  // Show <time datetime="..."> values in the viewer's local time zone; the UTC text stays in the
  // title. Pages also show days (an expiry date) in UTC, so a time says which zone it is in:
  // outside a table by its own zone name ("GMT+9"), in a table (where columns are narrow) by the
  // note under the page.
  function localiseTimes(root) {
    root.querySelectorAll("time[datetime]:not([data-local])").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d)) return;
      var options = { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit",
        minute: "2-digit" };
      if (!el.closest("td, th")) options.timeZoneName = "short";
      el.title = el.textContent;
      el.textContent = d.toLocaleString([], options);
      el.dataset.local = "1";
    });
    var note = document.getElementById("time-zone-note");
    if (note && document.querySelector("time[data-local='1']")) {
      var zone = "";
      try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { zone = ""; }
      note.textContent = "Times are in your time zone" + (zone ? " (" + zone + ")" : "") +
        "; dates without a time (expiry dates) are UTC days.";
      note.hidden = false;
    }
  }

  // A form's days (Admin > Audit's From and To) are those of the viewer's time zone, in which
  // the list shows its times: the zone goes with the form.
  function fillViewerZone(root) {
    var zone = "";
    try {
      zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (e) {
      return;
    }
    root.querySelectorAll("input[data-viewer-zone]").forEach(function (el) {
      if (!el.value) el.value = zone;
    });
  }

  // An order form's CSR: using a choice's own field (the list of CSRs, the new key's type, the
  // paste box, the file) chooses it, as a user expects who never clicked the radio button.
  function chooseCsrSource(ev) {
    var field = ev.target;
    var source = field && field.dataset && field.dataset.csrSource;
    if (!source || !field.form) return;
    var radio = field.form.querySelector('input[name="csr_source"][value="' + source + '"]');
    if (radio) radio.checked = true;
  }
  document.addEventListener("input", chooseCsrSource);
  document.addEventListener("change", chooseCsrSource);

  // A list's search (data-finder): Enter lists the matches, as typing does, rather than sending
  // the form it sits in.
  document.addEventListener("keydown", function (ev) {
    if (ev.key !== "Enter" || !ev.target.matches || !ev.target.matches("input[data-finder]")) return;
    ev.preventDefault();
    if (window.htmx) window.htmx.trigger(ev.target, "search");
  });

  // A form sent by a menu's buttons alone (form[data-menu-only]: the orders list, whose first
  // button is Check Order Status): Enter on one of its boxes sends nothing, where a browser would
  // press that first button.
  document.addEventListener("keydown", function (ev) {
    var box = ev.target;
    if (ev.key === "Enter" && box.type === "checkbox" && box.form &&
        box.form.hasAttribute("data-menu-only")) {
      ev.preventDefault();
    }
  });

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
    sendOnce(ev);
    forgetPasswords(ev);
  }, true);

  // A download form (data-resend) stays on the page once its file is saved: the password that
  // protects the file is not left in its fields for whoever uses the screen next. Emptied once
  // the form is sent (its fields are read as it is), so the next download asks for it again.
  function forgetPasswords(ev) {
    var form = ev.target;
    if (ev.defaultPrevented || !form.hasAttribute("data-resend")) return;
    window.setTimeout(function () {
      form.querySelectorAll("input[type=password]").forEach(function (input) { input.value = ""; });
    }, 0);
  }

  // A form sent the ordinary way (not by htmx) is sent once: another click or Enter while the
  // page waits for the answer does nothing, and the button used says it is busy. (CertDesk also
  // refuses the same order form sent twice; this spares the second request.) A form whose
  // answer is a download, so that the page stays, is marked data-resend and can be sent again.
  var HTMX_SENDS = "[hx-post], [hx-put], [hx-patch], [hx-delete]";

  function sendOnce(ev) {
    var form = ev.target;
    if (ev.defaultPrevented || form.method !== "post" || form.matches(HTMX_SENDS) ||
        form.hasAttribute("data-resend")) return;
    if (form.dataset.sending) {
      ev.preventDefault();
      ev.stopImmediatePropagation();
      return;
    }
    form.dataset.sending = "1";
    if (ev.submitter) ev.submitter.setAttribute("aria-busy", "true");
    keepRequestId(form);
  }

  // An order form carries a request id, and CertDesk places one order per id. Back after ordering
  // has the browser fetch the form anew (pages are not kept), with a new id, and refill the
  // fields the user typed, so the same order sent again would be placed twice. So the id a form
  // was sent with is kept for this tab, and a form reached by Back or Forward takes it again:
  // sent again, CertDesk shows the order it placed. (A form opened anew gets a new id.)
  function sentIdKey(form) { return "certdesk.sent-request-id " + form.action; }

  function keepRequestId(form) {
    var field = form.elements.request_id;
    if (!field || !field.value) return;
    try { window.sessionStorage.setItem(sentIdKey(form), field.value); } catch (e) { /* none kept */ }
  }

  function requestIdsAfterBack() {
    var nav = window.performance.getEntriesByType("navigation")[0];
    if (!nav || nav.type !== "back_forward") return;
    document.querySelectorAll("form").forEach(function (form) {
      var field = form.elements.request_id, sent = null;
      try { sent = window.sessionStorage.getItem(sentIdKey(form)); } catch (e) { return; }
      if (field && sent) field.value = sent;
    });
  }

  // A choice that loads the choices depending on it (hx-get on change: the order form's
  // credential and its organizations, products and domains). Back or Forward to the page has the
  // browser put back the choice made on it (once the page has loaded: pageshow), but the page
  // is loaded anew with the dependent choices of the one it was rendered with: those of the
  // choice put back are loaded again.
  function renderedValue(select) {
    var rendered = Array.prototype.find.call(select.options, function (o) {
      return o.defaultSelected;
    }) || select.options[0];
    return rendered ? rendered.value : "";
  }

  function choicesLoadingOthers() {
    return Array.prototype.filter.call(document.querySelectorAll("select[hx-get][hx-target]"),
      function (select) { return /\bchange\b/.test(select.getAttribute("hx-trigger") || ""); });
  }

  // The choices made among those loaded (the order form's organization, product and domain) and
  // what was typed in the fields loaded with them (the account's custom fields) are kept for this
  // tab with the choice they depend on, as they change and as the page is left. Those of the
  // choice put back go with the request that loads its choices again, which chooses each one
  // still among them and fills in each field still asked for. (A form opened anew starts with
  // none.) A secret is never kept: no password, private key or file, nor a search typed.
  function keptChoicesKey(select) {
    return "certdesk.dependent-choices " + window.location.pathname + " " + select.name;
  }

  var NEVER_KEPT = /^(password|file|search|checkbox|radio|submit|button|reset)$/;

  function keepable(field) {
    return !!field.name && !field.disabled && !NEVER_KEPT.test(field.type) &&
      !/(^|_)(key|password)(_|$)/i.test(field.name);
  }

  function keepDependentChoices() {
    choicesLoadingOthers().forEach(function (select) {
      var target = document.querySelector(select.getAttribute("hx-target"));
      if (!target) return;
      var kept = { of: select.value, values: {} };
      target.querySelectorAll("select, input, textarea").forEach(function (dependent) {
        if (keepable(dependent) && dependent.value) kept.values[dependent.name] = dependent.value;
      });
      try {
        window.sessionStorage.setItem(keptChoicesKey(select), JSON.stringify(kept));
      } catch (e) { /* none kept */ }
    });
  }
  document.addEventListener("change", function (ev) {
    // A choice that loads others: what is below it now is about to be replaced.
    if (choicesLoadingOthers().indexOf(ev.target) < 0) keepDependentChoices();
  });
  window.addEventListener("pagehide", keepDependentChoices);

  function keptChoices(select) {
    var kept = null;
    try {
      kept = JSON.parse(window.sessionStorage.getItem(keptChoicesKey(select)) || "null");
    } catch (e) { return null; }
    return kept && kept.of === select.value && kept.values ? kept.values : null;
  }

  document.addEventListener("htmx:configRequest", function (ev) {
    var elt = ev.detail.elt, kept = elt && elt.certdeskKeptChoices;
    if (!kept) return;
    delete elt.certdeskKeptChoices;
    Object.keys(kept).forEach(function (name) {
      if (!ev.detail.formData.has(name)) ev.detail.formData.set(name, kept[name]);
    });
  });

  function reloadDependentChoices() {
    if (!window.htmx) return;
    var nav = window.performance.getEntriesByType("navigation")[0];
    var back = nav && nav.type === "back_forward";
    choicesLoadingOthers().forEach(function (select) {
      if (select.value === renderedValue(select)) return;
      var kept = back ? keptChoices(select) : null;
      if (kept) select.certdeskKeptChoices = kept;
      window.htmx.trigger(select, "change");
    });
  }

  // Back to a page the browser kept: its forms can be sent again. (And to any page: the choices
  // depending on a choice put back are those of that choice.)
  window.addEventListener("pageshow", function () {
    reloadDependentChoices();
    document.querySelectorAll("form[data-sending]").forEach(function (form) {
      delete form.dataset.sending;
      form.querySelectorAll("[aria-busy]").forEach(function (el) { el.removeAttribute("aria-busy"); });
    });
  });

  // A list's filter form (form.filters) asks for, and puts in the address bar, only the fields
  // that say something: "?expiry=30", not "?q=&expiry=30&issuer=&source=&has_key=&sort=&dir=",
  // so that a link copied from the address bar is clean. A field marked data-sent-with="since
  // until" goes only along with one of those (Audit's time zone, which only From and To need).
  // The same holds for a part of the page that sends a filter form's fields with its own
  // (hx-include). Sent without script, the form sends every field, which CertDesk reads alike.
  function filterFormOf(elt) {
    if (!elt || !elt.closest) return null;
    var form = elt.closest("form.filters");
    var include = !form && elt.getAttribute("hx-include");
    if (include) {
      try { form = document.querySelector(include); } catch (e) { form = null; }
    }
    return form && form.matches("form.filters") ? form : null;
  }

  document.addEventListener("htmx:configRequest", function (ev) {
    var form = filterFormOf(ev.detail.elt), data = ev.detail.formData;
    if (ev.detail.verb !== "get" || !form || !data) return;
    function given(name) {
      return data.getAll(name).some(function (value) { return value !== ""; });
    }
    var names = [];
    data.forEach(function (_value, name) { if (names.indexOf(name) < 0) names.push(name); });
    names.forEach(function (name) {
      var field = form.elements[name];
      var along = field && field.dataset && field.dataset.sentWith;
      var needed = along ? along.split(/\s+/).some(given) : true;
      if (!given(name) || !needed) data.delete(name);
    });
  });

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

  function showProblem(title, text) {
    var banner = document.getElementById("banner");
    if (!banner) return;
    var box = document.createElement("article");
    box.className = "flash flash-error";
    box.setAttribute("role", "alert");
    var strong = document.createElement("strong");
    strong.textContent = title;
    box.appendChild(strong);
    box.appendChild(document.createTextNode(" " + text));
    banner.replaceChildren(box);
  }

  // A part of the page that polls (hx-trigger="every 2s": the jobs list while a job runs) stops
  // asking once a request of it has failed, rather than failing again every two seconds and
  // saying so each time in the banner; reloading the page starts it again.
  function polls(elt) {
    return !!(elt && elt.getAttribute && /\bevery\b/.test(elt.getAttribute("hx-trigger") || ""));
  }
  function stopPolling(ev) {
    var elt = ev.detail && ev.detail.elt;
    if (polls(elt)) elt.dataset.pollStopped = "1";
  }
  document.addEventListener("htmx:sendError", stopPolling);
  document.addEventListener("htmx:responseError", stopPolling);
  document.addEventListener("htmx:beforeRequest", function (ev) {
    var elt = ev.detail && ev.detail.elt;
    if (elt && elt.dataset && elt.dataset.pollStopped) ev.preventDefault();
  });

  // A request that never reached CertDesk (network down, server stopped) says so in the banner
  // instead of leaving the page as it was.
  document.addEventListener("htmx:sendError", function () {
    showProblem("CertDesk did not answer.", "Check the connection, then reload the page to " +
      "see whether the last action was done.");
  });

  // An error answer that is not CertDesk's own (a reverse proxy's "502 Bad Gateway" page or an
  // empty "504" while CertDesk is restarted or too slow) is not put in place of a list, a cell
  // or a progress bar: the banner says what happened and the page stays as it was. CertDesk's
  // own answers, its form sent back with errors (422) as well as its error banners, all say
  // "Vary: HX-Request".
  document.addEventListener("htmx:beforeSwap", function (ev) {
    var xhr = ev.detail.xhr;
    if (!xhr || xhr.status < 400 || /\bHX-Request\b/i.test(xhr.getResponseHeader("Vary") || "")) {
      return;
    }
    ev.detail.shouldSwap = false;
    showProblem("CertDesk could not answer (" + xhr.status +
      (xhr.statusText ? " " + xhr.statusText : "") + ").",
      "Try again in a moment, then reload the page to see whether the last action was done.");
  });

  // A choice that bounds a date: <select data-sets-max="input id"> whose options carry data-max
  // (the order form's product and its expiration date). The bound follows the option chosen by
  // hand, the one chosen in choices loaded anew (another credential's, or the product chosen
  // again after Back) and the one the browser puts back.
  function setMax(select) {
    var input = document.getElementById(select.dataset.setsMax);
    var option = select.selectedOptions[0];
    if (input && option && option.dataset.max) input.max = option.dataset.max;
  }

  function setMaxes(root) {
    if (root.matches && root.matches("select[data-sets-max]")) setMax(root);
    root.querySelectorAll("select[data-sets-max]").forEach(setMax);
  }

  document.addEventListener("change", function (ev) {
    var select = ev.target.closest && ev.target.closest("select[data-sets-max]");
    if (select) setMax(select);
  });
  document.addEventListener("htmx:afterSwap", function (ev) {
    var target = ev.detail.target;
    if (target && target.isConnected) setMaxes(target);
  });
  window.addEventListener("pageshow", function () { setMaxes(document); });

  // A form sent back with errors puts the focus on its first wrong field (unless the page
  // chose a field itself with autofocus), so the keyboard and a screen reader start there. An
  // error of the whole form (a change made meanwhile, an action Entrust refused) that no field
  // shows has the focus itself, rather than leaving it at the top of the navigation (not a
  // message a page always shows, such as an order's own: data-standing).
  var FORM_ERROR = "main #form-error, main .field-error[role=alert]:not([data-standing])";

  // Failing those, the message an action left for the page it led to ("Settings saved.",
  // "CSR deleted."): read first, rather than the page again from its navigation.
  var FLASHED = "main > .flash[data-flashed]";

  function focusFirstError() {
    if (document.querySelector("main [autofocus]")) return;
    var wrong = document.querySelector("main [aria-invalid='true']");
    if (!wrong) wrong = document.querySelector(FORM_ERROR) || document.querySelector(FLASHED);
    if (wrong && !wrong.matches("input, select, textarea, button, a[href]") &&
        !wrong.hasAttribute("tabindex")) {
      wrong.setAttribute("tabindex", "-1");
    }
    if (wrong) wrong.focus();
  }

  // After htmx replaces part of the page (a list sorted, paged or filtered, a list brought up to
  // date when a job ends), the keyboard focus stays where it was instead of falling to <body>:
  // on the control with the same id, the same Previous or Next link, or the control at the same
  // place in the same element; failing those, on the replaced part itself. Then the new
  // content's [data-announce] text (a list's "1–50 of 300") and its sort are read out;
  // data-announce="swapped" only when that element itself is swapped in (a row's Test Login).
  var FOCUSABLE = "a[href], button:not([disabled]), input:not([type=hidden]):not([disabled]), " +
    "select:not([disabled]), textarea:not([disabled]), summary";
  var lostFocus = null;

  // A button htmx disables while its request runs (hx-disabled-elt: sent once however often it
  // is clicked) loses the keyboard focus to <body>: it stands for the focus until the answer
  // came, and has the focus again once enabled, unless the answer replaced it.
  document.addEventListener("htmx:beforeRequest", function (ev) {
    var active = document.activeElement, elt = ev.detail.elt, xhr = ev.detail.xhr;
    if (!xhr || !active || !active.matches("button") || !elt.closest("[hx-disabled-elt]") ||
        !(active === elt || elt.contains(active))) return;
    xhr.certdeskFocus = active;
  });

  function focusBeforeRequest(xhr) {
    var active = document.activeElement;
    if (active && active !== document.body) return active;
    return (xhr && xhr.certdeskFocus) || active;
  }

  document.addEventListener("htmx:afterRequest", function (ev) {
    var button = ev.detail.xhr && ev.detail.xhr.certdeskFocus;
    var active = document.activeElement;
    if (button && button.isConnected && !button.disabled && (!active || active === document.body)) {
      button.focus();
    }
  });

  document.addEventListener("htmx:beforeSwap", function (ev) {
    var active = focusBeforeRequest(ev.detail.xhr);
    var target = ev.detail.target;
    lostFocus = null;
    if (!active || active === document.body || !target || !target.contains(active)) return;
    var scope = active.parentElement && active.parentElement.closest("[id]");
    lostFocus = {
      id: active.id,
      rel: active.getAttribute("rel"),
      scope: scope ? scope.id : "",
      index: scope ? Array.prototype.indexOf.call(scope.querySelectorAll(FOCUSABLE), active) : -1,
      target: target.id
    };
  });

  function keepFocus(paged) {
    var lost = lostFocus;
    lostFocus = null;
    if (!lost || (document.activeElement && document.activeElement !== document.body)) return;
    var scope = (lost.scope && document.getElementById(lost.scope)) ||
      (lost.target && document.getElementById(lost.target));
    var el = lost.id && document.getElementById(lost.id);
    if (!el && scope && lost.rel) {
      el = scope.querySelector('[rel="' + lost.rel + '"]') || scope.querySelector(".pager [rel]");
    }
    if (!el && scope && lost.index >= 0) el = scope.querySelectorAll(FOCUSABLE)[lost.index];
    if (!el && scope) el = scope;
    // A part found by its id that is no control (a section polling itself, focused when its
    // button went) takes the focus too, rather than letting it fall to <body>.
    if (el && !el.matches(FOCUSABLE) && !el.hasAttribute("tabindex")) {
      el.setAttribute("tabindex", "-1");
    }
    // A page of a list read by Previous or Next starts at its top: the link keeps the focus
    // without scrolling to it, and the list is brought into view if its top was scrolled past.
    if (el) el.focus({ preventScroll: !!paged });
  }

  // The list a pager's Previous or Next link has just replaced, or null.
  function pagedList(detail) {
    var config = detail.requestConfig;
    var link = config && config.elt;
    return link && link.closest && link.closest(".pager") && detail.elt === config.target ?
      detail.elt : null;
  }

  function showTop(list) {
    if (list && list.isConnected && list.getBoundingClientRect().top < 0) {
      list.scrollIntoView({ block: "start" });
    }
  }

  function announce(root) {
    var said = [];
    // innerText: the paragraphs of a notice are read apart, not run together.
    if (root.matches("[data-announce]")) said.push(root.innerText);
    root.querySelectorAll('[data-announce]:not([data-announce="swapped"])').forEach(function (el) {
      said.push(el.innerText);
    });
    if (!said.length) return;
    var sorted = root.querySelector("th[aria-sort]");
    if (sorted) {
      said.push("Sorted by " + sorted.textContent.replace(/[▲▼]/g, "").trim() + ", " +
        sorted.getAttribute("aria-sort"));
    }
    speak(said);
  }

  // What a search that fills a list ([data-finder]: the order form's CSR, organization and
  // domain searches) found, said while the focus stays in the search box: how many choices the
  // list holds now, or the list's own line saying that nothing matched.
  function announceFound(list) {
    var none = list.querySelector("option[disabled]");
    if (none) return speak([none.textContent]);
    var n = list.querySelectorAll('option:not([value=""])').length;
    speak([n === 1 ? "1 match in the list" : n + " matches in the list"]);
  }

  function speak(said) {
    var live = document.getElementById("announcer");
    if (!live) return;
    // Emptied first, so that the same words said twice (the same count after a sort) are read.
    live.textContent = "";
    window.setTimeout(function () {
      live.textContent = said.map(function (s) {
        s = s.replace(/\s+/g, " ").trim();
        return /[.!?]$/.test(s) ? s : s + ".";
      }).join(" ");
    }, 100);
  }

  // The session's end, seen from a page left open (body[data-session]). Typing or clicking in
  // the page is activity, as a request is: while the user works on a long form the page tells
  // CertDesk so, at most once a minute, and the idle timeout does not end the session under
  // them. A page nobody touches says, two minutes before, that its session is about to end
  // (asking CertDesk first, without it counting as activity: another tab may have kept it
  // open), and any key or click then keeps it open. Once the session has ended, the page says
  // so and keeps what was typed: after signing in again in another tab, "Go on here" gives its
  // forms the new session's token, so that they can still be sent.
  function watchSession() {
    var url = document.body.dataset.session;
    var idle = Number(document.body.dataset.idleSeconds) || 0;
    if (!url || !idle) return;
    var warnBefore = Math.min(120, idle / 2);
    var contact = Date.now(); // the last time CertDesk heard from this page (as it knows)
    var touched = false; // the user typed or clicked since
    var ended = false;
    var asking = false;

    function note(kind, parts) {
      var box = document.getElementById("session-note");
      if (!kind) {
        if (box) box.remove();
        return;
      }
      if (!box) {
        box = document.createElement("article");
        box.id = "session-note";
        box.setAttribute("role", "alert");
        var banner = document.getElementById("banner");
        if (!banner) return;
        banner.parentNode.insertBefore(box, banner);
      }
      box.className = "flash " + (kind === "ended" ? "flash-error" : "flash-warning");
      box.dataset.kind = kind;
      box.replaceChildren.apply(box, parts);
    }
    function text(t) { return document.createTextNode(t); }
    function button(label, onclick) {
      var b = document.createElement("button");
      b.type = "button";
      b.className = "secondary";
      b.textContent = label;
      b.addEventListener("click", onclick);
      return b;
    }
    function newTokens(token) {
      document.querySelectorAll("input[name=csrf_token]").forEach(function (i) { i.value = token; });
      var headers = JSON.parse(document.body.getAttribute("hx-headers") || "{}");
      headers["X-CSRFToken"] = token;
      document.body.setAttribute("hx-headers", JSON.stringify(headers));
    }
    function ask(peek, then) {
      if (asking) return;
      asking = true;
      fetch(url, {headers: peek ? {"X-Session-Peek": "1"} : {}, cache: "no-store",
        credentials: "same-origin", redirect: "error"})
        .then(function (r) { return r.json(); })
        .then(function (state) {
          asking = false;
          if (!peek) { contact = Date.now(); touched = false; }
          show(state);
          if (then) then(state);
        })
        .catch(function () { asking = false; }); // no answer (CertDesk not reached): the next tick asks again
    }
    function show(state) {
      if (!state.signed_in) {
        ended = true;
        var link = document.createElement("a");
        link.href = document.body.dataset.login;
        link.target = "_blank";
        link.textContent = "sign in again in a new tab";
        note("ended", [text((state.said || "You are signed out.") + " What you typed on this " +
          "page is still here, but it cannot be sent until you "), link,
          text(", then come back and choose "), button("Go on here", goOn), text(".")]);
        return;
      }
      ended = false;
      contact = Date.now() - (idle - state.ends_in) * 1000;
      if (state.ends_in > warnBefore) {
        note(null);
      } else if (state.how === "idle") {
        note("idle", [text("Your session ends in " + minutes(state.ends_in) + " without " +
          "activity. Press any key or "), button("Stay signed in", function () { ask(false); }),
          text(".")]);
      } else {
        note("limit", [text("Your session reaches its time limit in " + minutes(state.ends_in) +
          ": send what you are working on now, then sign in again.")]);
      }
    }
    function goOn() {
      ask(false, function (state) {
        if (!state.signed_in) return;
        newTokens(state.csrf);
        note(null);
        var main = document.getElementById("main");
        if (main) main.focus();
      });
    }
    function minutes(s) {
      return s < 90 ? "less than 2 minutes" : "about " + Math.round(s / 60) + " minutes";
    }
    ["keydown", "pointerdown", "input"].forEach(function (type) {
      document.addEventListener(type, function () {
        touched = true;
        var box = document.getElementById("session-note");
        if (box && box.dataset.kind === "idle") ask(false); // the warning answered
      }, true);
    });
    document.addEventListener("htmx:afterRequest", function () { contact = Date.now(); });
    window.setInterval(function () {
      if (ended) return;
      var quiet = (Date.now() - contact) / 1000;
      if (touched && quiet >= 60) {
        ask(false);
      } else if (quiet >= idle - warnBefore - 30) {
        ask(true);
      }
    }, Math.min(15000, idle * 250));
  }

  // A page shown from a POST (an action's page opened from the list's ticked boxes, or its
  // result) takes the address that shows it by a GET (body[data-own-address]): Back, Forward
  // and Reload then open that, rather than ask to send the form again (which would do the
  // action again).
  function takeOwnAddress() {
    var own = document.body.dataset.ownAddress;
    if (own && own !== location.pathname + location.search) {
      history.replaceState(history.state, "", own);
    }
  }

  // A link shown as a button (a[role=button]: Order Certificate, Export CSV...) is a button to a
  // screen reader, which says that Space presses it: Space follows it, as Enter does, on its
  // release as a button acts (and the page does not scroll on its press).
  function spacePressesLinkButtons() {
    function linkButton(ev) {
      return ev.key === " " && !ev.ctrlKey && !ev.metaKey && !ev.altKey && ev.target.matches &&
        ev.target.matches("a[role=button][href]");
    }
    document.addEventListener("keydown", function (ev) {
      if (linkButton(ev)) ev.preventDefault();
    });
    document.addEventListener("keyup", function (ev) {
      if (linkButton(ev)) {
        ev.preventDefault();
        ev.target.click();
      }
    });
  }
  spacePressesLinkButtons();

  document.addEventListener("DOMContentLoaded", function () {
    takeOwnAddress();
    watchSession();
    requestIdsAfterBack();
    localiseTimes(document);
    fillViewerZone(document);
    focusFirstError();
  });
  document.addEventListener("htmx:afterSettle", function (ev) {
    var root = ev.detail.elt && ev.detail.elt.isConnected ? ev.detail.elt : document;
    localiseTimes(root);
    var paged = pagedList(ev.detail);
    keepFocus(paged);
    showTop(paged);
    // A part that refreshes itself (the jobs list every 2 seconds while a job runs) is not read
    // out each time: only what the user asked for is.
    var config = ev.detail.requestConfig;
    if (root !== document && !(config && polls(config.elt))) announce(root);
    if (config && config.elt && config.elt.matches && config.elt.matches("[data-finder]") &&
        root.matches && root.matches("select")) announceFound(root);
  });
})();
