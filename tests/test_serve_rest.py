"""`vidagent serve`'s REST API v2 (templates, serverless endpoints) held to RunPod's published
v2 material, over HTTP: the OpenAPI document's paths, field names, types, bounds, defaults
and examples, and the migration guide's changes from v1 (wrapped lists, nested bodies,
RFC 9457 errors, unknown fields refused by name). Each expected value below is a fact read
there (https://api.runpod.io/v2/openapi.json, docs.runpod.io api-reference-v2/migrate-from-v1),
so a body the cloud would refuse is refused here too, and one it accepts is accepted.
"""

from __future__ import annotations

import httpx
import pytest
import yaml

from test_serve import HANDLERS, Serve

KEY = "rpa_REST_V2_TEST_KEY"
IMAGE = "registry.example.test/team/vidagent-yolo"
PROBLEM = "application/problem+json"

# The createEndpoint example of the OpenAPI document, and what it answers for it.
EXAMPLE_ENDPOINT = {
    "name": "image-generator", "image": "runpod/pytorch:1.0.2-cu1281-torch280-ubuntu2404", "type": "QUEUE",
    "gpu": {"pools": ["ADA_24"], "count": 1}, "workers": {"min": 0, "max": 5, "idleTimeout": 5},
    "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4}, "dataCenterIds": ["US-KS-2"], "timeout": 300000,
}
# Endpoint's required properties, and those of its gpu (EndpointGpuConfig) and requestUrls (QueueBasedRequestUrls).
ENDPOINT_REQUIRED = {"id", "name", "workers", "scaling", "dataCenterIds", "networkVolumes", "timeout", "flashboot",
                     "createdAt"}
