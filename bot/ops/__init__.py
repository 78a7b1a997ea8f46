"""The operators' page: ``/ops`` (HTML, server-side SVG charts) and ``/ops/api/...`` (JSON and CSV)."""
