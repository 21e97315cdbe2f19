"""Stop strings on a token-id stream (`prompt_token_ids` requests): matched on the raw bytes.

Raw requests stream token ids, not parsed content, so the text matcher cannot run on them. Here
each token's bytes are matched against the UTF-8 stop strings; tokens are held back while their
bytes might start a stop string. On a match, the tokens wholly before it are released, the
token where it begins and everything after it are not, and the stream ends (finish STOP).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from service.harmony.tokens import token_bytes


class TokenStopMatcher:
    def __init__(self, stops: Sequence[str], to_bytes: Callable[[int], bytes] = token_bytes) -> None:
        self._stops = [s.encode() for s in stops if s]
        self._to_bytes = to_bytes
        self._held: list[tuple[int, bytes]] = []
        self.matched = False

    def feed(self, token_ids: Sequence[int]) -> list[int]:
        """The tokens that are safe to emit; after a match, nothing more."""
        if self.matched:
            return []
        if not self._stops:
            return list(token_ids)
        self._held.extend((token, self._to_bytes(token)) for token in token_ids)
        buffer = b"".join(data for _, data in self._held)
        cut = min((i for i in (buffer.find(s) for s in self._stops) if i >= 0), default=-1)
        if cut >= 0:
            self.matched = True
            released = self._release_before(cut)
            self._held = []
            return released
        return self._release_before(len(buffer) - self._longest_partial_suffix(buffer))

    def flush(self) -> list[int]:
        """The generation ended without a match: release the held tokens."""
        held, self._held = self._held, []
        return [] if self.matched else [token for token, _ in held]

    def _release_before(self, end: int) -> list[int]:
        """Release the held tokens whose bytes all lie before offset `end` of the held buffer."""
        released, offset = [], 0
        while self._held and offset + len(self._held[0][1]) <= end:
            token, data = self._held.pop(0)
            released.append(token)
            offset += len(data)
        return released

    def _longest_partial_suffix(self, buffer: bytes) -> int:
        best = 0
        for stop in self._stops:
            for length in range(min(len(stop) - 1, len(buffer)), best, -1):
                if buffer.endswith(stop[:length]):
                    best = length
                    break
        return best
