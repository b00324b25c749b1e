"""The conformance fixture: one MCP server with every feature the official suite's scenarios call.

Served completely by one command from the repository root:

    mcp-supervisor serve tests.conformance.everything:server

`server` is a `supervisor.Served` bundle: the `MCPServer` plus the `SupervisorConfig` it needs
(an event store with a short retry interval for SSE polling, and DNS-rebinding protection that
admits only loopback hosts). Tool, resource and prompt names are the ones the suite asks for.
"""

from __future__ import annotations

import base64
import json
import warnings
from typing import Annotated, Any

import trio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.prompts.base import Message, Prompt, UserMessage
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp_types import (
    AudioContent,
    CallToolResult,
    ClientCapabilities,
    Completion,
    CompletionArgument,
    CompletionContext,
    CreateMessageRequest,
    CreateMessageRequestParams,
    ElicitRequest,
    ElicitRequestFormParams,
    EmbeddedResource,
    EmptyResult,
    ImageContent,
    InputRequiredResult,
    ListRootsRequest,
    MissingRequiredClientCapabilityErrorData,
    PromptReference,
    ResourceTemplateReference,
    SamplingCapability,
    SamplingMessage,
    SetLevelRequestParams,
    SubscribeRequestParams,
    TextContent,
    TextResourceContents,
    UnsubscribeRequestParams,
)
from mcp_types.jsonrpc import MISSING_REQUIRED_CLIENT_CAPABILITY
from pydantic import BaseModel, Field

from supervisor import Served, SupervisorConfig
from tests.conformance.event_store import MemoryEventStore

STORE = MemoryEventStore()
"""The event store of the streams this server serves (its reconnection tool waits on it)."""

PNG_1PX = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
WAV_EMPTY = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA="
RETRY_INTERVAL_MS = 100

app: MCPServer = MCPServer("trio-mcp-supervisor-conformance", version="1.0.0")
subscribed: set[str] = set()


async def _log(ctx: Context, message: str) -> None:
    """Log to the client; the logging capability is deprecated in 2026-07-28, still tested before it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        await ctx.info(message)


# --- tools: content types -------------------------------------------------------------------


@app.tool()
def test_simple_text() -> str:
    """Answers with one text block."""
    return "This is a simple text response for testing."


@app.tool()
def test_image_content() -> list[ImageContent]:
    """Answers with one PNG image block."""
    return [ImageContent(type="image", data=PNG_1PX, mime_type="image/png")]


@app.tool()
def test_audio_content() -> list[AudioContent]:
    """Answers with one WAV audio block."""
    return [AudioContent(type="audio", data=WAV_EMPTY, mime_type="audio/wav")]


@app.tool()
def test_embedded_resource() -> list[EmbeddedResource]:
    """Answers with an embedded text resource."""
    contents = TextResourceContents(
        uri="test://embedded-resource", mime_type="text/plain", text="This is an embedded resource content."
    )
    return [EmbeddedResource(type="resource", resource=contents)]


@app.tool()
def test_multiple_content_types() -> list[TextContent | ImageContent | EmbeddedResource]:
    """Answers with text, an image and an embedded JSON resource, in that order."""
    document = TextResourceContents(
        uri="test://mixed-content-resource",
        mime_type="application/json",
        text=json.dumps({"test": "data", "value": 123}),
    )
    return [
        TextContent(type="text", text="Multiple content types test:"),
        ImageContent(type="image", data=PNG_1PX, mime_type="image/png"),
        EmbeddedResource(type="resource", resource=document),
    ]


@app.tool()
def test_error_handling() -> str:
    """Always fails, so the client sees a tool error result (isError), not a protocol error."""
    raise ToolError("This tool intentionally returns an error for testing")


# --- tools: notifications during a call -----------------------------------------------------


@app.tool()
async def test_tool_with_logging(ctx: Context) -> str:
    """Sends three log notifications while it runs."""
    for message in ("Tool execution started", "Tool processing data", "Tool execution completed"):
        await _log(ctx, message)
        await trio.sleep(0.05)
    return "Tool with logging executed successfully"


@app.tool()
async def test_tool_with_progress(ctx: Context) -> str:
    """Reports progress 0, 50, 100 and answers with the caller's progress token."""
    for done in (0, 50, 100):
        await ctx.report_progress(progress=done, total=100, message=f"Completed step {done} of 100")
        await trio.sleep(0.05)
    meta = ctx.request_context.meta
    token = meta.get("progress_token") if isinstance(meta, dict) else getattr(meta, "progress_token", None)
    return str(token if token is not None else 0)


