"""What the Dagster UI shows of the resources: the configuration each resource definition carries (its
config schema's defaults, which the UI's resource page lists). Pure: no service is started."""

import pytest
from pydantic import SecretStr

from engine.settings import RedisSettings
from orchestration.resources import local_resources
from orchestration.settings import ReportSettings, TopicSettings, TrinoSettings
from spark_jobs.settings import LauncherSettings

SECRETS = {"BAZAAR_REDIS_PASSWORD": "redis-pw-1f3a", "BAZAAR_KAFKA_ADMIN_PASSWORD": "kafka-admin-pw-9c2e",
           "BAZAAR_RELAY_KAFKA_PASSWORD": "kafka-relay-pw-77d0", "BAZAAR_SINK_KAFKA_PASSWORD": "kafka-sink-pw-05b1",
           "BAZAAR_TRINO_PASSWORD": "trino-pw-c4e8", "BAZAAR_TRINO_OWNER_PASSWORD": "trino-owner-pw-3a9f"}


def shown(resources: dict) -> str:
    """Every resource's configuration as the UI gets it."""
    return "\n".join(r.get_resource_definition().config_schema.default_value_as_json_str for r in resources.values())


def places(tmp_path) -> dict:
    """The settings with no default: where the sinks and the reports keep their files."""
    return {"sinks": LauncherSettings(warehouse_uri=f"file://{tmp_path}/w", checkpoint_uri=f"file://{tmp_path}/c",
                                      sink_home=tmp_path / "h"),
            "report_settings": ReportSettings(reports_dir=tmp_path / "r")}


def build(tmp_path):
    """The local resources from settings read from the environment, as the Dagster process reads them."""
    return local_resources(redis=RedisSettings(), topic=TopicSettings(), trino=TrinoSettings(), **places(tmp_path))


def test_a_secret_from_the_environment_is_shown_by_its_variables_name_never_its_value(tmp_path, monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    resources = build(tmp_path)
    config = shown(resources)
    assert not [name for name, value in SECRETS.items() if value in config], config
    assert all(name in config for name in SECRETS), config
    # and each resource still gets the value itself when a run initializes it
    kafka = resources["kafka"].process_config_and_initialize()
    assert (kafka.admin_password, kafka.relay_password, kafka.sink_password) == \
        tuple(SECRETS[f"BAZAAR_{n}"] for n in ("KAFKA_ADMIN_PASSWORD", "RELAY_KAFKA_PASSWORD", "SINK_KAFKA_PASSWORD"))


@pytest.mark.parametrize("variable", sorted(SECRETS))
@pytest.mark.parametrize("environment", [None, "another-value"])
def test_a_secret_given_in_code_is_held_as_given(tmp_path, monkeypatch, variable, environment):
    """Settings built in code (the tests' own stacks) carry no variable to name: the value is held, also
    when the process has the variable with another value (never swapped for it at run time)."""
    if environment is None:
        monkeypatch.delenv(variable, raising=False)
    else:
        monkeypatch.setenv(variable, environment)
    field = variable.removeprefix("BAZAAR_").lower()
    settings = {"BAZAAR_REDIS_PASSWORD": (RedisSettings, "redis"), "BAZAAR_TRINO_PASSWORD": (TrinoSettings, "trino"),
                "BAZAAR_TRINO_OWNER_PASSWORD": (TrinoSettings, "trino")}.get(variable, (TopicSettings, "topic"))
    cls, arg = settings
    resources = local_resources(**places(tmp_path), **{arg: cls(**{field: SecretStr("given-in-code")})})
    assert "given-in-code" in shown(resources)
    initialized = [r.process_config_and_initialize() for r in resources.values()]
    assert any("given-in-code" in r.model_dump_json() for r in initialized)


def test_a_resource_dagster_did_not_initialize_refuses_to_use_its_unresolved_password(tmp_path, monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    resources = build(tmp_path)
    with pytest.raises(RuntimeError, match=r"BAZAAR_SINK_KAFKA_PASSWORD unresolved"):
        resources["sinks"].settings()  # else the variable's name would pass for the password
    assert resources["sinks"].process_config_and_initialize().settings().sink_kafka_password.get_secret_value() == \
        SECRETS["BAZAAR_SINK_KAFKA_PASSWORD"]
