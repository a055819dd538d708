"""`vidagent deploy` against `vidagent serve`'s copy of RunPod's REST API v2 (held to
RunPod's published schema in test_serve_rest.py), with a stand-in `docker` on PATH: the
edges of the world these tests cannot reach (a Docker engine, a registry, api.runpod.io).
Everything between them is the real code: the command through vidagent's own error
boundary, the REST calls over HTTP, the workers serve starts for the endpoints deploy
creates, and, in the slow test, `vidagent analyze` on those endpoints.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from conftest import OFFLINE_CONFIG, ROOT, SAMPLE
from test_serve import HANDLERS, Serve  # starts `vidagent serve` and reads its ready line
from text_match import TINY_EN_MAX_WER, assert_words
from vidagent.deploy import (
    POOLS,
    DeployRequest,
    RestClient,
    Target,
    describe_gpus,
    deploy,
    ensure_template,
    image_tag,
    load_deploy_settings,
    update_env_file,
)
from vidagent.deploy.rest import problem_line
from vidagent.errors import ConfigError
from vidagent.retry import RetryPolicy
from vidagent.serve.rest_schema import GPU_POOLS

KEY = "rpa_DEPLOY_TEST_SECRET_9f3e"
REGISTRY = "registry.example.test/team"
TAG = re.compile(r"^0\.1\.0-[0-9a-f]{7,}(-dirty)?$")
VLLM_IMAGE = "runpod/worker-v1-vllm:v2.25.2"

# Registers the command the way vidagent/cli/app.py will, then runs vidagent's own main()
# (its one error boundary: one line on stderr, exit codes).
CLI_SCRIPT = """
from vidagent.cli.app import app
from vidagent.cli.deploy import deploy_command

app.command("deploy")(deploy_command)

from vidagent.cli import main

