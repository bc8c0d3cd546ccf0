"""One module per measured thing, and the meters and stream readers they share.

- ``meters``: CPU of a server tree and of this client, RSS sampling, a load run with its CPU.
- ``streams``: reading a streamed body (HTTP or psql) counting rows without keeping it.
- ``csv_export`` (1a, 1b), ``json_reads`` (2a-2c), ``ingest`` (3 and 6b),
  ``not_modified`` (4), ``rss`` (5), ``history`` (6a).
"""
