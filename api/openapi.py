"""Print the OpenAPI document (``make openapi`` writes it to ``openapi/openapi.json``)."""

from __future__ import annotations

import json

from api.main import create_app, openapi_document
from api.settings import Settings


def render() -> str:
    app = create_app(Settings(database_url="sqlite://", rate_limit_enabled=False))
    return json.dumps(openapi_document(app), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    print(render(), end="")
