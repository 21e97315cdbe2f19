"""service.stack: one way to read the launcher's settings, for `make run` (flags) and the container (env)."""

from __future__ import annotations

from service.stack import parse_args, resolve, supervisor


def test_flags_win_over_env_and_reach_the_children_as_env() -> None:
    args = parse_args(
        ["--profile", "cpu-tiny", "--host", "0.0.0.0", "--grpc-port", "6000", "--http-port", "6001"]
    )
    config = resolve(args, {"GPTOSS_PORT": "7000", "GPTOSS_GATEWAY_PORT": "7001"})
    assert (config.grpc_port, config.http_port) == (6000, 6001)
    assert config.child_env == {
        "GPTOSS_PROFILE": "cpu-tiny",
        "GPTOSS_HOST": "0.0.0.0",
        "GPTOSS_GATEWAY_HOST": "0.0.0.0",
        "GPTOSS_PORT": "6000",
        "GPTOSS_GATEWAY_PORT": "6001",
        "GPTOSS_GATEWAY_BACKENDS": "127.0.0.1:6000",  # a wildcard bind is reached on loopback
    }
    assert config.gateway_url == "http://127.0.0.1:6001"


def test_env_alone_is_read_as_the_children_read_it_and_left_to_them() -> None:
    env = {"GPTOSS_PORT": "7000", "GPTOSS_GATEWAY_PORT": "7001", "GPTOSS_GATEWAY_BACKENDS": "10.0.0.1:7000"}
    config = resolve(parse_args([]), env)
    assert (config.grpc_target, config.gateway_url) == ("127.0.0.1:7000", "http://127.0.0.1:7001")
    assert config.child_env == {}, "nothing is re-set: the children read their own env (and settings file)"


def test_defaults_match_the_service_and_gateway_defaults() -> None:
    from gateway import GatewaySettings
    from service.config import Settings

    config = resolve(parse_args([]), {})
    gateway = GatewaySettings()
    service = Settings(profile="cpu-tiny")
    assert (config.service_host, config.grpc_port) == (service.host, service.port)
    assert (config.gateway_host, config.http_port) == (gateway.host, gateway.port)
    assert config.child_env == {"GPTOSS_GATEWAY_BACKENDS": gateway.backends[0]}


def test_the_service_stops_first_and_no_gateway_means_one_child() -> None:
    config = resolve(parse_args([]), {})
    assert [c.name for c in supervisor(config).specs] == ["service", "gateway"]
    assert supervisor(config).stop_order == ["service", "gateway"]
    alone = resolve(parse_args(["--no-gateway"]), {})
    assert [c.name for c in supervisor(alone).specs] == ["service"]