main()
"""

# The stand-in for docker: logs its argv as one JSON line; FAKE_DOCKER_FAIL_<SUBCOMMAND>
# makes that subcommand print the text (docker's own words) and exit 1.
DOCKER_SCRIPT = f"""#!{sys.executable}
import json, os, sys
with open(os.environ["FAKE_DOCKER_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
failure = os.environ.get("FAKE_DOCKER_FAIL_" + sys.argv[1].upper())
if failure:
    print(failure, file=sys.stderr)
    sys.exit(1)
print("fake docker:", sys.argv[1])
"""

DAEMON_DOWN = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One serve for the module: echo workers stand in for the images deploy pushes."""
    folder = tmp_path_factory.mktemp("deploy-serve")
    config = folder / "serve.yaml"
    config.write_text(yaml.safe_dump({
        "worker_quota": 100,
        "images": {f"{REGISTRY}/vidagent-yolo": {"handler": str(HANDLERS / "echo.py")},
                   f"{REGISTRY}/vidagent-whisper": {"handler": str(HANDLERS / "echo.py")},
                   f"{REGISTRY}/vidagent-segment": {"handler": str(HANDLERS / "echo.py")}},
    }))
    serve = Serve(folder, "--config", config, "--api-key", KEY)
    yield serve
    serve.stop()
    assert KEY not in serve.stderr()


@pytest.fixture(scope="module")
def tools(tmp_path_factory):
    """bin/ with the docker stand-in, and the script that runs the command."""
    folder = tmp_path_factory.mktemp("deploy-tools")
    (folder / "bin").mkdir()
    docker = folder / "bin" / "docker"
    docker.write_text(DOCKER_SCRIPT)
    docker.chmod(docker.stat().st_mode | stat.S_IXUSR)
    (folder / "cli.py").write_text(CLI_SCRIPT)
    return folder


@pytest.fixture
def docker_log(tools, tmp_path, monkeypatch):
    """The stand-in first on PATH (a real docker may be installed), logging to this test's file."""
    log = tmp_path / "docker.log"
    monkeypatch.setenv("PATH", f"{tools / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(log))
    return log


def docker_calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def settings_file(folder: Path, prefix: str, **endpoints: dict) -> Path:
    """configs/deploy.yaml with absolute paths and its own name prefix; `yolo={...}` changes
    or (None) drops an endpoint's settings. The segment endpoint is left out unless named
    (`segment={}` keeps it as shipped): the tests of deploy's mechanics use the other three."""
    data = yaml.safe_load((ROOT / "configs" / "deploy.yaml").read_text())
    endpoints.setdefault("segment", None)
    data.update(context=str(ROOT), name_prefix=prefix)
    for name, endpoint in data["endpoints"].items():
        for key in ("dockerfile", "env_file"):
            if key in endpoint:
                endpoint[key] = str((ROOT / "configs" / endpoint[key]).resolve())
        endpoint["workers_max"] = 1  # one echo worker per endpoint is plenty here
    for name, changes in endpoints.items():
        if changes is None:
            del data["endpoints"][name]
        else:
            data["endpoints"][name].update(changes)
    path = folder / f"deploy-{prefix}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))  # the order of endpoints is deploy's order
    return path


def rest(server: Serve) -> httpx.Client:
    return httpx.Client(base_url=server.ready["rest_url"], headers={"Authorization": f"Bearer {KEY}"}, timeout=30)


def ours(items: list[dict], prefix: str) -> list[dict]:
    return [item for item in items if item["name"].startswith(prefix + "-")]


def templates_and_endpoints(http: httpx.Client) -> tuple[list[dict], list[dict]]:
    """v2 wraps each list in an object keyed by the resource."""
    return http.get("/templates").json()["templates"], http.get("/serverless").json()["endpoints"]


def closed_port_url() -> str:
    """A REST address on this machine where nothing listens: no network, as deploy sees it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v2"


def run_deploy(tools: Path, cwd: Path, *args, env: dict | None = None) -> subprocess.CompletedProcess:
    """The command as a user runs it, in `cwd` (where its .env is)."""
    return subprocess.run([sys.executable, str(tools / "cli.py"), "deploy", *map(str, args)],
                          cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def one_line_error(proc: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("vidagent: error: "), proc.stderr
    for needle in needles:
        assert needle in line, line
    assert KEY not in proc.stdout + proc.stderr
    return line


# -- settings, tags, .env (no server) ------------------------------------------------------


def test_the_shipped_settings_are_valid_and_name_runpods_pools():
    settings = load_deploy_settings(ROOT / "configs" / "deploy.yaml")
    assert list(settings.endpoints) == ["yolo", "whisper", "vlm", "segment"]
    vlm = settings.endpoints["vlm"]
    assert vlm.image == VLLM_IMAGE  # a published tag (configs/deploy.yaml says where that was read)
    assert vlm.allowed_cuda_versions == ["13.0"]  # worker-vllm v2.25.2's .runpod/hub.json allowedCudaVersions
    assert settings.endpoints["yolo"].dockerfile == ROOT / "endpoints" / "yolo" / "Dockerfile"
    assert settings.context == ROOT
    assert set(POOLS) == set(GPU_POOLS)  # deploy's pool ids are those serve's catalog holds
    assert describe_gpus({"pools": ["ADA_24", "AMPERE_24"], "excludedTypes": ["NVIDIA L4"], "minCudaVersion": "12.6"}) \
        == "ADA_24, AMPERE_24 without NVIDIA L4, CUDA >= 12.6"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"endpoints": {"yolo": {"gpus": ["ADA_42"]}}}, "endpoints.yolo.gpus: 'ADA_42' is not a RunPod GPU pool"),
        ({"endpoints": {"yolo": {"gpus": ["NVIDIA L40S"]}}}, "endpoints.yolo.gpus: 'NVIDIA L40S' is a GPU type id, not a pool"),
        ({"endpoints": {"yolo": {"workers_min": 4, "workers_max": 3}}}, "endpoints.yolo: workers_min (4) must not exceed"),
        ({"endpoints": {"yolo": {"image": "x/y:1"}}}, "endpoints.yolo: give either dockerfile"),
        ({"endpoints": {"yolo": {"idle_timeout_s": 0}}}, "endpoints.yolo.idle_timeout_s:"),
        ({"endpoints": {"vlm": {"allowed_cuda_versions": ["13"]}}}, "endpoints.vlm.allowed_cuda_versions: '13': give CUDA"),
        ({"endpoints": {"vlm": {"min_cuda_version": "12.4"}}}, "endpoints.vlm: give allowed_cuda_versions (an exact set) or"),
        ({"endpoints": {"yolo": {"gpu": ["ADA_24"]}}}, "endpoints.yolo.gpu: unknown key"),
        ({"endpoints": {"tts": {"image": "x/y:1", "gpus": ["ADA_24"]}}}, "endpoints.tts: Input should be 'yolo'"),
        ({"endpoints": {"whisper": {"dockerfile": "no/such/Dockerfile"}}}, "endpoints.whisper.dockerfile: file not found"),
        ({"regsitry": "x"}, "regsitry: unknown key"),
    ],
)
def test_bad_settings_are_one_line_naming_file_and_key(tmp_path, change, message):
    data = yaml.safe_load((ROOT / "configs" / "deploy.yaml").read_text())
    for key, value in change.items():
        if key == "endpoints":
            for name, fields in value.items():
                data["endpoints"].setdefault(name, {}).update(fields)
        else:
            data[key] = value
    path = tmp_path / "configs" / "deploy.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(data))
    for folder in ("endpoints/yolo", "endpoints/whisper", "endpoints/qwen3-vl", "endpoints/segment"):  # what the paths point at
        (tmp_path / folder).mkdir(parents=True)
    for file in ("endpoints/yolo/Dockerfile", "endpoints/whisper/Dockerfile", "endpoints/qwen3-vl/worker.env",
                 "endpoints/segment/Dockerfile"):
        (tmp_path / file).write_text("")
    with pytest.raises(ConfigError) as caught:
        load_deploy_settings(path)
    assert str(caught.value).startswith(f"{path}: ") and message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_image_tags_carry_version_revision_and_dirt(tmp_path):
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.test"]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "vidagent"\nversion = "9.8.7"\n')
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
    sha = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert image_tag(tmp_path) == f"9.8.7-{sha}"
    (tmp_path / "new.py").write_text("")  # untracked files may be in the build context
    assert image_tag(tmp_path) == f"9.8.7-{sha}-dirty"


def test_env_file_keys_are_replaced_in_place_and_the_rest_kept(tmp_path):
    env = tmp_path / ".env"
    env.write_text(
        "# my settings\n"
        "RUNPOD_API_KEY=keep-me\n"
        "export RUNPOD_YOLO_ENDPOINT_ID=old-yolo  \n"
        "\n"
        "VIDAGENT_LANGUAGE=en\n"
        "RUNPOD_YOLO_ENDPOINT_ID=older\n"
        "# the end, no newline"
    )
    env.chmod(0o640)
    update_env_file(env, {"RUNPOD_YOLO_ENDPOINT_ID": "y1", "RUNPOD_WHISPER_ENDPOINT_ID": "w1"})
    assert env.read_text() == (
        "# my settings\n"
        "RUNPOD_API_KEY=keep-me\n"
        "export RUNPOD_YOLO_ENDPOINT_ID=y1\n"
        "\n"
        "VIDAGENT_LANGUAGE=en\n"
        "RUNPOD_YOLO_ENDPOINT_ID=y1\n"
        "# the end, no newline\n"
        "RUNPOD_WHISPER_ENDPOINT_ID=w1\n"
    )
    assert stat.S_IMODE(env.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == [".env"]  # no temporary file left

    real = tmp_path / "shared.env"  # a symlinked .env is written through, the link kept
    real.write_text("A=1\n")
    link = tmp_path / "link.env"
    link.symlink_to(real)
    update_env_file(link, {"RUNPOD_VLM_ENDPOINT_ID": "v1"})
    assert link.is_symlink() and real.read_text() == "A=1\nRUNPOD_VLM_ENDPOINT_ID=v1\n"

    fresh = tmp_path / "new" / ".env"
    fresh.parent.mkdir()
    update_env_file(fresh, {"RUNPOD_VLM_ENDPOINT_ID": "v2"})
    assert fresh.read_text() == "RUNPOD_VLM_ENDPOINT_ID=v2\n"
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600  # it will hold an API key


# -- against serve's REST API -------------------------------------------------------------


def test_dry_run_prints_every_command_and_call_and_changes_nothing(server, tools, tmp_path, docker_log):
    settings = settings_file(tmp_path, "dry", vlm={"env": {"HF_TOKEN": "hf_SECRET_in_env"}})
    (tmp_path / ".env").write_text(f"# mine\nRUNPOD_API_KEY={KEY}\n")
    before = (tmp_path / ".env").read_bytes()
    with rest(server) as http:
        state = templates_and_endpoints(http)
        proc = run_deploy(tools, tmp_path, "--config", settings, "--registry", REGISTRY, "--dry-run",
                          env={"RUNPOD_REST_URL": server.ready["rest_url"]})
        assert proc.returncode == 0, proc.stderr
        assert templates_and_endpoints(http) == state
    assert (tmp_path / ".env").read_bytes() == before
    assert docker_calls(docker_log) == []  # not even `docker info`
    out = proc.stdout.splitlines()
    builds = [shlex.split(line) for line in out if line.startswith("docker build")]
    tag = builds[0][-2].rsplit(":", 1)[1]
    assert TAG.match(tag)
    assert builds == [
        ["docker", "build", "--platform", "linux/amd64", "-f", str(ROOT / f"endpoints/{m}/Dockerfile"),
         "-t", f"{REGISTRY}/vidagent-{m}:{tag}", str(ROOT)] for m in ("yolo", "whisper")
    ]
    assert [line for line in out if line.startswith("docker push")] == [
        f"docker push {REGISTRY}/vidagent-{m}:{tag}" for m in ("yolo", "whisper")
    ]
    rest_url = server.ready["rest_url"]
    writes = [(line, json.loads(out[i + 1])) for i, line in enumerate(out) if line.startswith(("POST", "PATCH"))]
    assert [line for line, _ in writes] == [f"POST {rest_url}/templates", f"POST {rest_url}/serverless"] * 3
    vlm_template, vlm_endpoint = writes[4][1], writes[5][1]
    assert vlm_template["image"] == VLLM_IMAGE and vlm_template["serverless"] is True
    assert vlm_template["env"]["MAX_MODEL_LEN"] == "8192" and vlm_template["env"]["HF_TOKEN"] == "***"
    assert vlm_endpoint["name"] == "dry-vlm" and vlm_endpoint["type"] == "QUEUE" and vlm_endpoint["flashboot"] == "FLASHBOOT"
    assert vlm_endpoint["workers"] == {"min": 0, "max": 1, "idleTimeout": 15} and vlm_endpoint["timeout"] == 600_000
    assert vlm_endpoint["gpu"] == {"pools": ["ADA_48_PRO", "AMPERE_48"], "count": 1, "allowedCudaVersions": ["13.0"]}
    assert vlm_endpoint["image"] == VLLM_IMAGE and vlm_endpoint["env"]["HF_TOKEN"] == "***"
    assert f"GET {rest_url}/serverless" in out and "Bearer ***" in proc.stdout
    for secret in (KEY, "hf_SECRET_in_env"):
        assert secret not in proc.stdout + proc.stderr

    # What the plan would send, the API accepts as it is (its templateId filled in).
    with rest(server) as http:
        for (_, template), (_, endpoint) in zip(writes[0::2], writes[1::2]):
            made = http.post("/templates", json={**template, "name": f"accepted-{template['name']}", "env": {}})
            assert made.status_code == 201, made.text
            made = http.post("/serverless", json={**endpoint, "name": f"accepted-{endpoint['name']}", "env": {},
                                                  "templateId": made.json()["id"],
                                                  "workers": {**endpoint["workers"], "max": 0}})  # no processes
            assert made.status_code == 201, made.text


@pytest.mark.parametrize("key", [KEY, None])
def test_dry_run_without_the_api_prints_the_plan_and_what_it_could_not_decide(tools, tmp_path, docker_log, key):
    """No network (nothing listens at the address), or no key: one try, then the plan."""
    env = {"RUNPOD_REST_URL": closed_port_url(), **({"RUNPOD_API_KEY": key} if key else {})}
    proc = run_deploy(tools, tmp_path, "--config", settings_file(tmp_path, "offline"), "--registry", REGISTRY,
                      "--dry-run", env=env)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert [line.split()[1] for line in out if line.startswith("docker ")] == ["build", "build", "push", "push"]
    writes = [line.split()[0] + " " + line.split()[1].rsplit("/", 1)[1] for line in out if line.startswith("POST")]
    assert writes == ["POST templates", "POST serverless"] * 3
    reason = "could not read the API (cannot reach" if key else "no RUNPOD_API_KEY"
    notes = [line for line in out if line.startswith("# ") and "undecided" in line]
    assert len(notes) == 1 and reason in notes[0], out
    assert proc.stderr.count("(undecided without the API)") == 6  # each template and each endpoint
    assert "giving up" not in proc.stdout + proc.stderr  # one read, no retries
    assert [line for line in out if line.startswith("GET ")] == ([f"GET {env['RUNPOD_REST_URL']}/templates"] if key else [])
    assert docker_calls(docker_log) == [] and not (tmp_path / ".env").exists()


def test_a_second_run_updates_instead_of_duplicating_and_an_unchanged_one_sends_nothing(server, tmp_path, docker_log):
    env_file = tmp_path / ".env"
    # (An inline comment goes with the value it described: .env readers take it as part of the value.)
    env_file.write_text("# RunPod\nRUNPOD_API_KEY=from-the-file\nexport RUNPOD_YOLO_ENDPOINT_ID=stale  # old\nLANG_X=1\n")
    environ = {"RUNPOD_API_KEY": KEY, "RUNPOD_REST_URL": server.ready["rest_url"]}
    lines: list[str] = []

    def run(settings: Path):
        request = DeployRequest(settings, registry=REGISTRY, env_file=env_file)
        return deploy(request, say=lines.append, show=lines.append, environ=environ)

    def writes_seen_by_serve() -> list[str]:
        return [line for line in server.stderr().splitlines()
                if re.search(r"(template|endpoint) \S+ \(twice-\w+\) (created|updated)", line)]

    first = run(settings_file(tmp_path, "twice"))
    assert set(first.actions.values()) == {"create"}
    calls = docker_calls(docker_log)
    assert calls[0] == ["info", "--format", "{{.ServerVersion}}"]
    tag = calls[1][-2].rsplit(":", 1)[1]
    assert calls[1:] == [
        ["build", "--platform", "linux/amd64", "-f", str(ROOT / "endpoints/yolo/Dockerfile"),
         "-t", f"{REGISTRY}/vidagent-yolo:{tag}", str(ROOT)],
        ["build", "--platform", "linux/amd64", "-f", str(ROOT / "endpoints/whisper/Dockerfile"),
         "-t", f"{REGISTRY}/vidagent-whisper:{tag}", str(ROOT)],
        ["push", f"{REGISTRY}/vidagent-yolo:{tag}"],
        ["push", f"{REGISTRY}/vidagent-whisper:{tag}"],
    ]
    assert len(writes_seen_by_serve()) == 6

    unchanged = run(settings_file(tmp_path, "twice"))
    assert set(unchanged.actions.values()) == {"keep"} and unchanged.endpoint_ids == first.endpoint_ids
    assert len(writes_seen_by_serve()) == 6  # nothing was sent
    reported = [line for line in lines if re.fullmatch(r"\w+: template twice-\w+ unchanged, endpoint twice-\w+ unchanged \(\w+\)", line)]
    assert len(reported) == 3

    second = run(settings_file(tmp_path, "twice", whisper={"workers_max": 2, "idle_timeout_s": 30},
                               yolo={"env": {"YOLO_EXTRA": "1"}}))
    assert second.actions == {"twice-yolo": "update", "twice-whisper": "update", "twice-vlm": "keep"}
    assert second.endpoint_ids == first.endpoint_ids
    updates = writes_seen_by_serve()[6:]
    assert len(updates) == 3 and all("updated" in line for line in updates)
    assert any("(twice-whisper) updated: workers" in line for line in updates)  # only the field that differs
    third = run(settings_file(tmp_path, "twice", whisper={"workers_max": 2, "idle_timeout_s": 30},
                              yolo={"env": {"YOLO_EXTRA": "1"}}))
    assert set(third.actions.values()) == {"keep"} and len(writes_seen_by_serve()) == 9

    with rest(server) as http:
        templates, endpoints = templates_and_endpoints(http)
    templates = {t["name"]: t for t in ours(templates, "twice")}
    endpoints = {e["name"]: e for e in ours(endpoints, "twice")}
    assert sorted(templates) == sorted(endpoints) == ["twice-vlm", "twice-whisper", "twice-yolo"]
    assert endpoints["twice-whisper"]["workers"] == {"min": 0, "max": 2, "idleTimeout": 30}
    # v2 endpoints keep no link to their template: the env change reached both.
    assert endpoints["twice-yolo"]["env"] == templates["twice-yolo"]["env"] == {"YOLO_EXTRA": "1"}
    assert endpoints["twice-yolo"]["gpu"]["minCudaVersion"] == "12.6"
    assert templates["twice-vlm"]["startJupyter"] is False and templates["twice-vlm"]["startSsh"] is False
    ids = first.endpoint_ids
    assert env_file.read_text() == (
        "# RunPod\nRUNPOD_API_KEY=from-the-file\n"
        f"export RUNPOD_YOLO_ENDPOINT_ID={ids['RUNPOD_YOLO_ENDPOINT_ID']}\nLANG_X=1\n"
        f"RUNPOD_WHISPER_ENDPOINT_ID={ids['RUNPOD_WHISPER_ENDPOINT_ID']}\n"
        f"RUNPOD_VLM_ENDPOINT_ID={ids['RUNPOD_VLM_ENDPOINT_ID']}\n"
    )
    assert [row["name"] for row in third.rows] == ["twice-yolo", "twice-whisper", "twice-vlm"]
    assert third.rows[0]["image"] == f"{REGISTRY}/vidagent-yolo:{tag}" and third.rows[1]["workers"] == "0-2"
    assert third.rows[2]["gpus"] == "ADA_48_PRO, AMPERE_48, CUDA 13.0"
    assert KEY not in "\n".join(lines)

    # The endpoint deploy made is served: serve started a worker for its image.
    with httpx.Client(base_url=server.base_url, headers={"Authorization": KEY}, timeout=60) as http:
        answer = http.post(f"/{ids['RUNPOD_YOLO_ENDPOINT_ID']}/runsync", json={"input": {"n": 1}}).json()
    assert answer["status"] == "COMPLETED" and answer["output"]["echo"] == {"n": 1}


def test_only_deploys_the_named_endpoints(server, tools, tmp_path, docker_log):
    settings = settings_file(tmp_path, "only")
    (tmp_path / ".env").write_text(f"RUNPOD_API_KEY={KEY}\n")
    proc = run_deploy(tools, tmp_path, "--config", settings, "--only", "vlm",
                      env={"RUNPOD_REST_URL": server.ready["rest_url"]})
    assert proc.returncode == 0, proc.stderr
    assert docker_calls(docker_log) == []  # nothing to build for the VLM, no registry needed
    with rest(server) as http:
        assert [e["name"] for e in ours(templates_and_endpoints(http)[1], "only")] == ["only-vlm"]
    assert re.fullmatch(rf"RUNPOD_API_KEY={KEY}\nRUNPOD_VLM_ENDPOINT_ID=[a-z0-9]{{14}}\n", (tmp_path / ".env").read_text())
    assert "only-vlm" in proc.stdout  # the table
    assert KEY not in proc.stdout + proc.stderr

    proc = run_deploy(tools, tmp_path, "--config", settings, "--only", "yolo", "--only", "whisper",
                      "--registry", REGISTRY, env={"RUNPOD_REST_URL": server.ready["rest_url"]})
    assert proc.returncode == 0, proc.stderr
    assert [c[0] for c in docker_calls(docker_log)] == ["info", "build", "build", "push", "push"]
    with rest(server) as http:
        assert sorted(e["name"] for e in ours(templates_and_endpoints(http)[1], "only")) == ["only-vlm", "only-whisper", "only-yolo"]


def test_dry_run_shows_the_segment_endpoint_as_shipped(server, tools, tmp_path, docker_log):
    shipped = yaml.safe_load((ROOT / "configs" / "deploy.yaml").read_text())["endpoints"]["segment"]
    settings = settings_file(tmp_path, "fleet", segment={"workers_max": shipped["workers_max"]})
    (tmp_path / ".env").write_text(f"RUNPOD_API_KEY={KEY}\n")
    proc = run_deploy(tools, tmp_path, "--config", settings, "--only", "segment", "--registry", REGISTRY, "--dry-run",
                      env={"RUNPOD_REST_URL": server.ready["rest_url"]})
    assert proc.returncode == 0, proc.stderr
    assert docker_calls(docker_log) == []
    out = proc.stdout.splitlines()
    [build] = [shlex.split(line) for line in out if line.startswith("docker build")]
    assert build[:6] == ["docker", "build", "--platform", "linux/amd64", "-f", str(ROOT / "endpoints/segment/Dockerfile")]
    image = build[-2]
    assert image.startswith(f"{REGISTRY}/vidagent-segment:") and f"docker push {image}" in out
    writes = [(line.split()[0], json.loads(out[i + 1])) for i, line in enumerate(out) if line.startswith(("POST", "PATCH"))]
    assert [method for method, _ in writes] == ["POST", "POST"]
    endpoint = writes[1][1]
    assert endpoint["name"] == "fleet-segment" and endpoint["image"] == image and endpoint["type"] == "QUEUE"
    assert endpoint["workers"] == {"min": 0, "max": shipped["workers_max"], "idleTimeout": shipped["idle_timeout_s"]}
    assert endpoint["gpu"]["pools"] == shipped["gpus"] and endpoint["flashboot"] == "FLASHBOOT"
    assert endpoint["timeout"] == shipped["execution_timeout_s"] * 1000
    assert endpoint["scaling"] == {"type": "QUEUE_DELAY", "queueDelay": shipped["queue_delay_s"]}
    assert shipped["workers_max"] >= 50  # a fleet, not a worker or three
    assert any(line.startswith("# would set RUNPOD_SEGMENT_ENDPOINT_ID=") for line in out)
    with rest(server) as http:  # RunPod's v2 schema (serve's copy) takes the body as it is
        template = http.post("/templates", json={**writes[0][1], "name": "accepted-fleet-segment"}).json()
        made = http.post("/serverless", json={**endpoint, "name": "accepted-fleet-segment", "templateId": template["id"],
                                              "workers": {**endpoint["workers"], "max": 0}})
        assert made.status_code == 201, made.text


def test_the_segment_endpoint_is_created_with_its_volume_and_its_id_goes_to_env(server, tools, tmp_path, docker_log):
    settings = settings_file(tmp_path, "vol", segment={"network_volume_id": "vol4xk2", "data_centers": ["EU-RO-1"]})
    (tmp_path / ".env").write_text(f"RUNPOD_API_KEY={KEY}\n")
    proc = run_deploy(tools, tmp_path, "--config", settings, "--only", "segment", "--registry", REGISTRY,
                      env={"RUNPOD_REST_URL": server.ready["rest_url"]})
    assert proc.returncode == 0, proc.stderr
    assert [c[0] for c in docker_calls(docker_log)] == ["info", "build", "push"]
    env = (tmp_path / ".env").read_text()
    [endpoint_id] = re.findall(r"^RUNPOD_SEGMENT_ENDPOINT_ID=([a-z0-9]{14})$", env, re.M)
    with rest(server) as http:
        [endpoint] = ours(templates_and_endpoints(http)[1], "vol")
    assert endpoint["id"] == endpoint_id and endpoint["name"] == "vol-segment"
    assert endpoint["networkVolumes"] == ["vol4xk2"] and endpoint["dataCenterIds"] == ["EU-RO-1"]
    with httpx.Client(base_url=server.base_url, headers={"Authorization": KEY}, timeout=60) as http:
        answer = http.post(f"/{endpoint_id}/runsync", json={"input": {"url": "https://x/y.mp4"}}).json()
    assert answer["status"] == "COMPLETED"  # serve started a worker for the image deploy pushed
    again = run_deploy(tools, tmp_path, "--config", settings, "--only", "segment", "--registry", REGISTRY,
                       env={"RUNPOD_REST_URL": server.ready["rest_url"]})
    assert again.returncode == 0 and "endpoint vol-segment unchanged" in again.stderr + again.stdout


# -- errors: one line, the right exit code, no traceback, never the key ----------------------


@pytest.mark.parametrize(
    "fail, code, needles",
    [
        ({"FAKE_DOCKER_FAIL_INFO": DAEMON_DOWN}, 1, ("the Docker daemon is not running", "systemctl start docker")),
        ({"FAKE_DOCKER_FAIL_PUSH": "denied: requested access to the resource is denied"}, 1,
         ("the registry refused the push", "docker login registry.example.test")),
        ({"FAKE_DOCKER_FAIL_PUSH": "unauthorized: authentication required\nno basic auth credentials"}, 1,
         ("the registry refused the push", "unauthorized: authentication required")),
        ({"FAKE_DOCKER_FAIL_BUILD": "ERROR: failed to solve: process \"/bin/sh -c pip install\" did not complete"}, 1,
         ("failed with exit code 1", "failed to solve")),
    ],
)
def test_docker_failures_stop_before_runpod_changes(server, tools, tmp_path, docker_log, fail, code, needles):
    settings = settings_file(tmp_path, "dockerfail")
    proc = run_deploy(tools, tmp_path, "--config", settings, "--registry", REGISTRY,
                      env={"RUNPOD_API_KEY": KEY, "RUNPOD_REST_URL": server.ready["rest_url"], **fail})
    one_line_error(proc, code, *needles)
    with rest(server) as http:
        assert ours(templates_and_endpoints(http)[0], "dockerfail") == []
    assert not (tmp_path / ".env").exists()


def test_no_docker_binary(server, tools, tmp_path):
    only_git = tmp_path / "bin"  # a PATH with git (for the tag) and no docker
    only_git.mkdir()
    (only_git / "git").symlink_to("/usr/bin/git")
    proc = run_deploy(tools, tmp_path, "--config", settings_file(tmp_path, "nodocker"), "--registry", REGISTRY,
                      env={"PATH": str(only_git), "RUNPOD_API_KEY": KEY, "RUNPOD_REST_URL": server.ready["rest_url"]})
    one_line_error(proc, 2, "docker is not installed", "--only vlm")


def test_api_key_missing_or_rejected(server, tools, tmp_path, docker_log):
    settings = settings_file(tmp_path, "keys")
    proc = run_deploy(tools, tmp_path, "--config", settings, "--only", "vlm",
                      env={"RUNPOD_REST_URL": server.ready["rest_url"]})
    one_line_error(proc, 2, "RUNPOD_API_KEY is not set")
    wrong = "rpa_WRONG_key_do_not_print"
    proc = run_deploy(tools, tmp_path, "--config", settings, "--registry", REGISTRY,
                      env={"RUNPOD_API_KEY": wrong, "RUNPOD_REST_URL": server.ready["rest_url"]})
    one_line_error(proc, 2, "RunPod rejected the API key (401)")
    assert wrong not in proc.stdout + proc.stderr
    assert [c[0] for c in docker_calls(docker_log)] == ["info"]  # found out before any build


@pytest.mark.parametrize(
    "changes, code, needles",
    [
        ({"gpus": ["ADA_24", "VOLTA_32"]}, 2, ("endpoints.vlm.gpus: 'VOLTA_32' is not a RunPod GPU pool",)),
        # RunPod's own refusal (a problem body), read for the key to fix
        ({"exclude_gpus": ["NVIDIA RTX 9090"]}, 2,
         ("RunPod refused the GPUs of gpu-vlm", "'NVIDIA RTX 9090' is not a GPU type in the pools", "endpoints.vlm.gpus")),
        ({"workers_max": 500}, 1, ("RunPod refused gpu-vlm over an account limit", "quota of 100", "endpoints.vlm.workers_max")),
    ],
)
def test_gpu_and_quota_refusals(server, tools, tmp_path, changes, code, needles):
    settings = settings_file(tmp_path, "gpu", vlm=changes)
    proc = run_deploy(tools, tmp_path, "--config", settings, "--only", "vlm",
                      env={"RUNPOD_API_KEY": KEY, "RUNPOD_REST_URL": server.ready["rest_url"]})
    line = one_line_error(proc, code, *needles)
    assert str(settings) in line


def test_a_refused_endpoint_leaves_the_others_deployed_and_in_env(server, tools, tmp_path, docker_log):
    settings = settings_file(tmp_path, "partly", vlm={"workers_max": 500})
    (tmp_path / ".env").write_text(f"RUNPOD_API_KEY={KEY}\n")
    proc = run_deploy(tools, tmp_path, "--config", settings, "--registry", REGISTRY,
                      env={"RUNPOD_REST_URL": server.ready["rest_url"]})
    one_line_error(proc, 1, "over an account limit")
    written = (tmp_path / ".env").read_text()
    assert "RUNPOD_YOLO_ENDPOINT_ID=" in written and "RUNPOD_WHISPER_ENDPOINT_ID=" in written
    assert "RUNPOD_VLM_ENDPOINT_ID" not in written


def _target() -> Target:
    template = {"name": "x-vlm", "image": VLLM_IMAGE, "serverless": True}
    return Target("vlm", "x-vlm", VLLM_IMAGE, None, template, {}, "K")


def test_a_create_whose_answer_was_lost_is_looked_up_not_sent_twice():
    """RunPod made the template, then the answer failed (502): the retry finds it instead."""
    templates: list[dict] = []
    posts = []

    def runpod(request: httpx.Request) -> httpx.Response:  # stands in for api.runpod.io/v2
        assert request.headers["Authorization"] == f"Bearer {KEY}"
        if request.method == "GET":
            return httpx.Response(200, json={"templates": templates})
        posts.append(json.loads(request.content))
        templates.append({"id": "tpl1", **posts[-1]})
        return httpx.Response(502, text="Bad Gateway")

    client = RestClient("https://api.example.test/v2", KEY, http=httpx.Client(transport=httpx.MockTransport(runpod)),
                        sleep=lambda s: None)
    assert ensure_template(client, _target(), []) == ("tpl1", "create")
    assert len(posts) == 1


def test_a_create_that_cannot_have_arrived_is_sent_again():
    """No connection, then a 429 (refused unread, Retry-After honoured), then created."""
    answers = iter([httpx.ConnectError("refused"), httpx.Response(429, headers={"Retry-After": "3"}),
                    httpx.Response(201, json={"id": "tpl9"})])
    received, waits = [], []

    def runpod(request: httpx.Request) -> httpx.Response:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        received.append(request.method)
        return answer

    client = RestClient("https://api.example.test/v2", KEY, http=httpx.Client(transport=httpx.MockTransport(runpod)),
                        policy=RetryPolicy(jitter=lambda: 0.0), sleep=waits.append)
    assert ensure_template(client, _target(), []) == ("tpl9", "create")
    assert received == ["POST", "POST"] and waits == [0.0, 3.0]


def test_runpods_problem_bodies_read_as_one_line(server):
    answer = httpx.post(f"{server.ready['rest_url']}/serverless", headers={"Authorization": f"Bearer {KEY}"},
                        json={"name": "x", "type": "QUEUE", "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4},
                              "image": "a:1", "gpu": {"pools": ["ADA_24"]}, "workersMax": 3, "idleTimeout": 5})
    assert problem_line(answer) == "Request validation failed.: $: additional properties 'workersMax', 'idleTimeout' not allowed"
    assert problem_line(httpx.Response(503, text="<html>\n upstream\n down</html>")) == "<html> upstream down</html>"


def test_a_v1_address_is_refused_with_the_way_out(tools, tmp_path):
    proc = run_deploy(tools, tmp_path, "--config", settings_file(tmp_path, "v1"), "--only", "vlm",
                      env={"RUNPOD_API_KEY": KEY, "RUNPOD_REST_URL": "https://rest.runpod.io/v1"})
    one_line_error(proc, 2, "REST API v1, which is retired", "https://api.runpod.io/v2")


def test_bad_usage_exits_2(server, tools, tmp_path):
    settings = settings_file(tmp_path, "usage")
    env = {"RUNPOD_API_KEY": KEY, "RUNPOD_REST_URL": server.ready["rest_url"]}
    one_line_error(run_deploy(tools, tmp_path, "--config", settings, "--only", "tts", env=env), 2, "--only 'tts'")
    one_line_error(run_deploy(tools, tmp_path, "--config", settings, "--only", "yolo", env=env), 2, "no registry")
    one_line_error(run_deploy(tools, tmp_path, "--config", settings, "--only", "yolo", "--registry", "https://x.io/a",
                              env=env), 2, "without a scheme")


def test_rest_calls_are_retried_through_429s_and_5xx_without_duplicates(tools, tmp_path):
    faulty = Serve(tmp_path, "--image", f"{REGISTRY}/vidagent-yolo={HANDLERS / 'echo.py'}", "--api-key", KEY,
                   "--fault-429", "0.3", "--fault-5xx", "0.2", "--fault-retry-after-s", "0", "--fault-seed", "11")
    try:
        settings = settings_file(tmp_path, "faults")
        env = {"RUNPOD_API_KEY": KEY, "RUNPOD_REST_URL": faulty.ready["rest_url"]}
        for _ in range(2):
            proc = run_deploy(tools, tmp_path, "--config", settings, "--only", "vlm", env=env)
            assert proc.returncode == 0, proc.stderr
        with rest(faulty) as http:
            stats = httpx.get(f"{faulty.root}/_vidagent/stats", headers={"Authorization": KEY}).json()
            for _ in range(20):  # the checks themselves may be faulted
                answer = http.get("/serverless")
                if answer.status_code == 200:
                    break
        assert [e["name"] for e in answer.json()["endpoints"]] == ["faults-vlm"]
        assert stats["faults"]["injected"].get("429", 0) >= 1 and len(stats["faults"]["injected"]) >= 2
    finally:
        faulty.stop()


# -- deploy, then analyze, on this machine ------------------------------------------------------


@pytest.mark.slow
def test_deploy_then_analyze_end_to_end(tools, tmp_path, docker_log):
    """serve with the offline yolo and whisper handlers for the images deploy pushes; deploy
    with the shipped settings writes .env; analyze in that folder uses the new endpoints."""
    serve = Serve(tmp_path, "--api-key", KEY,
                  "--image", f"{REGISTRY}/vidagent-yolo={ROOT / 'endpoints/yolo/handler.py'}",
                  "--image", f"{REGISTRY}/vidagent-whisper={ROOT / 'endpoints/whisper/handler.py'}",
                  env={"VIDAGENT_YOLO_MODEL": "offline:yolo11n-random", "VIDAGENT_WHISPER_MODEL": "offline:tiny.en"})
    work = tmp_path / "project"
    work.mkdir()
    (work / ".env").write_text(f"# my project\nRUNPOD_API_KEY={KEY}\n")
    try:
        proc = run_deploy(tools, work, "--config", ROOT / "configs" / "deploy.yaml", "--only", "yolo",
                          "--only", "whisper", "--registry", REGISTRY,
                          env={"RUNPOD_REST_URL": serve.ready["rest_url"]})
        assert proc.returncode == 0, proc.stderr
        assert [c[0] for c in docker_calls(docker_log)] == ["info", "build", "build", "push", "push"]
        written = (work / ".env").read_text()
        assert written.startswith(f"# my project\nRUNPOD_API_KEY={KEY}\n")
        assert "RUNPOD_YOLO_ENDPOINT_ID=" in written and "RUNPOD_WHISPER_ENDPOINT_ID=" in written

        analyze = subprocess.run(
            [sys.executable, "-m", "vidagent", "analyze", str(SAMPLE), "--config", str(OFFLINE_CONFIG),
             "--backend", "runpod", "--out", "out", "--detect-fps", "2", "--yolo-batch", "4",
             "--progress", "lines", "--no-cache"],
            cwd=work, capture_output=True, text=True, timeout=300,
            env={**os.environ, "RUNPOD_BASE_URL": serve.base_url},
        )
        assert analyze.returncode == 0, analyze.stderr
        report = json.loads((work / "out" / "sample" / "report.json").read_text())
        assert_words(" ".join(s["text"] for s in report["transcript"]["segments"]),
                     json.loads(SAMPLE.with_suffix(".json").read_text())["text"], max_wer=TINY_EN_MAX_WER)
        assert report["usage"]["yolo"]["jobs"] >= 1 and report["detections"]
        assert KEY not in proc.stdout + proc.stderr + analyze.stdout + analyze.stderr
    finally:
        serve.stop()
    assert KEY not in serve.stderr()
