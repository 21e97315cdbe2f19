"""The structured-output fields are in the contract but not served yet: refused, never ignored."""

from __future__ import annotations

import grpc
import pytest
from gptoss.v1 import inference_pb2 as pb

from service.errors import ServiceError
from service.validation import refuse_structured_output

USER = pb.Message(role=pb.ROLE_USER, content="hi")


@pytest.mark.parametrize(
    ("request_", "param"),
    [
        (
            pb.GenerateRequest(
                messages=[USER], response_format=pb.ResponseFormat(json_object=pb.JsonObjectFormat())
            ),
            "response_format",
        ),
        (pb.GenerateRequest(messages=[USER], max_reasoning_tokens=0), "max_reasoning_tokens"),
        (
            pb.GenerateRequest(messages=[USER], tools=[pb.Tool(name="a"), pb.Tool(name="b", strict=True)]),
            "tools[1].strict",
        ),
        (
            pb.CountTokensRequest(messages=[USER], response_format=pb.ResponseFormat(regex="[0-9]+")),
            "response_format",
        ),
    ],
)
def test_structured_fields_are_refused_with_their_param(
    request_: pb.GenerateRequest | pb.CountTokensRequest, param: str
) -> None:
    with pytest.raises(ServiceError) as info:
        refuse_structured_output(request_)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.param == param


def test_plain_requests_pass() -> None:
    refuse_structured_output(pb.GenerateRequest(messages=[USER], tools=[pb.Tool(name="a")]))
