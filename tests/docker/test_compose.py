"""docker/compose.yaml, the cluster shape, checked where no Docker engine runs: loaded by compose-go
(the Compose specification's reference loader, built from docker/validate) and held against what
the code reads: every BAZAAR_* variable a service gets names a setting and parses as one, and the
Dagster code location gets every variable its cluster resources read."""

from __future__ import annotations

import ast
import copy
import hashlib
import importlib
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
GO_FALLBACK = Path("/usr/local/go/bin/go")  # where Go lives on this project's machines
SETTINGS_MODULES = ("engine.settings", "spark_jobs.settings", "orchestration.settings")
RUNTIME_PACKAGES = ("engine", "spark_jobs", "orchestration")
USER_CODE = "dagster-user-code"
DAGSTER_SERVICES = (USER_CODE, "dagster-webserver", "dagster-daemon")
PREFIX = "BAZAAR_"


# ---- the reference loader --------------------------------------------------------------------------

def go_command() -> str:
    go = shutil.which("go") or (str(GO_FALLBACK) if GO_FALLBACK.exists() else None)
    if go is None:
        pytest.fail("Go is not installed: it builds docker/validate, which checks docker/compose.yaml with "
                    "compose-go. Install Go 1.23 or newer (on this project's machines: /usr/local/go/bin/go) "
                    "and put it on PATH.")
    return go


@pytest.fixture(scope="session")
def validator(tmp_path_factory) -> Path:
    """docker/validate, built once per session (the module cache and the build cache make later builds quick)."""
    go = go_command()
    binary = tmp_path_factory.mktemp("validate") / "validate"
    env = {**os.environ, "PATH": f"{Path(go).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "GOFLAGS": "-mod=readonly -buildvcs=false",  # go.sum as committed; no VCS stamp needed
           "GOTOOLCHAIN": "local"}  # the installed Go, never a downloaded one
    out = subprocess.run([go, "build", "-o", str(binary), "."], cwd=DOCKER / "validate", env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"go build of docker/validate failed:\n{out.stdout}{out.stderr}"
    return binary


def required_variables(text: str) -> set[str]:
    """The variables a Compose file requires (`${NAME:?message}`)."""
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*):\?", text))


def dummy(name: str) -> str:
    """A stand-in value: 64 characters (a token secret needs 32), letters and digits, one per name."""
    return hashlib.sha256(name.encode()).hexdigest()


def load(validator: Path, path: Path = COMPOSE, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    if env is None:
        env = {name: dummy(name) for name in required_variables(path.read_text())}
    args = [str(validator)]
    for name, value in sorted(env.items()):
        args += ["-e", f"{name}={value}"]
    args.append(str(path))
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="session")
def project(validator) -> dict:
    """The resolved project, as `docker compose -f docker/compose.yaml config` would print it."""
    out = load(validator)
    assert out.returncode == 0, f"compose-go refused docker/compose.yaml:\n{out.stderr}"
    return json.loads(out.stdout)


def environments(project: dict) -> dict[str, dict[str, str]]:
    return {name: svc.get("environment") or {} for name, svc in project["services"].items()}


# ---- what the code reads ------------------------------------------------------------------------------

def settings_classes() -> list[type[BaseSettings]]:
    """Every settings class of the runtime packages (the tooling's StackSettings is the local stack's)."""
    found = []
    for name in SETTINGS_MODULES:
        module = importlib.import_module(name)
        found += [cls for _, cls in inspect.getmembers(module, inspect.isclass)
                  if issubclass(cls, BaseSettings) and cls.__module__ == name]
    return found


def variable(cls: type[BaseSettings], field: str) -> str:
    assert cls.model_config.get("env_prefix") == PREFIX, cls
    alias = cls.model_fields[field].validation_alias
    return alias.upper() if isinstance(alias, str) else f"{PREFIX}{field}".upper()


def read_directly() -> set[str]:
    """BAZAAR_* names the runtime code reads from the environment itself (os.environ.get, os.environ[...],
    os.getenv), outside the settings classes: BAZAAR_DEPLOYMENT, read by orchestration/definitions.py."""
    names = set()
    for package in RUNTIME_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                key = None
                if isinstance(node, ast.Call) and node.args and ast.unparse(node.func) in (
                        "os.environ.get", "os.getenv", "environ.get", "getenv"):
                    key = node.args[0]
                elif isinstance(node, ast.Subscript) and ast.unparse(node.value) in ("os.environ", "environ"):
                    key = node.slice
                if isinstance(key, ast.Constant) and isinstance(key.value, str) and key.value.startswith(PREFIX):
                    names.add(key.value)
    return names


