// Starts Swagger UI on the API's own OpenAPI document (no inline script: the page's CSP forbids it).
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