@app.tool()
async def test_reconnection(ctx: Context) -> str:
    """Closes its own SSE stream mid-call (SSE polling): the client resumes with Last-Event-ID."""
    await _log(ctx, "Before disconnect")
    resumed = STORE.expect_resume(str(ctx.request_id))
    await ctx.close_sse_stream()
    await resumed()
    await _log(ctx, "After reconnect")
    return "Reconnection test completed"


# --- tools: server-to-client requests (2025-era sampling and elicitation) --------------------


@app.tool()
async def test_sampling(prompt: str, ctx: Context) -> str:
    """Asks the client's model to complete the prompt."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sampling is deprecated in 2026-07-28, tested before it
            result = await ctx.session.create_message(
                messages=[SamplingMessage(role="user", content=TextContent(type="text", text=prompt))],
                max_tokens=100,
                # On this call's own stream: the standalone GET stream may not be open (yet).
                related_request_id=ctx.request_context.request_id,
            )
    except MCPError as error:
        return f"Sampling not supported or error: {error}"
    content = result.content
    text = content.text if isinstance(content, TextContent) else "No response"
    return f"LLM response: {text}"


class UserResponse(BaseModel):
    """The fields the suite's client fills in when it accepts."""

    username: str = Field(default="", description="User name")
    email: str = Field(default="", description="Email address")


@app.tool()
async def test_elicitation(message: str, ctx: Context) -> str:
    """Asks the user one question."""
    result = await ctx.elicit(message=message, schema=UserResponse)
    content = result.data.model_dump_json() if result.action == "accept" else "{}"
    return f"User response: action={result.action}, content={content}"


class Sep1034Defaults(BaseModel):
    name: str = Field(default="John Doe", description="User name")
    age: int = Field(default=30, description="User age")
    score: float = Field(default=95.5, description="User score")
    status: str = Field(
        default="active",
        description="User status",
        json_schema_extra={"enum": ["active", "inactive", "pending"]},
    )
    verified: bool = Field(default=True, description="Verification status")


@app.tool()
async def test_elicitation_sep1034_defaults(ctx: Context) -> str:
    """Elicits a form whose every primitive field carries a default (SEP-1034)."""
    result = await ctx.elicit(message="Please provide user information", schema=Sep1034Defaults)
    content = result.data.model_dump_json() if result.action == "accept" else "{}"
    return f"Elicitation result: action={result.action}, content={content}"


class Sep1330Enums(BaseModel):
    untitledSingle: str = Field(
        description="Simple enum without titles",
        json_schema_extra={"enum": ["active", "inactive", "pending"]},
    )
    titledSingle: str = Field(
        description="Enum with titled options (oneOf)",
        json_schema_extra={
            "oneOf": [
                {"const": "low", "title": "Low Priority"},
                {"const": "medium", "title": "Medium Priority"},
                {"const": "high", "title": "High Priority"},
            ]
        },
    )
    untitledMulti: list[str] = Field(
        description="Multi-select without titles",
        json_schema_extra={"items": {"type": "string", "enum": ["read", "write", "execute"]}},
    )
    titledMulti: list[str] = Field(
        description="Multi-select with titled options",
        json_schema_extra={
            "items": {
                "anyOf": [
                    {"const": "feature", "title": "New Feature"},
                    {"const": "bug", "title": "Bug Fix"},
                    {"const": "docs", "title": "Documentation"},
                ]
            }
        },
    )
    legacyEnum: str = Field(
        description="Legacy enum with enumNames",
        json_schema_extra={
            "enum": ["small", "medium", "large"],
            "enumNames": ["Small Size", "Medium Size", "Large Size"],
        },
    )


@app.tool()
async def test_elicitation_sep1330_enums(ctx: Context) -> str:
    """Elicits a form with every enum shape of SEP-1330."""
    result = await ctx.elicit(
        message="Please select values using different enum schema types", schema=Sep1330Enums
    )
    content = result.data.model_dump_json() if result.action == "accept" else "{}"
    return f"Elicitation completed: action={result.action}, content={content}"


# --- tools: schema and headers ----------------------------------------------------------------

