"""The official MCP Python SDK as a benchmark client (bench/peers.rs runs it).

    python peers.py calls SPEC.json    # timed tool calls; prints {"latencies_ms": [...], "wall_ms": n}
    python peers.py schemas SPEC.json  # per-call output-schema validation cost, per tool

SPEC is {"command": str, "args": [str], "calls": [[tool, arguments], ...],
"expect": "structured" | "text"} for `calls`, and {"command", "args",
"samples": {tool: arguments}} for `schemas`. Every call's answer is checked:
not an error, and one row. The server's stderr goes to /dev/null.
"""

import asyncio
import json
import os
import sys
import time

import jsonschema
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def one_row(result, expect):
    if result.isError:
        raise SystemExit(f"the tool failed: {result.content}")
    if expect == "structured":
        rows = (result.structuredContent or {}).get("rows")
    else:
        rows = json.loads(result.content[0].text)
    if not isinstance(rows, list) or len(rows) != 1:
        raise SystemExit(f"expected one row, got {result}")


async def calls(spec, session):
    latencies = []
    started = time.perf_counter()
    for tool, arguments in spec["calls"]:
        t = time.perf_counter()
        result = await session.call_tool(tool, arguments)
        latencies.append((time.perf_counter() - t) * 1000)
        one_row(result, spec["expect"])
    return {"latencies_ms": latencies, "wall_ms": (time.perf_counter() - started) * 1000}


def as_2020_12(schema):
    """The same schema in JSON Schema 2020-12 terms, with no `$schema`: MCP's default."""
    text = json.dumps(schema).replace('"#/definitions/', '"#/$defs/')
    out = json.loads(text)
    out.pop("$schema", None)
    if "definitions" in out:
        out["$defs"] = out.pop("definitions")
    return out


def validation_ms(instance, schema, n=40):
    # What mcp 1.x does on every call: jsonschema.validate, which also checks
    # the schema against its meta-schema.
    started = time.perf_counter()
    for _ in range(n):
        jsonschema.validate(instance, schema)
    return (time.perf_counter() - started) / n * 1000


async def schemas(spec, session):
    tools = (await session.list_tools()).tools
    out = []
    for tool in tools:
        if not tool.outputSchema or tool.name not in spec["samples"]:
            continue
        result = await session.call_tool(tool.name, spec["samples"][tool.name])
        if result.isError:
            raise SystemExit(f"{tool.name} failed: {result.content}")
        instance = result.structuredContent
        out.append({
            "tool": tool.name,
            "schema": tool.outputSchema,
            "instance": instance,
            "dialect": tool.outputSchema.get("$schema", "(none: 2020-12)"),
            "served_ms": validation_ms(instance, tool.outputSchema),
            "as_2020_12_ms": validation_ms(instance, as_2020_12(tool.outputSchema)),
        })
    return out


async def main():
    mode, path = sys.argv[1], sys.argv[2]
    with open(path) as f:
        spec = json.load(f)
    server = StdioServerParameters(command=spec["command"], args=spec["args"], env=dict(os.environ))
    with open(os.devnull, "w") as devnull:
        async with stdio_client(server, errlog=devnull) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                # Lists the tools first, as a client does: the SDK then knows
                # every output schema before the first call.
                await session.list_tools()
                result = await (calls if mode == "calls" else schemas)(spec, session)
    json.dump(result, sys.stdout)


asyncio.run(main())
