// Swagger UI for the gateway's own OpenAPI document. validatorUrl: null keeps the page from
// fetching a badge from swagger.io: nothing but this gateway is ever contacted.
window.ui = window.SwaggerUIBundle({
  url: "openapi.json",  // relative to the page (/ or /docs, under SERVER_ROOT_PATH too)
  dom_id: "#swagger-ui",
  validatorUrl: null,
  deepLinking: true,
  persistAuthorization: false,
});
