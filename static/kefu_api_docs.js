// The API reference page (/api/docs): Swagger UI from our static files renders the OpenAPI document named by the
// container's data-spec-url, read with the page's session cookie. "Try it out" calls the API as the signed-in
// person: a write carries the page's CSRF token, as the API asks of a session caller. A file of ours, not an
// inline script: the site's Content-Security-Policy allows only our own scripts.
(function () {
  "use strict";
  var container = document.getElementById("kefu-api-docs");
  var csrfToken = document.querySelector("meta[name='csrf-token']").getAttribute("content");
  window.SwaggerUIBundle({
    url: container.dataset.specUrl,
    domNode: container,
    validatorUrl: null,  // no badge from the public validator: nothing leaves this site
    deepLinking: true,
    docExpansion: "none",
    defaultModelsExpandDepth: 0,
    requestInterceptor: function (request) {
      if (!/^(GET|HEAD|OPTIONS)$/i.test(request.method || "GET")) {
        request.headers["X-CSRFToken"] = csrfToken;
      }
      return request;
    },
  });
})();
