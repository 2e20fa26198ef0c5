#!/bin/sh
# Register OpenSesame Predictor with Claude Code. Run from your project's root folder.
# Pick one of the two; -s project writes .mcp.json so the whole team gets it.

# stdio: Claude Code starts the server itself; it indexes the specs under the project folder.
claude mcp add -s project opensesame-predictor -- opensesame-predictor mcp --workspace .

# streamable HTTP: start the server first (it listens on 127.0.0.1 only), then point Claude Code at it:
#   opensesame-predictor mcp --workspace . --transport streamable-http --port 8765
# claude mcp add -s project --transport http opensesame-predictor-http http://127.0.0.1:8765/mcp
