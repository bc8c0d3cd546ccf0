"""The analyses as an Atom 1.0 feed (RFC 4287), newest first."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from xml.etree import ElementTree as ET

ATOM_NS = "http://www.w3.org/2005/Atom"
ATOM_MEDIA_TYPE = "application/atom+xml"


def _instant(ts: dt.datetime) -> str:
    """RFC 3339 UTC with Z, whole seconds (stored instants are naive UTC)."""
    return ts.replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
    if text is not None:
        element.text = text
    return element


def feed(analyses: Sequence[dict[str, Any]], *, base_url: str, city: str) -> bytes:
    """The feed document. ``analyses`` are rows as the API publishes them, newest first."""
    base = base_url.rstrip("/")
    ET.register_namespace("", ATOM_NS)
    root = ET.Element(f"{{{ATOM_NS}}}feed")
    _sub(root, "id", f"{base}/analyses")
    _sub(root, "title", f"{city} CityScore analyses")
    _sub(root, "subtitle", "Write-ups from the city's analytics team")
    updated = max((a["updated_at"] for a in analyses), default=dt.datetime(1970, 1, 1))
    _sub(root, "updated", _instant(updated))
    _sub(root, "link", rel="self", href=f"{base}/v1/analyses.atom", type=ATOM_MEDIA_TYPE)
    _sub(root, "link", rel="alternate", href=f"{base}/analyses", type="text/html")
    author = _sub(root, "author")
    _sub(author, "name", f"{city} analytics team")
    for a in analyses:
        entry = _sub(root, "entry")
        _sub(entry, "id", f"{base}/analyses/{a['slug']}")
        _sub(entry, "title", a["title"])
        _sub(entry, "updated", _instant(a["updated_at"]))
        _sub(entry, "published", f"{a['published_on'].isoformat()}T00:00:00Z")
        _sub(entry, "link", rel="alternate", href=f"{base}/analyses/{a['slug']}", type="text/html")
        for tag in a["tags"]:
            _sub(entry, "category", term=tag)
        if a["summary"]:
            _sub(entry, "summary", a["summary"])
        _sub(entry, "content", a["body_html"], type="html")
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return body