GPU_REQUIRED = {"pools", "allowedCudaVersions", "minCudaVersion"}
REQUEST_URLS = {"run", "runSync", "status", "stream", "cancel", "retry", "purgeQueue", "health"}
TEMPLATE_REQUIRED = {"id", "name", "image", "args", "disk", "mounts", "ports", "env", "registry", "serverless",
                     "public", "category", "startSsh", "startJupyter", "allowedCudaVersions"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rest-v2")
    config = folder / "serve.yaml"
    config.write_text(yaml.safe_dump({"worker_quota": 20, "images": {IMAGE: {"handler": str(HANDLERS / "echo.py")}}}))
    serve = Serve(folder, "--config", config, "--api-key", KEY)
    yield serve
    serve.stop()


@pytest.fixture
def api(server):
    with httpx.Client(base_url=server.ready["rest_url"], headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as http:
        yield http


def endpoint_body(name: str, **changes) -> dict:
    body = {**EXAMPLE_ENDPOINT, "name": name, "image": f"{IMAGE}:1", "workers": {"min": 0, "max": 1, "idleTimeout": 5}}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def problem(answer: httpx.Response, status: int) -> dict:
    """An RFC 9457 answer: the media type, and title, status and detail always there."""
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"].startswith(PROBLEM)
    body = answer.json()
    assert isinstance(body["title"], str) and body["status"] == status and isinstance(body["detail"], str)
    return body


def test_the_documented_example_is_accepted_and_answered_in_the_documented_shape(api):
    answer = api.post("/serverless", json=EXAMPLE_ENDPOINT)
    assert answer.status_code == 201, answer.text
    endpoint = answer.json()
    assert ENDPOINT_REQUIRED <= endpoint.keys() and set(endpoint["requestUrls"]) == REQUEST_URLS
    assert GPU_REQUIRED <= endpoint["gpu"].keys()
    # The example answer's values for what the request left out.
    assert endpoint["gpu"]["allowedCudaVersions"] == [] and endpoint["gpu"]["minCudaVersion"] is None
    assert endpoint["flashboot"] == "OFF" and endpoint["registry"] is None and endpoint["args"] == ""
    assert endpoint["networkVolumes"] == [] and endpoint["type"] == "QUEUE"
    assert endpoint["requestUrls"]["run"].endswith(f"/v2/{endpoint['id']}/run")
    assert endpoint["requestUrls"]["status"].endswith(f"/v2/{endpoint['id']}/status/{{job_id}}")

    listed = api.get("/serverless").json()  # v2 wraps lists in an object keyed by the resource
    assert list(listed) == ["endpoints"] and endpoint["id"] in [e["id"] for e in listed["endpoints"]]
    assert api.get(f"/serverless/{endpoint['id']}").json()["name"] == "image-generator"
    assert list(api.get("/templates").json()) == ["templates"]


def test_a_template_gets_v2s_defaults(api):
    answer = api.post("/templates", json={"name": "defaults", "image": "alpine:3"})
    assert answer.status_code == 201, answer.text
    template = answer.json()
    assert TEMPLATE_REQUIRED <= template.keys()
    assert template["serverless"] is False and template["public"] is False and template["category"] == "NVIDIA"
    assert template["startSsh"] is True and template["startJupyter"] is True  # "matching console-created templates"
    assert template["allowedCudaVersions"] == [] and template["registry"] is None


@pytest.mark.parametrize(
    "path, body, errors",
    [
        # v1's names, refused by name
        ("/templates", {"name": "v1", "imageName": "alpine:3", "isServerless": True},
         ["$: missing property 'image'", "$: additional properties 'imageName', 'isServerless' not allowed"]),
        ("/templates", {"name": "v1", "image": "alpine:3", "containerDiskInGb": 20},
         ["$: additional properties 'containerDiskInGb' not allowed"]),
        ("/serverless", {"name": "v1", "templateId": "t", "gpuTypeIds": ["NVIDIA L4"], "workersMax": 3,
                         "type": "QUEUE", "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4}},
         ["$: additional properties 'gpuTypeIds', 'workersMax' not allowed"]),
        ("/serverless", endpoint_body("e", flashboot=True), ["$.flashboot: got boolean, want string"]),
        ("/serverless", endpoint_body("e", flashboot="ON"),
         ["$.flashboot: value must be one of 'OFF', 'FLASHBOOT', 'PRIORITY_FLASHBOOT'"]),
        # nested objects are closed too
        ("/serverless", endpoint_body("e", workers={"minimum": 0}), ["$.workers: additional properties 'minimum' not allowed"]),
        ("/serverless", endpoint_body("e", gpu={"pools": ["ADA_24"], "gpuCount": 1}),
         ["$.gpu: additional properties 'gpuCount' not allowed"]),
        # types and bounds
        ("/serverless", endpoint_body("e", disk="20"), ["$.disk: got string, want integer"]),
        ("/serverless", endpoint_body("e", workers={"max": True}), ["$.workers.max: got boolean, want integer"]),
        ("/serverless", endpoint_body("e", workers={"idleTimeout": 3601}), ["$.workers.idleTimeout: must be <= 3600 but found 3601"]),
        ("/serverless", endpoint_body("e", scaling={"type": "QUEUE_DELAY", "queueDelay": 0.1}),
         ["$.scaling.queueDelay: must be >= 0.5 but found 0.1"]),
        ("/serverless", endpoint_body("e", scaling={"type": "QUEUE_DELAY", "requestCount": 4}),
         ["$.scaling: missing property 'queueDelay'", "$.scaling: additional properties 'requestCount' not allowed"]),
        ("/serverless", endpoint_body("e", gpu={"pools": []}), ["$.gpu.pools: minimum 1 items required, but found 0 items"]),
        ("/serverless", endpoint_body("e", gpu={"pools": ["ADA_24"], "allowedCudaVersions": ["13"]}),
         ["$.gpu.allowedCudaVersions[0]: '13' does not match pattern"]),
        # required
        ("/serverless", endpoint_body("e", type=None), ["$: missing property 'type'"]),
        ("/serverless", endpoint_body("e", image=None), ["$: missing property 'image'"]),
    ],
)
def test_bodies_the_schema_refuses_are_422_naming_each_field(api, path, body, errors):
    found = problem(api.post(path, json=body), 422)["errors"]
    for error in errors:
        assert any(line.startswith(error) for line in found), (error, found)


@pytest.mark.parametrize(
    "changes, detail",
    [
        ({"cpu": [{"id": "cpu5c", "vcpuCount": 4}]}, "exactly one of gpu or cpu"),
        ({"gpu": None}, "exactly one of gpu or cpu"),
        ({"gpu": {"pools": ["AMPERE_12"]}}, "'AMPERE_12' is not a serverless GPU pool"),
        ({"gpu": {"pools": ["ADA_24"], "excludedTypes": ["NVIDIA L40S"]}}, "'NVIDIA L40S' is not a GPU type in the pools"),
        ({"gpu": {"pools": ["ADA_24"], "excludedTypes": ["NVIDIA GeForce RTX 4090"]}}, "leaves no GPU type"),
        ({"gpu": {"pools": ["ADA_24"], "allowedCudaVersions": ["12.8"], "minCudaVersion": "12.4"}}, "mutually exclusive"),
        ({"workers": {"min": 2, "max": 1}}, "must not exceed"),
        ({"workers": {"max": 50}}, "quota of 20"),
        ({"scaling": {"type": "REQUEST_COUNT", "requestCount": 4}, "workers": {"idleTimeout": 5}}, "idleTimeout"),
    ],
)
def test_bodies_that_break_a_rule_are_400(api, changes, detail):
    body = problem(api.post("/serverless", json=endpoint_body("rule", **changes)), 400)
    assert detail in body["detail"], body


def test_ids_keys_methods_and_bad_json_are_problems_too(server, api):
    assert problem(api.get("/serverless/nosuchendpoint"), 404)["title"] == "Not Found"
    assert problem(api.get("/templates/nosuchtemplate"), 404)["title"] == "Not Found"
    assert "template" in problem(api.post("/serverless", json=endpoint_body("t", templateId="nosuch")), 404)["detail"]
    pod = api.post("/templates", json={"name": "a-pod-template", "image": "alpine:3"}).json()
    assert "serverless" in problem(api.post("/serverless", json=endpoint_body("t", templateId=pod["id"])), 422)["detail"]
    assert problem(httpx.get(f"{server.ready['rest_url']}/serverless"), 401)["title"] == "Unauthorized"
    assert problem(api.delete(f"/templates/{pod['id']}"), 405)["status"] == 405
    assert problem(api.post("/templates", content=b"{not json", headers={"Content-Type": "application/json"}), 400)


def test_a_template_is_a_snapshot_copied_into_the_endpoint(api):
    template = api.post("/templates", json={
        "name": "snap", "image": f"{IMAGE}:1", "serverless": True, "env": {"A": "template", "B": "template"},
        "disk": 30, "allowedCudaVersions": ["12.8"]}).json()
    body = endpoint_body("snap", image=None, templateId=template["id"], env={"B": "body"})
    endpoint = api.post("/serverless", json=body).json()
    assert endpoint["image"] == f"{IMAGE}:1" and endpoint["disk"] == 30
    assert endpoint["env"] == {"A": "template", "B": "body"}  # merged per key, the body wins
    assert endpoint["gpu"]["allowedCudaVersions"] == ["12.8"]  # seeded from the template
    patched = api.patch(f"/templates/{template['id']}", json={"image": f"{IMAGE}:2"})
    assert patched.status_code == 200 and patched.json()["image"] == f"{IMAGE}:2"
    assert api.get(f"/serverless/{endpoint['id']}").json()["image"] == f"{IMAGE}:1"  # not linked


def test_patch_changes_only_what_it_names(api):
    body = endpoint_body("patchme", gpu={"pools": ["AMPERE_24", "ADA_24"], "excludedTypes": ["NVIDIA L4"],
                                         "minCudaVersion": "12.4"})
    endpoint = api.post("/serverless", json=body).json()
    url = f"/serverless/{endpoint['id']}"

    answer = api.patch(url, json={"workers": {"max": 2}})
    assert answer.status_code == 200, answer.text
    after = answer.json()
    assert after["workers"] == {"min": 0, "max": 2, "idleTimeout": 5} and after["gpu"] == endpoint["gpu"]

    after = api.patch(url, json={"gpu": {"count": 2}}).json()  # no pools: the selection stays
    assert after["gpu"]["excludedTypes"] == ["NVIDIA L4"] and after["gpu"]["count"] == 2
    after = api.patch(url, json={"gpu": {"pools": ["AMPERE_24"]}}).json()  # pools without exclusions clear them
    assert after["gpu"]["pools"] == ["AMPERE_24"] and "excludedTypes" not in after["gpu"]
    after = api.patch(url, json={"gpu": {"minCudaVersion": "", "allowedCudaVersions": ["12.8"]}}).json()
    assert after["gpu"]["minCudaVersion"] is None and after["gpu"]["allowedCudaVersions"] == ["12.8"]

    refused = problem(api.patch(url, json={"gpu": {"excludedTypes": ["NVIDIA L4"]}}), 422)["errors"]
    assert refused == ["$.gpu: property 'pools' is required when 'excludedTypes' is present"]
    assert problem(api.patch(url, json={"type": "LOAD_BALANCER"}), 422)["errors"] == [
        "$: additional properties 'type' not allowed"]  # the routing type is fixed at creation
    assert "compute family" in problem(api.patch(url, json={"cpu": [{"id": "cpu5c", "vcpuCount": 4}]}), 400)["detail"]
    assert api.get(url).json()["workers"]["max"] == 2  # refused PATCHes changed nothing


def test_an_endpoint_made_here_runs_serves_image(server, api):
    endpoint = api.post("/serverless", json=endpoint_body("runs")).json()
    with httpx.Client(base_url=server.base_url, headers={"Authorization": KEY}, timeout=60) as http:
        answer = http.post(f"/{endpoint['id']}/runsync", json={"input": {"n": 7}}).json()
    assert answer["status"] == "COMPLETED" and answer["output"]["echo"] == {"n": 7}
