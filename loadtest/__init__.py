"""livectl's load test: ``python -m loadtest`` measures ingest, fan-out latency and socket
memory on this machine against the targets in DESIGN.md (``--help`` for options)."""