def known_variables() -> set[str]:
    return {variable(cls, f) for cls in settings_classes() for f in cls.model_fields} | read_directly()


def cluster_resource_variables() -> set[str]:
    """The EnvVar("BAZAAR_...") names `cluster_resources()` in orchestration/resources.py reads (EnvVar(...)
    and EnvVar.int(...)), and the secrets' variables its `_secrets` lists, found in their source."""
    tree = ast.parse((ROOT / "orchestration" / "resources.py").read_text())
    func, secrets = ([n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name][0]
                     for name in ("cluster_resources", "_secrets"))
    names = set()
    for node in ast.walk(func):
        if (isinstance(node, ast.Call) and ast.unparse(node.func).split(".")[0] == "EnvVar" and node.args
                and isinstance(node.args[0], ast.Constant)):
            names.add(node.args[0].value)
    names |= {node.value for node in ast.walk(secrets)
              if isinstance(node, ast.Constant) and str(node.value).startswith(PREFIX)}
    return names


def unknown_bazaar_variables(project: dict, known: set[str]) -> dict[str, list[str]]:
    """Per service, the BAZAAR_* variables it is given that no code reads (a misspelling is silently ignored
    by the settings: extra="ignore")."""
    unknown = {svc: sorted(n for n in env if n.startswith(PREFIX) and n not in known)
               for svc, env in environments(project).items()}
    return {svc: names for svc, names in unknown.items() if names}


def missing_variables(project: dict, service: str, needed: set[str]) -> list[str]:
    return sorted(needed - set(environments(project)[service]))


# ---- the file -----------------------------------------------------------------------------------------

def test_the_reference_loader_accepts_the_file(project):
    assert project["name"] == "bazaar"
    assert {"kafka-1", "kafka-2", "kafka-3", "events-topic", "postgres", "namenode", "datanode", "hdfs-init",
            "metastore", "spark-master", "spark-worker", "trino", "redis", "engine", "relay", "sink-trades",
            "sink-player-states", "reports", "dagster-user-code", "dagster-webserver",
            "dagster-daemon"} <= set(project["services"])


def test_the_reference_loader_refuses_an_unknown_key(validator, tmp_path):
    text = COMPOSE.read_text()
    anchor = "  engine:\n    <<: *bazaar\n"
    assert anchor in text
    broken = tmp_path / "compose.yaml"
    broken.write_text(text.replace(anchor, anchor + "    restart_policy: always\n"))
    out = load(validator, broken)
    assert out.returncode != 0
    assert "restart_policy" in out.stderr and "not allowed" in out.stderr, out.stderr


def test_every_secret_must_be_given(validator):
    """No password or secret has a default in the file: each is required, and the file is refused without it."""
    text = COMPOSE.read_text()
    secrets = required_variables(text)
    assert {"BAZAAR_REDIS_PASSWORD", "BAZAAR_TOKEN_SECRET", "POSTGRES_PASSWORD", "METASTORE_DB_PASSWORD",
            "DAGSTER_DB_PASSWORD", "BAZAAR_TRINO_PASSWORD", "BAZAAR_TRINO_OWNER_PASSWORD", "TRINO_KEYSTORE_PASSWORD",
            "TRINO_SHARED_SECRET", "BAZAAR_KAFKA_ADMIN_PASSWORD", "BAZAAR_RELAY_KAFKA_PASSWORD",
            "BAZAAR_SINK_KAFKA_PASSWORD"} <= secrets
    mentioned = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text))
    assert not {n for n in mentioned if re.search("PASSWORD|SECRET|TOKEN", n)} - secrets, "a secret with a default"
    for name in sorted(secrets):
        env = {other: dummy(other) for other in secrets - {name}}
        out = load(validator, env=env)
        assert out.returncode != 0 and name in out.stderr, (name, out.stderr)


def test_ports_are_published_on_loopback_only(project):
    ports = [(svc, p) for svc, s in project["services"].items() for p in s.get("ports") or []]
    assert {svc for svc, _ in ports} >= {"engine", "dagster-webserver", "reports", "trino"}
    assert [(svc, p) for svc, p in ports if p.get("host_ip") != "127.0.0.1"] == []


# ---- the settings ---------------------------------------------------------------------------------------

def test_every_bazaar_variable_names_a_setting(project):
    known = known_variables()
    assert "BAZAAR_DEPLOYMENT" in known and "BAZAAR_TOPIC_REPLICATION" in known
    assert unknown_bazaar_variables(project, known) == {}
    assert environments(project)[USER_CODE]["BAZAAR_DEPLOYMENT"] == "cluster"


