"""A generic MCP client for OpenSesame Predictor, over stdio or streamable HTTP.

    python example_client.py --spec petstore.yaml "upload a photo of my pet" --history "POST /pets"
    python example_client.py --url http://127.0.0.1:8765/mcp "upload a photo of my pet"

It lists the tools, asks for the next call, then describes the best one: the loop an agent runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import anyio
from mcp_types import TextContent

from mcp import Client, StdioServerParameters


def text(result: Any) -> str:
    return "\n".join(b.text for b in result.content if isinstance(b, TextContent))


async def main(args: argparse.Namespace) -> int:
    server: str | StdioServerParameters
    if args.url:
        server = args.url
    else:
        command = ["-m", "opensesame_predictor", "mcp"]
        for spec in args.spec or []:
            command += ["--spec", spec]
        server = StdioServerParameters(command=sys.executable, args=command)
    async with Client(server) as client:
        tools = await client.list_tools()
        print("tools:", ", ".join(tool.name for tool in tools.tools))
        predicted = await client.call_tool(
            "predict_next_call", {"prompt": args.prompt, "history": args.history or []}
        )
        print(text(predicted))
        if predicted.is_error or not predicted.structured_content:
            return 1
        best = predicted.structured_content["predictions"][0]["api_call"]
        described = await client.call_tool("describe_endpoint", {"api_call": best})
        print(text(described))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prompt")
    parser.add_argument("--url", help="streamable HTTP endpoint, e.g. http://127.0.0.1:8765/mcp")
    parser.add_argument("--spec", action="append", help="spec for a stdio server (repeatable)")
    parser.add_argument("--history", action="append", help="a call already made, oldest first")
    sys.exit(anyio.run(main, parser.parse_args()))
