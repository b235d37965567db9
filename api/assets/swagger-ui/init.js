// Products Manager: Swagger UI on this service's own OpenAPI document (see README.md).
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/api/v1/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    // The default sends the document to validator.swagger.io for a badge: nothing leaves.
    validatorUrl: null,
    // Tokens stay in this tab's memory only.
    persistAuthorization: false,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
