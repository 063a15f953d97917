// The /docs page: Swagger UI over this server's /openapi.json. Everything it loads is served
// by Eventor itself (no CDN, no validator badge), so it works with no internet access.
window.addEventListener("load", () => {
  window.ui = SwaggerUIBundle({
    url: new URL("openapi.json", document.baseURI).href,
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    defaultModelsExpandDepth: 0,
    displayRequestDuration: true,
  });
});
