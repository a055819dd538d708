from pathlib import Path

import pytest
import yaml

from vidagent.config import SECRET_FIELDS, Settings, defaults_as_yaml, load_settings
from vidagent.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_default_yaml_file_matches_the_code_defaults():
    committed = (ROOT / "configs" / "default.yaml").read_text()
    assert committed == defaults_as_yaml(), "regenerate configs/default.yaml from config.defaults_as_yaml()"
    assert yaml.safe_load(committed) == Settings().model_dump(mode="json", exclude=SECRET_FIELDS)


def test_precedence_flag_over_env_over_file_over_default(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("detect_fps: 2\ndetect_size: 320\nyolo_batch: 4\n")
    env = {"VIDAGENT_DETECT_SIZE": "480", "VIDAGENT_YOLO_BATCH": "8"}
    settings = load_settings(config, {"yolo_batch": 12, "language": None}, environ=env)
    assert settings.detect_fps == 2  # file
    assert settings.detect_size == 480  # env beats file
    assert settings.yolo_batch == 12  # flag beats env
    assert settings.whisper_model == "turbo"  # default: large-v3-turbo by the name every worker accepts
    assert settings.language is None  # an unset flag does not override


def test_config_file_from_environment_and_list_values(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("formats: [json]\n")
    settings = load_settings(environ={"VIDAGENT_CONFIG": str(config), "VIDAGENT_YOLO_CLASSES": "0,2"})
    assert settings.formats == ["json"]
    assert settings.yolo_classes == [0, 2]


@pytest.mark.parametrize(
    "content, expected",
    [
        ("detect_fps: -1\n", "key 'detect_fps'"),
        ("detect_fsp: 3\n", "key 'detect_fsp': unknown setting"),
        ("detect_fps: [1\n", "not valid YAML"),
        ("- a\n- b\n", "expected a mapping"),
        ("formats: [json, pdf]\n", "key 'formats'"),
    ],
)
def test_bad_config_file_names_file_and_key(tmp_path, content, expected):
    config = tmp_path / "bad.yaml"
    config.write_text(content)
    with pytest.raises(ConfigError) as err:
        load_settings(config, environ={})
    assert str(config) in str(err.value)
    assert expected in str(err.value)
    assert err.value.exit_code == 2


def test_bad_env_value_names_the_variable():
    with pytest.raises(ConfigError, match="VIDAGENT_DETECT_FPS"):
        load_settings(environ={"VIDAGENT_DETECT_FPS": "fast"})


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.yaml", environ={})


def test_runpod_settings_read_runpod_variables_and_dotenv(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(
        "# keys\nexport RUNPOD_API_KEY='rp_secret_123'\nRUNPOD_YOLO_ENDPOINT_ID=123\n"
        "RUNPOD_WHISPER_ENDPOINT_ID=abc\n"
    )
    monkeypatch.setenv("RUNPOD_WHISPER_ENDPOINT_ID", "from-env")
    settings = load_settings()
    assert settings.runpod_api_key.get_secret_value() == "rp_secret_123"
    assert "rp_secret_123" not in repr(settings) and "rp_secret_123" not in settings.model_dump_json()
    assert settings.runpod_yolo_endpoint_id == "123"  # text stays text
    assert settings.runpod_whisper_endpoint_id == "from-env"  # the environment beats .env


def test_bad_secret_value_is_not_echoed():
    with pytest.raises(ConfigError) as err:
        load_settings(environ={"RUNPOD_API_KEY": "", "RUNPOD_CONCURRENCY": "many"})
    assert "RUNPOD_CONCURRENCY" in str(err.value)
