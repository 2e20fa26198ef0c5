"""The MCP server: tools, resources and a prompt over the service."""
