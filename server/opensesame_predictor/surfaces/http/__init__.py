"""The HTTP API: POST /predict, health, metrics, docs; MCP mounted at /mcp by the CLI."""
