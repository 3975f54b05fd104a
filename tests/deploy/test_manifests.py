"""Static checks of deploy/: the compose file against the Compose Specification schema, every
Kubernetes manifest of every overlay against the Kubernetes schemas (rendered by a real
kustomize), and the facts the issue fixes (3 brokers with RF 3 / min ISR 2, 3 shards x 2
replicas, 3 Keeper nodes) read from the files themselves."""

from __future__ import annotations

import json
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "deploy" / "compose"
K8S_DIR = ROOT / "deploy" / "k8s"
K8S_VERSION = "1.33.0"  # validated against this Kubernetes API (kubernetes-validate ships its schemas)
KUSTOMIZATIONS = ["base", "overlays/single-node", "overlays/production", "tools"]

_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


def read_env(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a compose .env file (comments and blank lines skipped)."""
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable substitution: ${VAR}, ${VAR:-default}, $$ for a literal $; unknown VAR fails."""

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, default = m.group(1), m.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise KeyError(f"compose file uses ${{{name}}}, which .env does not define")

    return _VAR.sub(one, text)


@pytest.fixture(scope="module")
def compose() -> dict:
    """The compose file as `docker compose config` would see it (variables from .env substituted)."""
    env = read_env(COMPOSE_DIR / ".env")
    return yaml.safe_load(interpolate((COMPOSE_DIR / "docker-compose.yml").read_text(), env))


def test_compose_file_validates_against_compose_spec(compose: dict) -> None:
    schema = json.loads((Path(__file__).parent / "compose-spec.json").read_text())
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in jsonschema.Draft201909Validator(schema).iter_errors(compose)]
    assert errors == []


def test_schema_check_catches_a_broken_compose_file(compose: dict) -> None:
    schema = json.loads((Path(__file__).parent / "compose-spec.json").read_text())
    broken = json.loads(json.dumps(compose))
    broken["services"]["ingest"]["depends_on"]["kafka-1"] = {"condition": "service_maybe"}
    broken["services"]["api"]["healthcheck"]["intervall"] = "5s"
    assert len(list(jsonschema.Draft201909Validator(schema).iter_errors(broken))) == 2


def test_compose_references_resolve(compose: dict) -> None:
    services, volumes = compose["services"], set(compose["volumes"])
    for name, svc in services.items():
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep} to be healthy, which has no health check"
        for mount in svc.get("volumes") or []:
            source = mount.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE_DIR / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in volumes, f"{name} uses undeclared volume {source}"
    long_running = [n for n, s in services.items() if s.get("restart") != "no" and "profiles" not in s]
    assert {"ingest", "detect", "api", "archiver", "grafana", "minio"} <= set(long_running)
    assert all(services[n].get("profiles") == ["tools"] for n in ("simulate", "load", "scenario"))
    assert services["ingest"]["deploy"]["replicas"] >= 2