def test_the_settings_check_catches_a_misspelled_name(project):
    mutated = copy.deepcopy(project)
    env = mutated["services"]["relay"]["environment"]
    env["BAZAAR_KAFKA_BOOTSRAP"] = env.pop("BAZAAR_KAFKA_BOOTSTRAP")
    assert unknown_bazaar_variables(mutated, known_variables()) == {"relay": ["BAZAAR_KAFKA_BOOTSRAP"]}


def test_every_value_parses_as_its_setting(project, monkeypatch):
    """Each service's BAZAAR_* values, read by every settings class that service's environment can build
    (all its required fields given): a value a class refuses fails here, not in a container."""
    classes = settings_classes()
    for service, env in environments(project).items():
        ours = {n: v for n, v in env.items() if n.startswith(PREFIX)}
        if not ours:
            continue
        for name in [n for n in os.environ if n.upper().startswith(PREFIX)]:
            monkeypatch.delenv(name)
        for name, value in ours.items():
            monkeypatch.setenv(name, value)
        checked = set()
        for cls in classes:
            names = {f: variable(cls, f) for f in cls.model_fields}
            if all(names[f] in ours for f, info in cls.model_fields.items() if info.is_required()):
                cls()  # raises on a value the class refuses
                checked |= set(names.values())
        unchecked = set(ours) - read_directly() - checked
        assert not unchecked, (service, sorted(unchecked))


def test_the_code_location_gets_every_variable_its_cluster_resources_read(project):
    needed = cluster_resource_variables()
    assert {"BAZAAR_REDIS_URL", "BAZAAR_KAFKA_BOOTSTRAP", "BAZAAR_TRINO_PORT", "BAZAAR_REPORTS_DIR",
            "BAZAAR_SINK_KAFKA_PASSWORD", "BAZAAR_TRINO_OWNER_PASSWORD"} <= needed
    assert missing_variables(project, USER_CODE, needed) == []
    mutated = copy.deepcopy(project)
    del mutated["services"][USER_CODE]["environment"]["BAZAAR_TRINO_PORT"]
    assert missing_variables(mutated, USER_CODE, needed) == ["BAZAAR_TRINO_PORT"]