SCHEMA_2020_12: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": {
            "$anchor": "addressDef",
            "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
        }
    },
    "properties": {
        "name": {"type": "string"},
        "address": {"$ref": "#/$defs/address"},
        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
        "phone": {"type": "string"},
        "email": {"type": "string"},
    },
    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
    "then": {"required": ["phone"]},
    "else": {"required": ["email"]},
    "additionalProperties": False,
}


def json_schema_2020_12_tool(**arguments: Any) -> str:
    """Accepts anything its 2020-12 schema allows; the suite checks the schema is listed intact."""
    return f"Received: {json.dumps(arguments, sort_keys=True)}"


app.add_tool(json_schema_2020_12_tool, description="Tool with JSON Schema 2020-12 features")
app._tool_manager.get_tool("json_schema_2020_12_tool").parameters = SCHEMA_2020_12  # type: ignore[union-attr]


@app.tool()
def test_custom_headers(
    region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})],
    query: str = "",
) -> str:
    """Has a parameter mirrored into the Mcp-Param-Region header (SEP-2243)."""
    return f"region={region} query={query}"


# --- tools and a prompt that ask for input by result (2026-07-28, SEP-2322) -------------------


def _ask_text(message: str, field: str) -> ElicitRequest:
    schema = {"type": "object", "properties": {field: {"type": "string"}}, "required": [field]}
    return ElicitRequest(params=ElicitRequestFormParams(message=message, requested_schema=schema))


def _ask_model(text: str, max_tokens: int) -> CreateMessageRequest:
    message = SamplingMessage(role="user", content=TextContent(type="text", text=text))
    return CreateMessageRequest(params=CreateMessageRequestParams(messages=[message], max_tokens=max_tokens))


def _answer(ctx: Context, key: str) -> dict[str, Any] | None:
    """The client's response under `key`, as plain JSON, or None when it sent none."""
    responses = ctx.input_responses or {}
    response = responses.get(key)
    if response is None:
        return None
    dumped = response.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped if isinstance(dumped, dict) else None


def _accepted(answer: dict[str, Any] | None, field: str) -> str | None:
    if answer is None or answer.get("action") != "accept":
        return None
    value = (answer.get("content") or {}).get(field)
    return str(value) if value is not None else None


def _sampled_text(answer: dict[str, Any] | None) -> str | None:
    content = (answer or {}).get("content")
    return str(content.get("text")) if isinstance(content, dict) and "text" in content else None


def _text(text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)])


@app.tool()
def test_input_required_result_elicitation(ctx: Context) -> CallToolResult | InputRequiredResult:
    """Asks the user's name by result, then greets them; a wrong or missing answer is asked again."""
    name = _accepted(_answer(ctx, "user_name"), "name")
    if name is None:
        return InputRequiredResult(input_requests={"user_name": _ask_text("What is your name?", "name")})
    return _text(f"Hello, {name}!")


@app.tool()
def test_input_required_result_sampling(ctx: Context) -> CallToolResult | InputRequiredResult:
    """Asks the client's model a question by result, then repeats its answer."""
    text = _sampled_text(_answer(ctx, "capital_question"))
    if text is None:
        ask = _ask_model("What is the capital of France?", 100)
        return InputRequiredResult(input_requests={"capital_question": ask})
    return _text(f"The model answered: {text}")


@app.tool()
def test_input_required_result_list_roots(ctx: Context) -> CallToolResult | InputRequiredResult:
    """Asks for the client's roots by result, then lists them."""
    answer = _answer(ctx, "client_roots")
    if answer is None or not isinstance(answer.get("roots"), list):
        return InputRequiredResult(input_requests={"client_roots": ListRootsRequest()})
    uris = ", ".join(str(root.get("uri")) for root in answer["roots"] if isinstance(root, dict))
    return _text(f"Client roots: {uris}")


@app.tool()
def test_input_required_result_request_state(ctx: Context) -> CallToolResult | InputRequiredResult:
    """Round-trips request state; the SDK seals it, so an answer means the state verified."""
    confirm = _answer(ctx, "confirm")
    if ctx.request_state == "awaiting-confirm" and confirm is not None:
        return _text("state-ok: confirmation received")
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    ask = ElicitRequest(params=ElicitRequestFormParams(message="Please confirm", requested_schema=schema))
    return InputRequiredResult(input_requests={"confirm": ask}, request_state="awaiting-confirm")


