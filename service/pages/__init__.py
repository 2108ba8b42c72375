"""The pages people open in a browser: the dashboard and the API docs, with every asset
served from this package's static/ folder (no CDN)."""
