// What Flask-Admin's templates and ours did with inline handlers (onclick=…), which the Content-Security-Policy
// blocks (web/security.py): the "with selected" actions (data-kefu-action), links to "#" or "javascript:void(0)"
// that only run a script (the filters, the menus' dropdowns: following a javascript: link is itself an inline
// script the policy blocks), the confirmation before a delete (a form's data-kefu-confirm) and "select all" check
// boxes (data-kefu-check-all="<selector of the boxes>").
(function () {
  "use strict";
  // Capturing: Flask-Admin's dropdown script stops the click before it bubbles up to the document.
  document.addEventListener("click", function (event) {
    var link = event.target.closest("[data-kefu-action], a[href='#'], a[href^='javascript:']");
    if (link) {
      event.preventDefault();
    }
    if (link && link.dataset.kefuAction) {
      window.modelActions.execute(link.dataset.kefuAction);
    }
  }, true);
  document.addEventListener("submit", function (event) {
    var message = event.target.dataset.kefuConfirm;
    if (message && !window.confirm(message)) {
      event.preventDefault();
    }
  });
  document.addEventListener("change", function (event) {
    var selector = event.target.dataset && event.target.dataset.kefuCheckAll;
    if (selector) {
      document.querySelectorAll(selector).forEach(function (box) { box.checked = event.target.checked; });
    }
  });
})();
// Flask-Admin's date pickers (bootstrap-daterangepicker 1.3 on moment) and pick lists (select2 3.5) speak English
// whatever the page's language: the page's #kefu-locale JSON (web/i18n.py, admin_locale) gives their words. The
// pickers are created when the document is ready (Flask-Admin's form.js) or when a filter is added, so the
// daterangepicker plug-in is wrapped once the scripts are loaded, before form.js's own ready handler runs.
(function () {
  "use strict";
  var data = document.getElementById("kefu-locale");
  var jq = window.jQuery;
  if (!data || !jq) {
    return;
  }
  var words = JSON.parse(data.textContent);
  document.documentElement.lang = words.lang;
  if (jq.fn.select2) {
    var s = words.select2;
    jq.extend(jq.fn.select2.defaults, {
      formatNoMatches: function () { return s.noMatches; },
      formatSearching: function () { return s.searching; },
      formatLoadMore: function () { return s.loadMore; },
      formatAjaxError: function () { return s.ajaxError; },
      formatInputTooShort: function (input, min) { return s.inputTooShort.replace("{n}", min - input.length); },
      formatInputTooLong: function (input, max) { return s.inputTooLong.replace("{n}", input.length - max); },
      formatSelectionTooBig: function (limit) { return s.selectionTooBig.replace("{n}", limit); },
      formatMatches: function (count) { return s.matches.replace("{n}", count); }
    });
  }
  jq(function () {
    var original = jq.fn.daterangepicker;
    if (!original) {
      return;
    }
    jq.fn.daterangepicker = function (options, callback) {
      var localised = jq.extend({}, options, {locale: jq.extend({}, words.picker, (options || {}).locale)});
      return original.call(this, localised, callback);
    };
  });
})();
