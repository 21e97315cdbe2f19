"""The gateway app: OpenAI's REST API (chat completions, responses, models) over gptoss.v1 gRPC."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from gptoss import GptossError, ModelInfo
from pydantic_core import ErrorDetails
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway import _completions as completions
from gateway._auth import ApiKeys
from gateway._backend import Backend, CallMetadata
from gateway._body_depth import DepthCheckedRoute
from gateway._catch_all import CatchAllMiddleware
from gateway._chat_schema import ChatCompletionRequest
from gateway._errors import ErrorBody, GatewayError, store_unavailable
from gateway._generate import Generation
from gateway._metrics import Metrics
from gateway._middleware import CallContext, GatewayMiddleware
from gateway._responses_background import Background
from gateway._responses_schema import ResponsesRequest
from gateway._responses_state import StatefulResponses
from gateway._settings import GatewaySettings
from gateway._store_wiring import make_store, serving_state
from gateway._stored_routes import no_store_routes, stored_routes
from gateway.store import NotFound, StoreUnavailable

log = logging.getLogger("gateway")

# Union branch and tag names pydantic puts in error locations; they mean nothing to a caller.
_LOC_NOISE = {
    "system",
    "developer",
    "user",
    "assistant",
    "tool",
    "message",
    "function_call",
    "function_call_output",
    "reasoning",
    "other",
    "str",
    "int",
    "float",
    "bool",
    "dict",
    "list",
}


def _param(loc: Sequence[int | str]) -> str | None:
    """`("body", "messages", 0, "content")` -> `messages[0].content`, as OpenAI names params."""
    out = ""
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _LOC_NOISE or not part.isidentifier():
            continue
        else:
            out += f".{part}" if out else part
    return out or None


def _validation_error(exc: RequestValidationError) -> GatewayError:
    errors = list(exc.errors())
    first: ErrorDetails = (
        errors[0] if errors else ErrorDetails(type="", loc=(), msg="invalid request", input=None)
    )
    if first["type"] == "json_invalid":
        return GatewayError(
            400,
            "We could not parse the JSON body of your request: " + str(first.get("ctx", {}).get("error", "")),
            code="invalid_json",
        )
    param = _param(first["loc"])
    if param is None and first["type"] in ("model_attributes_type", "dict_type"):
        return GatewayError(
            400, "The request body must be a JSON object (send Content-Type: application/json)."
        )
    if first["type"] == "missing":
        message = f"Missing required parameter: '{param}'." if param else "The request body is missing."
    elif param is None:
        message = f"Invalid request body: {first['msg']}"
    else:
        message = f"Invalid value for '{param}': {first['msg']}"
    if len(errors) > 1:
        message += f" ({len(errors) - 1} more error{'s' if len(errors) > 2 else ''})"
    return GatewayError(
        400, message, param=param, code="invalid_value" if first["type"] != "missing" else None
    )


_ERRORS: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "Invalid or unsupported request"),
        (401, "Missing or wrong API key"),
        (404, "Unknown model"),
        (413, "Request body too large"),
        (429, "Service at capacity; see Retry-After"),
        (500, "Internal error"),
        (503, "No replica can serve now; see Retry-After"),
        (504, "The request timed out"),
    )
}
_GENERATION_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "description": "The answer, or with `stream: true` an SSE stream",
        "content": {"text/event-stream": {}},
    },
    **_ERRORS,
}


def _openapi_without_422(app: FastAPI) -> dict[str, Any]:
    """FastAPI documents its 422 validation shape; this gateway answers 400 with OpenAI's body instead."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                operation.get("responses", {}).pop("422", None)
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        app.openapi_schema = schema
    return app.openapi_schema


def _error_response(err: GatewayError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status, headers=err.headers())


def _model_json(info: ModelInfo, created: int) -> dict[str, object]:
    return {
        "id": info.model_id,
        "object": "model",
        "created": created,
        "owned_by": "openai",
        "max_model_len": info.max_context_length,
    }


