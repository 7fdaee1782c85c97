// Swagger UI on /openapi.json. "Authorize" keeps the token in this page's memory only:
// never in localStorage, where it would outlive sign-out and be readable by any script.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