def test_compose_kafka_is_three_kraft_brokers_rf3_min_isr2(compose: dict) -> None:
    brokers = {n: s for n, s in compose["services"].items() if n.startswith("kafka-")}
    assert len(brokers) == 3
    voters = {s["environment"]["KAFKA_CONTROLLER_QUORUM_VOTERS"] for s in brokers.values()}
    assert voters == {"1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"}
    assert sorted(s["environment"]["KAFKA_NODE_ID"] for s in brokers.values()) == ["1", "2", "3"]
    for s in brokers.values():
        env = s["environment"]
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert int(env["KAFKA_DEFAULT_REPLICATION_FACTOR"]) == 3
        assert int(env["KAFKA_MIN_INSYNC_REPLICAS"]) == 2
        assert int(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == 3
    fleetlens_env = compose["services"]["ingest"]["environment"]
    assert fleetlens_env["FLEETLENS_KAFKA__BOOTSTRAP"] == "kafka-1:9092,kafka-2:9092,kafka-3:9092"
    assert int(fleetlens_env["FLEETLENS_KAFKA__REPLICATION_FACTOR"]) == 3


def _cluster_xml(path: Path) -> list[list[str]]:
    cluster = ET.parse(path).getroot().find("remote_servers/fleetlens")
    assert cluster is not None
    return [[r.findtext("host") for r in shard.findall("replica")] for shard in cluster.findall("shard")]


def test_compose_clickhouse_is_three_shards_of_two_replicas_with_matching_macros(compose: dict) -> None:
    shards = _cluster_xml(COMPOSE_DIR / "clickhouse" / "cluster.xml")
    assert [len(s) for s in shards] == [2, 2, 2]
    services = compose["services"]
    seen = set()
    for number, hosts in enumerate(shards, start=1):
        for host in hosts:
            env = services[host]["environment"]  # a service per node, named as the host
            assert env["CH_SHARD"] == str(number)
            seen.add((env["CH_SHARD"], env["CH_REPLICA"]))
    assert len(seen) == 6
    keepers = [n for n in services if n.startswith("keeper-")]
    assert len(keepers) == 3
    raft = ET.parse(COMPOSE_DIR / "keeper" / "keeper.xml").getroot().findall("keeper_server/raft_configuration/server")
    assert sorted(s.findtext("hostname") for s in raft) == sorted(keepers)
    zk = ET.parse(COMPOSE_DIR / "clickhouse" / "cluster.xml").getroot().findall("zookeeper/node")
    assert sorted(n.findtext("host") for n in zk) == sorted(keepers)


def test_k8s_and_compose_share_the_clickhouse_users_file() -> None:
    assert (K8S_DIR / "base" / "config" / "users.xml").read_text() == (COMPOSE_DIR / "clickhouse" / "users.xml").read_text()
    assert [len(s) for s in _cluster_xml(K8S_DIR / "base" / "config" / "cluster.xml")] == [2, 2, 2]


@pytest.fixture(scope="module")
def kustomize() -> str:
    """Path of the pinned kustomize (built once from the Go module proxy by scripts/install-kustomize.sh)."""
    out = subprocess.run(
        [str(ROOT / "scripts" / "install-kustomize.sh")], capture_output=True, text=True, timeout=600, check=False
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def render(kustomize: str, kustomization: str) -> list[dict]:
    """The manifests ``kustomize build`` renders for one kustomization directory."""
    out = subprocess.run([kustomize, "build", str(K8S_DIR / kustomization)], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_kustomize_renders_and_every_manifest_validates(kustomize: str, kustomization: str) -> None:
    docs = render(kustomize, kustomization)
    assert docs
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{kustomization}: {doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")


def test_validation_catches_a_broken_manifest(kustomize: str) -> None:
    doc = next(d for d in render(kustomize, "base") if d["kind"] == "Deployment")
    doc["spec"]["template"]["spec"]["containers"][0]["resources"]["requestz"] = {"cpu": "1"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def _by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def test_k8s_base_has_every_role_with_probes_and_resources(kustomize: str) -> None:
    docs = render(kustomize, "base")
    sts = _by_kind(docs, "StatefulSet")
    assert {n: s["spec"]["replicas"] for n, s in sts.items()} == {"kafka": 3, "keeper": 3, "clickhouse": 6, "minio": 1}
    for name in ("kafka", "keeper", "clickhouse"):
        spec = sts[name]["spec"]
        assert spec["volumeClaimTemplates"], name
        assert "podAntiAffinity" in spec["template"]["spec"]["affinity"], name
        service = _by_kind(docs, "Service")[spec["serviceName"]]
        assert service["spec"]["clusterIP"] == "None", f"{name}: serviceName must be a headless service"
    deployments = _by_kind(docs, "Deployment")
    assert {"ingest", "detect", "detect-standby", "api"} <= set(deployments)
    for name in ("ingest", "api"):
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for d in deployments.values():
        resources = d["spec"]["template"]["spec"]["containers"][0]["resources"]
        assert resources["requests"] and resources["limits"]
    assert _by_kind(docs, "CronJob")["archiver"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"] == ["archive", "run"]
    assert set(_by_kind(render(kustomize, "tools"), "Job")) == {"simulate", "load", "scenario"}


def test_k8s_overlays_differ_where_they_should(kustomize: str) -> None:
    single = _by_kind(render(kustomize, "overlays/single-node"), "StatefulSet")
    production = _by_kind(render(kustomize, "overlays/production"), "StatefulSet")
    for name in ("kafka", "keeper", "clickhouse"):
        assert "affinity" not in single[name]["spec"]["template"]["spec"]
        anti = production[name]["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
        assert list(anti) == ["requiredDuringSchedulingIgnoredDuringExecution"]
        assert anti["requiredDuringSchedulingIgnoredDuringExecution"][0]["labelSelector"]["matchLabels"] == {
            "app.kubernetes.io/name": name
        }