def create_app(settings: GatewaySettings | None = None, *, backend: Backend | None = None) -> FastAPI:
    """Build the app; the backend channel is created lazily per app so tests can build many."""
    settings = settings or GatewaySettings()
    metrics = Metrics()
    keys = ApiKeys(settings.all_api_keys())
    started = int(time.time())
    running: dict[str, Generation] = {}  # filled by the lifespan: channels bind to the serving loop
    state: dict[str, StatefulResponses] = {}
    store = make_store(settings)

    def make_backend() -> Backend:
        return backend or Backend(
            settings.backends,
            api_key=settings.backend_key(),
            timeout=settings.request_timeout,
            model_info_ttl=settings.model_info_ttl,
            health_check=settings.backend_health_check,
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        backend = make_backend()
        running["generation"] = Generation(
            backend,
            metrics,
            keepalive=settings.sse_keepalive,
            commit_timeout=settings.stream_commit_timeout,
        )
        log.info(
            "gateway up; backend target %s; api keys %s",
            backend.target,
            "on" if keys.enabled else "off",
        )
        try:
            async with serving_state(settings, store, running["generation"]) as state["responses"]:
                yield
        finally:
            await backend.close(grace=1.0)

    app = FastAPI(
        title="gpt-oss OpenAI-compatible gateway",
        version="0.1.0",
        lifespan=lifespan,
        # A body without Content-Type is still read as JSON (curl users forget the header).
        strict_content_type=False,
        # The API docs map the whole surface: off unless asked for (then behind the keys, see middleware).
        docs_url="/docs" if settings.docs else None,
        redoc_url="/redoc" if settings.docs else None,
        openapi_url="/openapi.json" if settings.docs else None,
        description="OpenAI REST API (chat completions, responses, models) over the gptoss.v1 gRPC service.",
    )
    # Inside the gateway middleware: an unexpected error's 500 still carries x-request-id.
    app.add_middleware(CatchAllMiddleware)
    app.add_middleware(
        GatewayMiddleware, keys=keys, metrics=metrics, max_body_bytes=settings.max_request_bytes
    )
    app.openapi = lambda: _openapi_without_422(app)  # type: ignore[method-assign]
    app.router.route_class = DepthCheckedRoute  # before the routes: their bodies are depth-checked

    @app.exception_handler(GatewayError)
    async def _gateway_error(_: Request, exc: GatewayError) -> JSONResponse:
        return _error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error_response(_validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        err_type = "invalid_request_error" if exc.status_code < 500 else "server_error"
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        return _error_response(GatewayError(exc.status_code, str(exc.detail), type=err_type, code=code))

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return _error_response(GatewayError(404, str(exc), code="not_found"))

    @app.exception_handler(StoreUnavailable)
    async def _store_down(_: Request, exc: StoreUnavailable) -> JSONResponse:
        return _error_response(store_unavailable(str(exc)))

    @app.exception_handler(GptossError)
    async def _service_error(_: Request, exc: GptossError) -> JSONResponse:
        return _error_response(running["generation"].http_error(exc))

    async def model_info(request: Request) -> ModelInfo:
        call: CallContext = request.state.call
        backend = running["generation"].backend
        await backend.require_started()
        return await backend.model_info(CallMetadata.of(call.request_id, call.metadata()))

    @app.post("/v1/chat/completions", tags=["openai"], response_model=None, responses=_GENERATION_RESPONSES)
    async def chat_completions(request: Request, body: ChatCompletionRequest) -> Response:
        """Chat completions, whole or streamed (SSE ending with `data: [DONE]`)."""
        return await running["generation"].chat(request, body)

    @app.post("/v1/responses", tags=["openai"], response_model=None, responses=_GENERATION_RESPONSES)
    async def responses(request: Request, body: ResponsesRequest) -> Response:
        """The Responses API, whole or streamed as typed events; stored unless `store: false`."""
        return await state["responses"].create(request, body)

    def background() -> Background:
        runner = state["responses"].background
        assert runner is not None
        return runner

    app.include_router(stored_routes(store, background) if store is not None else no_store_routes())

    @app.get("/v1/models", tags=["openai"], responses=_ERRORS)
    async def list_models(request: Request) -> dict[str, object]:
        return {"object": "list", "data": [_model_json(await model_info(request), started)]}

    @app.get("/v1/models/{model_id:path}", tags=["openai"], responses=_ERRORS)
    async def get_model(request: Request, model_id: str) -> dict[str, object]:
        info = await model_info(request)
        if model_id != info.model_id:
            raise GatewayError(
                404, f"The model '{model_id}' does not exist.", param="model", code="model_not_found"
            )
        return _model_json(info, started)

    completions.add_routes(app, lambda: running["generation"], _GENERATION_RESPONSES)

    @app.get("/health", tags=["ops"])
    async def health() -> dict[str, str]:
        """Liveness of the gateway process itself (not of the backends: see /ready)."""
        return {"status": "ok"}

    @app.get("/ready", tags=["ops"], response_model=None, responses={503: {"description": "Not ready"}})
    async def ready() -> JSONResponse:
        """Ready when a backend reports the inference service SERVING."""
        if await running["generation"].backend.ready():
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "not ready"}, status_code=503)

    @app.get("/metrics", tags=["ops"], response_model=None, response_class=PlainTextResponse)
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    return app