@app.tool()
def test_input_required_result_multiple_inputs(ctx: Context) -> CallToolResult | InputRequiredResult:
    """Asks for three inputs of three kinds in one round."""
    keys = ("user_name", "greeting", "client_roots")
    if ctx.request_state == "multiple-inputs" and all(_answer(ctx, key) is not None for key in keys):
        return _text("All inputs received")
    return InputRequiredResult(
        input_requests={
            "user_name": _ask_text("What is your name?", "name"),
            "greeting": _ask_model("Generate a greeting", 50),
            "client_roots": ListRootsRequest(),
        },
        request_state="multiple-inputs",
    )


@app.tool()
def test_input_required_result_multi_round(ctx: Context) -> CallToolResult | InputRequiredResult:
    """Two rounds of questions, the state evolving between them."""
    state = ctx.request_state or ""
    if state.startswith("round-2:"):
        color = _accepted(_answer(ctx, "step2"), "color")
        if color is not None:
            return _text(f"Multi-round input complete: {state.removeprefix('round-2:')} likes {color}")
        return InputRequiredResult(
            input_requests={"step2": _ask_text("Step 2: What is your favorite color?", "color")},
            request_state=state,
        )
    name = _accepted(_answer(ctx, "step1"), "name") if state == "round-1" else None
    if name is not None:
        return InputRequiredResult(
            input_requests={"step2": _ask_text("Step 2: What is your favorite color?", "color")},
            request_state=f"round-2:{name}",
        )
    return InputRequiredResult(
        input_requests={"step1": _ask_text("Step 1: What is your name?", "name")}, request_state="round-1"
    )


@app.tool()
def test_input_required_result_tampered_state(ctx: Context) -> CallToolResult | InputRequiredResult:
    """Hands out sealed state; the SDK's request-state boundary rejects a tampered one (-32602)."""
    if ctx.request_state == "untampered":
        return _text("state verified")
    ask = _ask_text("Please confirm to continue", "ok")
    return InputRequiredResult(input_requests={"confirm": ask}, request_state="untampered")


@app.prompt()
def test_input_required_result_prompt(ctx: Context) -> list[Message] | InputRequiredResult:
    """A prompt that first asks the user what context to use."""
    context = _accepted(_answer(ctx, "user_context"), "context")
    if context is None:
        ask = _ask_text("What context should the prompt use?", "context")
        return InputRequiredResult(input_requests={"user_context": ask})
    return [UserMessage(content=f"Use this context: {context}")]


@app.tool()
def test_input_required_result_capabilities(ctx: Context) -> CallToolResult | InputRequiredResult:
    """Asks only for the kinds of input the client declared it can give."""
    capabilities = ctx.client_capabilities
    if ctx.input_responses:
        return _text("Inputs received")
    asks: dict[str, Any] = {}
    if capabilities is not None and capabilities.sampling is not None:
        asks["greeting"] = _ask_model("Generate a greeting", 50)
    if capabilities is not None and capabilities.elicitation is not None:
        asks["user_name"] = _ask_text("What is your name?", "name")
    if capabilities is not None and capabilities.roots is not None:
        asks["client_roots"] = ListRootsRequest()
    if not asks:
        return _text("The client declared no capability to ask with")
    return InputRequiredResult(input_requests=asks)


@app.tool()
def test_missing_capability(ctx: Context) -> CallToolResult | InputRequiredResult:
    """Needs sampling: a client that did not declare it gets -32021, never a half-done call."""
    capabilities = ctx.client_capabilities
    if capabilities is None or capabilities.sampling is None:
        needed = ClientCapabilities(sampling=SamplingCapability())
        raise MCPError(
            code=MISSING_REQUIRED_CLIENT_CAPABILITY,
            message="This tool needs the sampling capability",
            data=MissingRequiredClientCapabilityErrorData(required_capabilities=needed).model_dump(
                mode="json", by_alias=True, exclude_none=True
            ),
        )
    text = _sampled_text(_answer(ctx, "sample"))
    if text is None:
        return InputRequiredResult(input_requests={"sample": _ask_model("Say something", 20)})
    return _text(f"Sampled: {text}")


@app.tool()
async def test_logging_tool(ctx: Context) -> str:
    """Logs once; the SDK drops the log unless the client asked for a level."""
    await _log(ctx, "test_logging_tool ran")
    return "logged"


def _dynamic_tool() -> str:
    """Comes and goes with every test_trigger_tool_change call."""
    return "dynamic"