def test_the_code_location_loads_with_its_environment(project):
    """orchestration.definitions imported with the code location service's environment, and nothing else
    of ours, builds the cluster resources and passes Dagster's own validation."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), "PYTHONPATH": str(ROOT),
           **environments(project)[USER_CODE]}
    probe = ("from dagster import Definitions; import orchestration.definitions as d; "
             "Definitions.validate_loadable(d.defs); "
             "print(sorted(d.defs.resources), type(d.defs.resources['kafka']).__name__, "
             "d.defs.resources['kafka'].replication, d.defs.resources['kafka'].min_insync_replicas)")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split("\n")[0] == ("['kafka', 'redis', 'report_store', 'sinks', 'trino', 'warehouse_jobs'] "
                                            "KafkaResource 3 2")


# ---- Dagster's files, and versions that must agree -------------------------------------------------------

def test_dagster_instance_and_workspace(project):
    from dagster._core.instance.config import dagster_instance_config
    from dagster._core.workspace.config_schema import ensure_workspace_config

    config, _ = dagster_instance_config(str(DOCKER / "dagster"))  # Dagster's own schema
    assert "postgres" in config["storage"]
    wanted = set(re.findall(r"env:\s*([A-Z0-9_]+)", (DOCKER / "dagster" / "dagster.yaml").read_text()))
    assert wanted
    for service in DAGSTER_SERVICES:
        assert missing_variables(project, service, wanted) == [], service

    path = DOCKER / "dagster" / "workspace.yaml"
    workspace = ensure_workspace_config(yaml.safe_load(path.read_text()), str(path))
    (entry,) = workspace["load_from"]
    server = entry["grpc_server"]
    command = project["services"][server["host"]]["command"]
    assert command[:3] == ["dagster", "api", "grpc"] and command[command.index("-p") + 1] == str(server["port"])
    assert command[command.index("-m") + 1] == "orchestration.definitions"
    for service in ("dagster-webserver", "dagster-daemon"):
        command = project["services"][service]["command"]
        mounts = {v["target"]: v for v in project["services"][service]["volumes"]}
        assert mounts[command[command.index("-w") + 1]]["source"] == str(path)


def test_versions_agree():
    """The Spark image, the connector the image fetches and pyspark are one version; the metastore serves
    the calls pyspark's Hive client makes; setup.py's dagster and dagster-postgres are a released pair
    (libraries 0.(N+16).P go with dagster 1.N.P)."""
    setup = (ROOT / "setup.py").read_text()
    (pyspark,) = re.findall(r'"pyspark==([^"]+)"', setup)
    compose = COMPOSE.read_text()
    spark_images = set(re.findall(r"image: apache/spark:(\S+)", compose))
    assert spark_images and all(tag.startswith(f"{pyspark}-scala2.13-") for tag in spark_images), spark_images
    assert re.findall(r"<spark.version>([^<]+)</spark.version>", (DOCKER / "jars" / "pom.xml").read_text()) == [pyspark]

    # pyspark's built-in Hive client (2.3) calls get_table, which Hive 4.0.1 removed from the metastore
    # (HIVE-26537): the metastore image stays below 4.0.1 while that client is built in
    import pyspark

    (client,) = [j.name for j in (Path(pyspark.__file__).parent / "jars").glob("hive-metastore-*.jar")]
    (hive,) = re.findall(r"image: apache/hive:(\d+)\.(\d+)\.(\d+)", compose)
    if client.startswith("hive-metastore-2."):
        assert tuple(map(int, hive)) < (4, 0, 1), (client, hive)

    (core,) = re.findall(r'"dagster==(\d+)\.(\d+)\.(\d+)"', setup)
    (postgres,) = re.findall(r'"dagster-postgres==(\d+)\.(\d+)\.(\d+)"', setup)
    assert core[0] == "1" and postgres == ("0", str(int(core[1]) + 16), core[2]), (core, postgres)


def sink_status_mounts(project: dict) -> dict[str, tuple[str, str, bool]]:
    """Each service's mount of the sinks' status volume: (volume, target, read-only)."""
    out = {}
    for name, svc in project["services"].items():
        for v in svc.get("volumes") or []:
            if v.get("type") == "volume" and v.get("source") == "sink-status":
                out[name] = (v["source"], v["target"], bool(v.get("read_only")))
    return out


def test_the_code_location_judges_the_drivers_run_as_services(project):
    """The drivers are services of their own: the code location's launcher is `service`, and reads each
    driver's status file, and writes its stop requests, in the volume the drivers write to."""
    from spark_jobs.launch import SINKS, status_path

    env = environments(project)[USER_CODE]
    assert env["BAZAAR_SINK_LAUNCHER"] == "service"
    mounts = sink_status_mounts(project)
    home = env["BAZAAR_SINK_HOME"]
    assert mounts[USER_CODE] == ("sink-status", home, False)  # stop requests are written there
    for sink in SINKS:
        (service,) = [n for n, svc in project["services"].items()
                      if n.startswith("sink-") and f"--sink {sink} " in " ".join(svc.get("command") or [])]
        command = " ".join(project["services"][service]["command"])
        assert f"--status-file {status_path(Path(home), sink)}" in command, command
        assert mounts[service][:2] == ("sink-status", home)


def test_prometheus_config_scrapes_what_the_local_stack_scrapes(project):
    """docker/'s Prometheus: a configuration promtool accepts, loading the local stack's alert rules, and
    scraping a service of the file for each job it names, on the ports those services serve metrics on."""
    import shutil
    import subprocess

    import yaml

    from bazaar.settings import Stack
    from bazaar.stack.prometheus import scrape_targets

    config_path = DOCKER / "prometheus" / "prometheus.yml"
    service = project["services"]["prometheus"]
    mounts = {v["target"]: v["source"] for v in service["volumes"] if v.get("type") == "bind"}
    assert mounts["/etc/prometheus/alerts.yml"] == str(ROOT / "bazaar" / "stack" / "prometheus" / "alerts.yml")
    config = yaml.safe_load(config_path.read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    jobs = {c["job_name"]: [t for sc in c["static_configs"] for t in sc["targets"]] for c in config["scrape_configs"]}
    assert set(jobs) <= set(scrape_targets(Stack()))
    for targets in jobs.values():
        assert all(t.split(":")[0] in project["services"] for t in targets)
    assert jobs["sinks"] == ["sink-trades:9465", "sink-player-states:9466"]
    assert project["services"]["relay"]["environment"]["BAZAAR_RELAY_METRICS_HOST"] == "0.0.0.0"
    # the engine's workers count into one folder, empty at each start, or each scrape reads one worker
    engine = project["services"]["engine"]
    assert engine["environment"]["PROMETHEUS_MULTIPROC_DIR"] in engine["tmpfs"]
    assert "engine:create_app" in engine["command"] and "--workers" in engine["command"]
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: `make install-test` installs Debian's prometheus package"
    out = subprocess.run([promtool, "check", "config", "--syntax-only", str(config_path)], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stdout + out.stderr
