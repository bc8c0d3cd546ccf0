// Starts ReDoc on /redoc (a static file: the CSP allows no inline scripts).
(function () {
  var root = document.getElementById("redoc");
  Redoc.init(root.getAttribute("data-openapi-url"), { nonce: root.getAttribute("data-nonce") }, root);
})();
