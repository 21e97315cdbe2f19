"""Hypothesis-generated JSON bodies (tools, tool_choice, response formats, nested JSON schemas) against
the gateway, all on ONE keep-alive connection: never a 5xx, always an OpenAI error body, and the next
request on the same connection still works. Plus that same check after every error class.

Backend: the real gRPC service on a scripted engine (hundreds of requests in seconds). Bounded:
fixed example counts, no deadline-sensitive assertions.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import wait_until
from tests.reliability.hardened_gateway import HardenedGateway, RawConnection, Reply
from tests.reliability.helpers import Tally
from tests.support.scripted_engine import streaming_text
from tests.support.server_thread import ServerThread

ServerFactory = Callable[..., ServerThread]
KEY = "sk-fuzz"
AUTH = {"authorization": f"Bearer {KEY}"}
MODEL = "gpt-oss-tiny"

texts = st.text(max_size=20)
names = st.one_of(st.from_regex(r"[a-z_]{1,12}", fullmatch=True), texts)
junk = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**9), 10**9) | st.floats(allow_nan=False) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=10,
)
schemas = st.recursive(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["string", "integer", "number", "boolean", "null", "object", "array"])},
        optional={"description": texts, "enum": st.lists(junk, max_size=3)},
    ),
    lambda inner: (
        st.fixed_dictionaries(
            {"type": st.just("object"), "properties": st.dictionaries(names, inner, max_size=3)},
            optional={"required": st.lists(names, max_size=3), "additionalProperties": st.booleans()},
        )
        | st.fixed_dictionaries({"type": st.just("array"), "items": inner})
        | st.fixed_dictionaries({"anyOf": st.lists(inner, max_size=3)})
        | st.fixed_dictionaries({"$defs": st.dictionaries(names, inner, max_size=2), "$ref": texts})
    ),
    max_leaves=12,
)


def deep_schema(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


any_schema = st.one_of(schemas, st.integers(1, 400).map(deep_schema), junk)
chat_tools = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {
                "type": st.one_of(st.just("function"), texts),
                "function": st.fixed_dictionaries(
                    {"name": names},
                    optional={"description": texts, "parameters": any_schema, "strict": st.booleans()},
                ),
            }
        ),
        junk,
    ),
    max_size=3,
)
formats = st.one_of(
    st.sampled_from([{"type": "text"}, {"type": "json_object"}]),
    st.fixed_dictionaries(
        {
            "type": st.just("json_schema"),
            "json_schema": st.fixed_dictionaries(
                {"name": names}, optional={"schema": any_schema, "strict": st.booleans()}
            ),
        }
    ),
    junk,
)
tool_choices = st.one_of(
    st.sampled_from(["auto", "none", "required", "bogus"]),
    st.fixed_dictionaries({"type": st.just("function"), "function": st.fixed_dictionaries({"name": names})}),
    junk,
)
user_message = st.fixed_dictionaries({"role": st.just("user"), "content": texts})
chat_messages = st.lists(
    st.one_of(
        user_message,
        st.fixed_dictionaries(
            {"role": st.sampled_from(["system", "developer", "user", "assistant", "tool", "x"])},
            optional={"content": st.one_of(texts, junk), "tool_call_id": texts, "name": names},
        ),
        junk,
    ),
    min_size=0,
    max_size=3,
)
chat_bodies = st.fixed_dictionaries(
    {"model": st.one_of(st.just(MODEL), st.just(MODEL), texts), "messages": chat_messages},
    optional={
        "tools": chat_tools,
        "tool_choice": tool_choices,
        "response_format": formats,
        "max_tokens": st.integers(-5, 50),
        "temperature": st.one_of(st.floats(-1, 3), junk),
        "parallel_tool_calls": st.booleans(),
        "stream": st.booleans(),
    },
)
responses_bodies = st.fixed_dictionaries(
    {"model": st.one_of(st.just(MODEL), texts), "input": st.one_of(texts, st.lists(junk, max_size=3))},
    optional={
        "tools": st.lists(
            st.fixed_dictionaries(
                {"type": st.one_of(st.just("function"), texts), "name": names},
                optional={"parameters": any_schema, "strict": st.booleans()},
            ),
            max_size=3,
        ),
        "tool_choice": tool_choices,
        "text": st.fixed_dictionaries({"format": formats}),
        "max_output_tokens": st.integers(-5, 50),
        "stream": st.booleans(),
    },
)


@pytest.fixture(scope="module")
def fuzz_backend() -> Iterator[ServerThread]:
    from service.config import Settings
    from tests.support.scripted_engine import ScriptedEngine

    engine = ScriptedEngine(streaming_text(3))

    async def factory(_settings: Settings) -> ScriptedEngine:
        return engine

    server = ServerThread(Settings(profile="cpu-tiny", port=0, metrics_port=None), factory).start(
        ready_timeout=10
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fuzz_gateway(fuzz_backend: ServerThread) -> Iterator[HardenedGateway]:
    with HardenedGateway([fuzz_backend.target], api_keys=[KEY]) as gw:
        yield gw


class Session:
    """One kept-alive connection; reopened (and counted) only when the server said `connection: close`."""

    def __init__(self, gateway: HardenedGateway, tally: Tally) -> None:
        self.gateway = gateway
        self.tally = tally
        self.conn = gateway.connect(timeout=30)

    def post(self, path: str, body: object) -> Reply:
        reply = self.conn.request("POST", path, json.dumps(body).encode(), AUTH)
        self.tally.add(str(reply.status))
        assert reply.status < 500, (reply.status, reply.body[:300], body)
        if reply.status >= 400:
            error = reply.json()["error"]
            assert isinstance(error["message"], str) and error["message"], reply.body
        self.follow_up(reply)
        return reply

    def follow_up(self, reply: Reply) -> None:
        """The next request on the same connection must work."""
        if reply.closes:
            assert self.conn.closed_within(5)[0], "said close but kept the socket"
            self.tally.add("closed_by_server")
            self.conn = self.gateway.connect(timeout=30)
        after = self.conn.request("GET", "/v1/models", headers=AUTH)
        assert after.status == 200, (after.status, after.body[:200])


@pytest.fixture(scope="module")
def chat_session(fuzz_gateway: HardenedGateway) -> Iterator[Session]:
    tally = Tally("gateway fuzz chat bodies (one connection)")
    yield Session(fuzz_gateway, tally)
    tally.report()


@pytest.fixture(scope="module")
def responses_session(fuzz_gateway: HardenedGateway) -> Iterator[Session]:
    tally = Tally("gateway fuzz responses bodies (one connection)")
    yield Session(fuzz_gateway, tally)
    tally.report()


@given(body=chat_bodies)
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_fuzzed_chat_bodies_never_5xx_and_keep_the_connection(chat_session: Session, body: object) -> None:
    chat_session.post("/v1/chat/completions", body)


@given(body=responses_bodies)
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
def test_fuzzed_responses_bodies_never_5xx_and_keep_the_connection(
    responses_session: Session, body: object
) -> None:
    responses_session.post("/v1/responses", body)


def _chunked(parts: list[bytes]) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


def test_the_next_request_on_the_connection_works_after_every_error_class(
    scripted_server: ServerFactory,
) -> None:
    backend = scripted_server(streaming_text(400), step_delay=0.02, max_concurrent_requests=1)
    tally = Tally("gateway next request after each error class")
    ok_chat = {"model": backend.settings.model_id, "messages": [{"role": "user", "content": "hi"}]}
    json_head = {"content-type": "application/json", **AUTH}
    with HardenedGateway([backend.target], api_keys=[KEY], max_request_bytes=1024) as gw:
        cases: list[tuple[str, int, Callable[[RawConnection], Reply]]] = [
            ("400 missing param", 400, lambda c: c.request("POST", "/v1/chat/completions", b"{}", AUTH)),
            ("400 invalid json", 400, lambda c: c.request("POST", "/v1/chat/completions", b"{no", AUTH)),
            ("400 nested 1000 deep", 400, lambda c: c.request("POST", "/v1/responses", b"[" * 1000, AUTH)),
            (
                "400 invalid value (FastAPI's 422)",
                400,
                lambda c: c.request(
                    "POST",
                    "/v1/chat/completions",
                    json.dumps({**ok_chat, "temperature": "hot"}).encode(),
                    AUTH,
                ),
            ),
            ("401", 401, lambda c: c.request("GET", "/v1/models", headers={"authorization": "Bearer no"})),
            ("404 path", 404, lambda c: c.request("GET", "/nope", headers=AUTH)),
            ("404 model", 404, lambda c: c.request("GET", "/v1/models/nope", headers=AUTH)),
            ("405", 405, lambda c: c.request("GET", "/v1/chat/completions", headers=AUTH)),
            ("413 length", 413, lambda c: c.request("POST", "/v1/responses", b" " * 2048, AUTH)),
            (
                "413 chunked",
                413,
                lambda c: (
                    c.send(
                        b"POST /v1/responses HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n"
                        + b"".join(f"{k}: {v}\r\n".encode() for k, v in json_head.items())
                        + b"\r\n"
                        + _chunked([b" " * 700, b" " * 700])
                    ),
                    c.read_reply(),
                )[1],
            ),
        ]
        conn = gw.connect()
        for name, status, call in cases:
            reply = call(conn)
            assert reply.status == status, (name, reply.status, reply.body[:200])
            if reply.closes:
                assert conn.closed_within(5)[0], name
                tally.add("closed_by_server")
                conn = gw.connect()
            assert conn.request("GET", "/v1/models", headers=AUTH).status == 200, name
            tally.add(name)
        # 429: the only slot held by a stream on another connection.
        holder = gw.connect()
        body = json.dumps({**ok_chat, "stream": True}).encode()
        holder.send(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            + f"authorization: Bearer {KEY}\r\ncontent-length: {len(body)}\r\n\r\n".encode()
            + body
        )
        assert wait_until(lambda: backend.service is not None and backend.service.state.active_streams == 1)
        reply = conn.request("POST", "/v1/chat/completions", json.dumps(ok_chat).encode(), AUTH)
        assert reply.status == 429 and "retry-after" in reply.headers, reply.body
        assert conn.request("GET", "/v1/models", headers=AUTH).status == 200
        tally.add("429")
        holder.close()
    # 503: no replica serving.
    with HardenedGateway(["127.0.0.1:1"]) as dead:
        conn = dead.connect()
        started = time.monotonic()
        reply = conn.request("POST", "/v1/chat/completions", json.dumps(ok_chat).encode())
        assert reply.status == 503 and time.monotonic() - started < 15, reply.body
        assert conn.request("GET", "/health").status == 200
        tally.add("503")
    tally.report()
    assert threading.active_count() < 200  # no thread leak from the gateways started above
