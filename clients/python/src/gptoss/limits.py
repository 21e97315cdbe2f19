"""Request limits of the gptoss.v1 service that clients should know: one definition each.

The service enforces these (INVALID_ARGUMENT naming the param); the gateway and clients import
them to check early or to document, never to re-define them.
"""

from __future__ import annotations

from typing import Final

# At most this many stop strings per request.
MAX_STOP_STRINGS: Final = 16
# A function (tool) name: letters, digits, `_`, `-`, `.`; 1 to 64 characters.
TOOL_NAME_PATTERN: Final = r"^[A-Za-z0-9_\-.]{1,64}$"
# Default cap on tools per request (the service setting `max_tools` may lower or raise it).
MAX_TOOLS: Final = 128
# Default cap on messages per request (the service setting `max_messages`).
MAX_MESSAGES: Final = 1024
# Default cap on the serialized size of all tools of one request, in bytes (`max_tools_bytes`).
MAX_TOOLS_BYTES: Final = 1 << 20
# Deepest nesting of objects and arrays in a tool's JSON schema (the top-level object is 1).
MAX_SCHEMA_DEPTH: Final = 24
# A request id (GenerateRequest.request_id, `x-request-id`): at most this many characters.
MAX_REQUEST_ID_LENGTH: Final = 128
# A caller name (`x-gptoss-caller`): at most this many characters.
MAX_CALLER_LENGTH: Final = 128
# Request ids and caller names are printable ASCII only (0x20 to 0x7e): no CR/LF, NUL, non-ASCII.
PRINTABLE_ASCII_PATTERN: Final = r"^[\x20-\x7e]*$"
# Default cap on one serialized request, in bytes (`max_request_bytes`).
MAX_REQUEST_BYTES: Final = 4 << 20
# logprobs: at most this many alternatives per token (`top_logprobs`).
MAX_TOP_LOGPROBS: Final = 20
# Choices per request (`n`): 1 to this many; each counts against the concurrency limit.
MAX_CHOICES: Final = 128
# logit_bias: each bias within -LOGIT_BIAS_LIMIT..LOGIT_BIAS_LIMIT, at most MAX_LOGIT_BIAS_TOKENS ids.
LOGIT_BIAS_LIMIT: Final = 100.0
MAX_LOGIT_BIAS_TOKENS: Final = 1024