@app.tool()
async def test_trigger_tool_change(ctx: Context) -> str:
    """Adds or removes a tool and tells listening clients the tool list changed."""
    if app._tool_manager.get_tool("test_dynamic_tool") is None:
        app.add_tool(_dynamic_tool, name="test_dynamic_tool")
    else:
        app.remove_tool("test_dynamic_tool")
    await ctx.notify_tools_changed()
    return "tool list changed"


@app.tool()
async def test_trigger_prompt_change(ctx: Context) -> str:
    """Adds or removes a prompt and tells listening clients the prompt list changed."""
    names = {prompt.name for prompt in await app.list_prompts()}
    if "test_dynamic_prompt" in names:
        app.remove_prompt("test_dynamic_prompt")
    else:
        app.add_prompt(Prompt.from_function(_dynamic_prompt, name="test_dynamic_prompt"))
    await ctx.notify_prompts_changed()
    return "prompt list changed"


def _dynamic_prompt() -> str:
    """Comes and goes with every test_trigger_prompt_change call."""
    return "A prompt that was just added."


# --- resources ----------------------------------------------------------------------------------


@app.resource("test://static-text", mime_type="text/plain")
def static_text() -> str:
    """A fixed text resource."""
    return "This is the content of the static text resource."


@app.resource("test://static-binary", mime_type="image/png")
def static_binary() -> bytes:
    """A fixed binary resource (a 1x1 PNG)."""
    return base64.b64decode(PNG_1PX)


@app.resource("test://template/{id}/data", mime_type="application/json")
def template_data(id: str) -> str:
    """One resource per id, from a URI template."""
    return json.dumps({"id": id, "templateTest": True, "data": f"Data for ID: {id}"})


@app.resource("test://watched-resource", mime_type="text/plain")
def watched_resource() -> str:
    """A resource clients may subscribe to."""
    return "Watched resource content"


async def _subscribe(ctx: Any, params: SubscribeRequestParams) -> EmptyResult:
    subscribed.add(str(params.uri))
    return EmptyResult()


async def _unsubscribe(ctx: Any, params: UnsubscribeRequestParams) -> EmptyResult:
    subscribed.discard(str(params.uri))
    return EmptyResult()


async def _set_level(ctx: Any, params: SetLevelRequestParams) -> EmptyResult:
    return EmptyResult()


app._lowlevel_server.add_request_handler("resources/subscribe", SubscribeRequestParams, _subscribe)
app._lowlevel_server.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, _unsubscribe)
app._lowlevel_server.add_request_handler("logging/setLevel", SetLevelRequestParams, _set_level)


# --- prompts and completion -------------------------------------------------------------------


@app.prompt()
def test_simple_prompt() -> str:
    """A prompt without arguments."""
    return "This is a simple prompt for testing."


@app.prompt()
def test_prompt_with_arguments(arg1: str, arg2: str) -> str:
    """A prompt with two required arguments."""
    return f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"


@app.prompt()
def test_prompt_with_embedded_resource(resourceUri: str) -> list[Message]:
    """A prompt that embeds the resource the caller names."""
    contents = TextResourceContents(
        uri=resourceUri, mime_type="text/plain", text="Embedded resource content for testing."
    )
    return [
        UserMessage(content=EmbeddedResource(type="resource", resource=contents)),
        UserMessage(content="Please process the embedded resource above."),
    ]


@app.prompt()
def test_prompt_with_image() -> list[Message]:
    """A prompt that carries an image."""
    return [
        UserMessage(content=ImageContent(type="image", data=PNG_1PX, mime_type="image/png")),
        UserMessage(content="Please analyze the image above."),
    ]


@app.completion()  # type: ignore[no-untyped-call, untyped-decorator]  # the SDK leaves it untyped
async def complete(
    ref: PromptReference | ResourceTemplateReference,
    argument: CompletionArgument,
    context: CompletionContext | None,
) -> Completion:
    """Minimal completion: no suggestions, but the capability is declared and answers."""
    return Completion(values=[], total=0, has_more=False)


server = Served(
    server=app,
    config=SupervisorConfig(
        event_store=STORE,
        retry_interval=RETRY_INTERVAL_MS,
        security=TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=["localhost:*", "127.0.0.1:*", "[::1]:*", "localhost", "127.0.0.1", "[::1]"],
            allowed_origins=["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"],
        ),
    ),
)
"""What `mcp-supervisor serve tests.conformance.everything:server` serves."""
