"""Request bodies and query parameters: Go-strict types, the field named in every 400, unknown fields
kept exactly as sent."""
from __future__ import annotations

import json

import pytest

from manager.api.jsonio import decode, encode, json_object, parse_filters
from manager.api.models import (BuildQuery, CreateBody, ExecCreateBody, NetworkConnectBody, NetworkCreateBody,
                                UpdateBody, VolumeCreateBody, validate)
from manager.errors import ApiError


def problem(model, data) -> str:
    with pytest.raises(ApiError) as err:
        validate(model, data, "invalid request body")
    assert err.value.status == 400
    return err.value.message.removeprefix("invalid request body: ")


@pytest.mark.parametrize("body, message", [
    ({"Env": "A=1"}, 'Env: expected an array, got "A=1"'),
    ({"Env": ["A=1", 2]}, "Env[1]: expected a string, got 2"),
    ({"Cmd": 5}, "Cmd: expected a string or an array of strings, got 5"),
    ({"Cmd": ["sh", None]}, 'Cmd: expected a string or an array of strings, got ["sh", null]'),
    ({"Labels": ["a"]}, 'Labels: expected an object, got ["a"]'),
    ({"Labels": {"a": 1}}, "Labels.a: expected a string, got 1"),
    ({"Image": 5}, "Image: expected a string, got 5"),
    ({"Tty": "yes"}, 'Tty: expected true or false, got "yes"'),
    ({"Tty": 1}, "Tty: expected true or false, got 1"),
    ({"HostConfig": []}, "HostConfig: expected an object, got []"),
    ({"HostConfig": {"Memory": -5}}, "HostConfig.Memory: must be at least 0, got -5"),
    ({"HostConfig": {"Memory": 1.5}}, "HostConfig.Memory: expected an integer, got 1.5"),
    ({"HostConfig": {"Memory": "64m"}}, 'HostConfig.Memory: expected an integer, got "64m"'),
    ({"HostConfig": {"Memory": 2 ** 63}}, "HostConfig.Memory: must be at most 9223372036854775807, got 9223372036854775808"),
    ({"HostConfig": {"NanoCpus": -1}}, "HostConfig.NanoCpus: must be at least 0, got -1"),
    ({"HostConfig": {"MemorySwap": -2}}, "HostConfig.MemorySwap: must be at least -1, got -2"),
    ({"HostConfig": {"BlkioWeight": 70000}}, "HostConfig.BlkioWeight: must be at most 65535, got 70000"),
    ({"CpuShares": -1}, "CpuShares: must be at least 0, got -1"),
    ({"HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": "abc"}]}}},
     'HostConfig.PortBindings.80/tcp[0].HostPort: invalid port specification: "abc"'),
    ({"HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": "70000"}]}}},
     'HostConfig.PortBindings.80/tcp[0].HostPort: invalid port specification: "70000"'),
    ({"HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": "90-80"}]}}},
     'HostConfig.PortBindings.80/tcp[0].HostPort: invalid port specification: "90-80"'),
    ({"HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": 80}]}}},
     "HostConfig.PortBindings.80/tcp[0].HostPort: expected a string, got 80"),
    ({"HostConfig": {"PortBindings": {"http": []}}}, 'HostConfig.PortBindings.http: invalid port specification: "http"'),
    ({"HostConfig": {"PortBindings": {"80/TCP!": []}}},
     'HostConfig.PortBindings.80/TCP!: invalid port specification: "80/TCP!"'),
    ({"HostConfig": {"PortBindings": {"80/tcp": {"HostPort": "80"}}}},
     'HostConfig.PortBindings.80/tcp: expected an array, got {"HostPort": "80"}'),
    ({"ExposedPorts": ["80/tcp"]}, 'ExposedPorts: expected an object, got ["80/tcp"]'),
    ({"HostConfig": {"RestartPolicy": {"MaximumRetryCount": "3"}}},
     'HostConfig.RestartPolicy.MaximumRetryCount: expected an integer, got "3"'),
    ({"NetworkingConfig": {"EndpointsConfig": {"net": {"Aliases": "web"}}}},
     'NetworkingConfig.EndpointsConfig.net.Aliases: expected an array, got "web"'),
    ({"Env": 1, "Cmd": 2}, "Env: expected an array, got 1 (and 1 more problem)"),
])
def test_a_wrong_create_body_names_the_field(body, message):
    assert problem(CreateBody, body) == message


def test_a_long_value_is_cut_in_the_message():
    message = problem(CreateBody, {"Image": ["x" * 100]})
    assert message.startswith('Image: expected a string, got ["xxx') and message.endswith("...")
    assert len(message) < 100


