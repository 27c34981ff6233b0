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
