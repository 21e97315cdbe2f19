"""The chat stream fold: typed service events -> `chat.completion.chunk` objects, one call per event."""

from __future__ import annotations

from gptoss import ContentDelta, Done, Event, ReasoningDelta, ToolCallDelta, ToolCallDone, Usage
from gptoss.result import total_usage, unsent_arguments

from gateway._finish import check_finish, finish_reason
from gateway._logprobs import chat_logprobs
from gateway._translate_chat import Json, usage


class ChatStream:
    """Folds events into chunks; remembers per tool call the argument text already sent."""

    def __init__(
        self, *, completion_id: str, created: int, model: str, include_usage: bool, n: int = 1
    ) -> None:
        self._base: Json = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
        }
        self._include_usage = include_usage
        self._n = n
        self._sent: dict[tuple[int, int], str] = {}  # (choice, tool call index) -> arguments sent
        self._usages: list[Usage] = []  # of the choices done so far
        self._choice = 0  # of the event being folded

    def _chunk(self, delta: Json, finish: str | None = None, logprobs: Json | None = None) -> Json:
        choice = {"index": self._choice, "delta": delta, "finish_reason": finish, "logprobs": logprobs}
        chunk: Json = {**self._base, "choices": [choice]}
        if self._include_usage:
            chunk["usage"] = None
        return chunk

    def start(self) -> list[Json]:
        """The first chunk of each choice announces the role, as OpenAI's does."""
        chunks = []
        for index in range(self._n):
            self._choice = index
            chunks.append(self._chunk({"role": "assistant", "content": ""}))
        return chunks

    def on_event(self, event: Event) -> list[Json]:
        self._choice = event.choice
        if isinstance(event, ReasoningDelta):
            return (
                [self._chunk({"reasoning_content": event.text, "reasoning": event.text})]
                if event.text
                else []
            )
        if isinstance(event, ContentDelta):
            if event.logprobs:
                return [self._chunk({"content": event.text}, logprobs=chat_logprobs(event.logprobs))]
            return [self._chunk({"content": event.text})] if event.text else []
        if isinstance(event, ToolCallDelta):
            return self._tool_call(event.index, event.id, event.name, event.arguments_delta)
        if isinstance(event, ToolCallDone):
            sent = self._sent.get((event.choice, event.index))
            rest = unsent_arguments(sent or "", event)
            if sent is None or rest:
                return self._tool_call(event.index, event.id, event.name, rest)
            return []
        if isinstance(event, Done):
            return self._finish(event)
        return []  # token ids: not part of a chat answer

    def _tool_call(self, index: int, call_id: str, name: str, arguments: str) -> list[Json]:
        entry: Json = {"index": index}
        key = (self._choice, index)
        if key not in self._sent:
            self._sent[key] = ""
            entry.update(
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
            )
        elif arguments:
            entry["function"] = {"arguments": arguments}
        else:
            return []
        self._sent[key] += arguments
        return [self._chunk({"tool_calls": [entry]})]

    def _finish(self, done: Done) -> list[Json]:
        check_finish(done)
        calls = any(choice == self._choice for choice, _ in self._sent)
        chunks = [self._chunk({}, finish_reason(done, calls))]
        self._usages.append(done.usage)
        if self._include_usage and len(self._usages) == self._n:
            chunks.append({**self._base, "choices": [], "usage": usage(total_usage(self._usages))})
        return chunks