def test_unknown_fields_and_nulls_reach_the_engine_as_sent():
    body = {"Image": "busybox", "Future": {"Nested": [1, 2.5, None]}, "Labels": None, "Cmd": "echo hi",
            "HostConfig": {"Memory": 67108864, "NewKnob": "x", "PortBindings": {"80": [{"HostPort": ""}]}},
            "ExposedPorts": {"80/tcp": {}, "53/udp": None, "8000-8010/tcp": {}}}
    sent = json.loads(json.dumps(body))
    model = validate(CreateBody, sent, "invalid request body")
    assert model.raw is sent and model.raw == body
    assert model.HostConfig.Memory == 67108864 and model.Image == "busybox"


@pytest.mark.parametrize("model, body, message", [
    (UpdateBody, {"Memory": "1g"}, 'Memory: expected an integer, got "1g"'),
    (UpdateBody, {"RestartPolicy": []}, "RestartPolicy: expected an object, got []"),
    (ExecCreateBody, {"Cmd": [1]}, "Cmd: expected a string or an array of strings, got [1]"),
    (ExecCreateBody, {"AttachStdin": "true"}, 'AttachStdin: expected true or false, got "true"'),
    (NetworkCreateBody, {"Name": 5}, "Name: expected a string, got 5"),
    (NetworkCreateBody, {"Name": "n", "IPAM": {"Config": [{"Subnet": 10}]}}, "IPAM.Config[0].Subnet: expected a string, got 10"),
    (NetworkCreateBody, {"Name": "n", "Options": {"mtu": 1500}}, "Options.mtu: expected a string, got 1500"),
    (NetworkConnectBody, {}, "Container: is required"),
    (NetworkConnectBody, {"Container": ["c"]}, 'Container: expected a string, got ["c"]'),
    (VolumeCreateBody, {"DriverOpts": {"size": 1}}, "DriverOpts.size: expected a string, got 1"),
])
def test_other_bodies_name_the_field(model, body, message):
    assert problem(model, body) == message


@pytest.mark.parametrize("query, message", [
    ({"buildargs": "[1]"}, "buildargs: expected an object, got [1]"),
    ({"buildargs": "{"}, 'buildargs: invalid JSON, got "{"'),
    ({"buildargs": '{"A": 1}'}, "buildargs.A: expected a string, got 1"),
    ({"memory": "lots"}, 'memory: expected an integer, got "lots"'),
    ({"shmsize": "-1"}, 'shmsize: must be at least 0, got "-1"'),
    ({"labels": '{"a": ["b"]}'}, 'labels.a: expected a string, got ["b"]'),
])
def test_build_parameters(query, message):
    assert problem(BuildQuery, query) == message


def test_build_parameters_that_are_right():
    query = validate(BuildQuery, {"buildargs": '{"A": "1", "B": null}', "memory": "67108864", "t": "x"}, "")
    assert query.buildargs == {"A": "1", "B": None} and query.memory == 67108864


@pytest.mark.parametrize("raw, wanted", [
    ('{"label":["a=b"]}', {"label": ["a=b"]}),
    ('{"label":{"a=b":true},"name":{"web":true}}', {"label": ["a=b"], "name": ["web"]}),
    ("", {}),
])
def test_filters_in_both_shapes(raw, wanted):
    assert parse_filters(raw) == wanted


@pytest.mark.parametrize("raw, message", [
    ('{"label":5}', "invalid filter '{\"label\":5}': label: expected an array of strings or an object of booleans, got 5"),
    ('[1]', "invalid filter '[1]': "),
    ('{"label":[1]}', "invalid filter '{\"label\":[1]}': label"),
    ("{", "invalid filter '{': "),
])
def test_malformed_filters_are_a_400(raw, message):
    with pytest.raises(ApiError) as err:
        parse_filters(raw)
    assert err.value.status == 400 and err.value.message.startswith(message)


@pytest.mark.parametrize("raw", ['{"Memory": NaN}', '{"Memory": Infinity}', "[" * 100000 + "]" * 100000])
def test_json_go_would_refuse_is_a_400(raw):
    with pytest.raises(ApiError) as err:
        decode(raw, "invalid JSON in request body")
    assert err.value.status == 400 and err.value.message.startswith("invalid JSON in request body: ")


def test_json_is_written_compact_and_in_utf8_as_dockerd_writes_it():
    assert encode({"Name": "café", "Labels": {}, "Ids": [1, None, True], 7: 1.5}) == \
        '{"Name":"café","Labels":{},"Ids":[1,null,true],"7":1.5}'.encode()


@pytest.mark.parametrize("raw, sent", [
    ('{"Name": "n", "X-Extra": 1180591620717411303424, "Note": "é"}',
     b'{"Name":"n","X-Extra":1180591620717411303424,"Note":"\\u00e9"}'),
    ('{"Name": "x\\ud800y"}', b'{"Name":"x\\ud800y"}'),  # a lone surrogate: JSON can carry it escaped
])
def test_what_a_client_sent_that_orjson_refuses_goes_on_exactly(raw, sent):
    assert encode(decode(raw, "invalid JSON")) == sent


def test_a_body_must_be_an_object():
    with pytest.raises(ApiError, match="expected a JSON object"):
        json_object("[1]", "invalid JSON in request body")
