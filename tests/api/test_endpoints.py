"""The adapters of the request pipeline (api/pipeline.py): registered once each, with the house's error shape."""

import orjson

from api.endpoints import ENDPOINTS, ENDPOINTS_BY_PATH
from api.errors import GatewayError
from api.pipeline import Endpoint
from usage.models import EndpointName


def test_every_adapter_has_a_logged_name_and_its_own_path():
    assert {endpoint.name for endpoint in ENDPOINTS} <= set(EndpointName.values)
    assert len({endpoint.name for endpoint in ENDPOINTS}) == len(ENDPOINTS)
    assert all(ENDPOINTS_BY_PATH[endpoint.path] is endpoint for endpoint in ENDPOINTS)
    assert {"/v1/chat/completions", "/v1/embeddings"} <= set(ENDPOINTS_BY_PATH)


def test_every_adapter_implements_the_calls():
    for endpoint in ENDPOINTS:
        for method in ("parse", "reservation", "relay", "via_litellm"):
            assert getattr(type(endpoint), method) is not getattr(Endpoint, method), (endpoint.name, method)


def test_the_default_error_shape_is_openais():
    error = GatewayError(429, "slow down", type="rate_limit_exceeded", code="rate_limit_exceeded")
    response = Endpoint().error_response(GatewayError(400, "bad", param="input", headers={"Retry-After": "1"}))
    assert orjson.loads(response.content) == {
        "error": {"message": "bad", "type": "invalid_request_error", "param": "input", "code": None}
    }
    assert response.status_code == 400 and response["Retry-After"] == "1"
    event = Endpoint().stream_error_event(error)
    assert event.startswith(b"data: ") and event.endswith(b"\n\n")
    assert orjson.loads(event[6:])["error"]["code"] == "rate_limit_exceeded"
