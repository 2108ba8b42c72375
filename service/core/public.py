"""The paths anyone may GET without an API key: they hold no data.

One table, read by the key check (service.core.auth) and the OpenAPI document
(service.openapi), and the source of the URLs the docs pages serve (service.pages.docs),
so a page cannot move without its path staying open.
"""

REDOC_BUNDLE_URL = "/redoc/redoc.standalone.js"

PUBLIC_PATHS = frozenset(
    {
        "/healthz",
        "/readyz",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
        REDOC_BUNDLE_URL,
        "/openapi.json",  # Swagger UI needs it before anyone can type a key into "Authorize"
        "/",  # the dashboard page; its scripts call the API with the key
    }
)
PUBLIC_PREFIXES = ("/static/",)  # StaticFiles: the dashboard's and the docs' assets
