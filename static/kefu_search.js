// Search everywhere: "/" anywhere outside a text input focuses the navigation bar's search box (as on GitHub).
(function () {
  "use strict";
  document.addEventListener("keydown", function (event) {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) {
      return;
    }
    var target = event.target;
    var tag = target && target.tagName ? target.tagName.toLowerCase() : "";
    if (tag === "input" || tag === "textarea" || tag === "select" || (target && target.isContentEditable)) {
      return;
    }
    var box = document.getElementById("kefu-navbar-search");
    if (box) {
      event.preventDefault();
      box.focus();
      box.select();
    }
  });
}());
