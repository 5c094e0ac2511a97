"""`python-hello`: a sluice plugin written in Python.

Built into a WebAssembly component with componentize-py against the WIT world
`plugin` in `wit/sluice.wit` (see `build.sh`). It shows the whole surface a
plugin implements without the Rust SDK:

* `describe` returns the manifest (name, version, requested access) and tools;
* `call_tool` dispatches on the tool name and parses the JSON arguments itself;
* the host's imports (`database`, `log`) are plain Python functions.

Mapping of WIT onto Python, as componentize-py generates it (`wit_world`):

* the exported interface `handler` is the protocol `wit_world.exports.Handler`,
  which this module implements as the class `Handler`;
* records and variant cases are dataclasses (`handler.Tool`,
  `types.Error_NotFound(...)`), `option<T>` is `Optional[T]`;
* a `result<T, error>` return is the plain `T` on success, or raising
  `componentize_py_types.Err(error)` on failure; imports that return a
  `result` raise `Err` the same way.

Every export call runs in a fresh instance, so nothing here keeps state.
"""

import json
import re
from typing import Any, Dict, List, Tuple

from componentize_py_types import Err

import wit_world
from wit_world.exports import handler
from wit_world.imports import database, log, types

NAME = "python-hello"
VERSION = "0.1.0"

# A table name: `name` or `schema.name`, plain SQL identifiers. The host's
# policy is the real guard (single statement, read grant, read-only
# transaction); this only keeps the interpolated SQL well-formed.
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?")


def _schema(properties: Dict[str, Any], required: List[str]) -> str:
    """A serialized JSON Schema for an object with `properties`."""
    return json.dumps(
        {
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": False,
        }
    )


def _read_only() -> handler.ToolAnnotations:
    return handler.ToolAnnotations(
        read_only=True, destructive=False, idempotent=True, open_world=False
    )


TOOLS = [
    handler.Tool(
        name="py_greet",
        title="Greet (Python)",
        description="Greet someone by name, from a plugin written in Python.",
        input_schema=_schema(
            {"name": {"type": "string", "description": "Who to greet."}}, ["name"]
        ),
        output_schema=_schema({"greeting": {"type": "string"}}, ["greeting"]),
        annotations=_read_only(),
    ),
    handler.Tool(
        name="py_count_rows",
        title="Count rows (Python)",
        description=(
            "Count the rows of a table or view (`name` or `schema.name`) "
            "with SELECT count(*)."
        ),
        input_schema=_schema(
            {
                "table": {
                    "type": "string",
                    "description": "Table name, optionally schema-qualified "
                    "(`film` or `public.film`).",
                }
            },
            ["table"],
        ),
        output_schema=_schema(
            {"table": {"type": "string"}, "rows": {"type": "integer"}},
            ["table", "rows"],
        ),
        annotations=_read_only(),
    ),
]


def _invalid(message: str) -> Err:
    return Err(types.Error_InvalidInput(message))


def _string_arg(args: Dict[str, Any], key: str) -> str:
    """The required string argument `key`, or an `invalid-input` error."""
    value = args.get(key)
    if not isinstance(value, str):
        raise _invalid(f"arguments: `{key}` must be a string")
    return value


def _result(text: str, structured: Dict[str, Any]) -> handler.ToolResult:
    """A successful tool result: `text` for the model, `structured` as JSON."""
    return handler.ToolResult(
        content=[handler.Content_Text(text)],
        structured=json.dumps(structured),
        is_error=False,
    )


def greet(args: Dict[str, Any]) -> handler.ToolResult:
    greeting = f"Hello from Python, {_string_arg(args, 'name')}!"
    return _result(greeting, {"greeting": greeting})


def count_rows(args: Dict[str, Any]) -> handler.ToolResult:
    table = _string_arg(args, "table")
    if not _TABLE_NAME.fullmatch(table):
        raise _invalid(f"not a table name: {table!r}")
    # `database.query` raises `Err(types.Error)` when the host refuses the
    # statement or PostgreSQL fails it; it propagates unchanged out of
    # `call_tool`, so the host reports its own error as the tool's error.
    rows = database.query(f"SELECT count(*) AS n FROM {table}", [])
    n = _as_int(rows.rows[0][0])
    return _result(f"{table}: {n} rows", {"table": table, "rows": n})


def _as_int(value: types.Value) -> int:
    """The integer in a `count(*)` cell (`bigint`, so `scalar.int`)."""
    if isinstance(value, types.Value_Scalar):
        scalar = value.value
        if isinstance(scalar, types.Scalar_Int):
            return scalar.value
        if isinstance(scalar, (types.Scalar_Numeric, types.Scalar_Text)):
            return int(scalar.value)
    raise Err(types.Error_Internal(f"count(*) returned an unexpected value: {value!r}"))


# Tool name -> implementation taking the parsed arguments object.
HANDLERS = {"py_greet": greet, "py_count_rows": count_rows}


class Handler(wit_world.exports.Handler):
    """The `handler` export: the plugin's MCP surface."""

    def describe(self) -> handler.Description:
        return handler.Description(
            manifest=handler.Manifest(
                name=NAME,
                version=VERSION,
                description="Example plugin in Python: greets and counts table rows.",
                requests=handler.Requests(
                    read=["public.*"],
                    write=[],
                    catalog=True,
                    timeout_ms=None,
                    memory_mb=None,
                    max_rows=None,
                ),
            ),
            tools=TOOLS,
            resources=[],
            resource_templates=[],
            prompts=[],
        )

    def call_tool(self, name: str, arguments: str) -> handler.ToolResult:
        log.log(log.Level.DEBUG, f"call_tool {name} {arguments}")
        tool = HANDLERS.get(name)
        if tool is None:
            raise Err(types.Error_NotFound(f"no tool named {name!r}"))
        try:
            args = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as e:
            raise _invalid(f"arguments: {e}") from None
        if not isinstance(args, dict):
            raise _invalid("arguments: expected a JSON object")
        return tool(args)

    def read_resource(self, uri: str) -> List[handler.ResourceContents]:
        raise Err(types.Error_NotFound(f"no resource {uri!r}"))

    def get_prompt(
        self, name: str, arguments: List[Tuple[str, str]]
    ) -> handler.PromptResult:
        raise Err(types.Error_NotFound(f"no prompt named {name!r}"))

    def complete(self, request: handler.CompletionRequest) -> handler.Completion:
        raise Err(types.Error_NotFound("no such prompt or resource template"))
