// Parts of a page that take longer to compute than the page itself (the counts of 逾期督办): an element
// marked data-kefu-load="<url>" gets the HTML that URL returns; data-kefu-load-error is shown if it fails.
(function () {
  "use strict";
  document.querySelectorAll("[data-kefu-load]").forEach(function (element) {
    fetch(element.dataset.kefuLoad, {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (response) {
        // redirected: the session has ended and this is the login page
        return response.ok && !response.redirected ? response.text() : Promise.reject(response.status);
      })
      .then(function (html) { element.innerHTML = html; })
      .catch(function () {
        element.innerHTML = "";
        var message = document.createElement("p");
        message.className = "text-danger small";
        message.textContent = element.dataset.kefuLoadError;
        element.appendChild(message);
      });
  });
})();
