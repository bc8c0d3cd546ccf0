"""The public site: server-rendered pages on the same services as the API."""
