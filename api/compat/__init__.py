"""Translation layers that let the tools civic developers already use read this API unmodified:
Socrata's SODA 2.1 (``soda/``), CKAN's Action API (``ckan/``), and the DCAT-US ``data.json`` and
Frictionless Data Package catalogues (``catalog.py``)."""
