"""The faces of the service: the language server, the MCP server and the HTTP API."""
