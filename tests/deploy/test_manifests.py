"""The container image and the Kubernetes manifests keep the worker's operational contract.

The overlays are rendered and validated by ``scripts/check-manifests.sh`` (kustomize, then
kubeconform against the schemas vendored in ``deploy/schemas``); the tests then read the rendered
YAML. A rendering or validation failure fails the tests: nothing here is skipped.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = [pytest.mark.unit, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
RENDERED = ROOT / ".cache" / "rendered"
KUBECONFORM = ROOT / ".cache" / "go-bin" / "kubeconform"
SCHEMAS = "deploy/schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json"
OVERLAYS = sorted(p.name for p in (DEPLOY / "k8s" / "overlays").iterdir() if p.is_dir())
FLUSH_ALLOWANCE_S = 30.0  # producer flush + leaving the consumer group, generously
WORKER_UID_MIN = 1000

Doc = dict[str, Any]


@pytest.fixture(scope="module")
def check_output() -> str:
    """Run the manifest check once; its failure is a test failure, never a skip."""
    try:
        proc = subprocess.run(
            ["bash", "scripts/check-manifests.sh"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=840,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"scripts/check-manifests.sh timed out: {exc}", pytrace=False)
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        pytest.fail(f"scripts/check-manifests.sh failed:\n{output[-4000:]}", pytrace=False)
    return output


@pytest.fixture(scope="module")
def rendered(check_output: str) -> dict[str, list[Doc]]:
    """Overlay name -> its rendered documents."""
    docs = {}
    for overlay in OVERLAYS:
        text = (RENDERED / f"{overlay}.yaml").read_text(encoding="utf-8")
        docs[overlay] = [d for d in yaml.safe_load_all(text) if d]
    return docs


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest, rendered: dict[str, list[Doc]]) -> list[Doc]:
    return rendered[request.param]


def one(docs: list[Doc], kind: str, name: str | None = None) -> Doc:
    found = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def config(docs: list[Doc]) -> dict[str, str]:
    data: dict[str, str] = one(docs, "ConfigMap")["data"]
    return data


def user_events_topic(docs: list[Doc]) -> Doc:
    name = config(docs).get("NBO_TOPIC_USER_EVENTS", "user-events")
    topics = [d for d in docs if d["kind"] == "KafkaTopic" and d["spec"]["topicName"] == name]
    assert len(topics) == 1, f"no KafkaTopic with topicName {name}"
    return topics[0]


def pod_specs(docs: list[Doc]) -> Iterator[tuple[str, Doc]]:
    """(workload name, pod spec) of every Deployment and CronJob."""
    for doc in docs:
        if doc["kind"] == "Deployment":
            yield doc["metadata"]["name"], doc["spec"]["template"]["spec"]
        elif doc["kind"] == "CronJob":
            yield doc["metadata"]["name"], doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def worker_container(docs: list[Doc]) -> Doc:
    containers = one(docs, "Deployment", "nbo-stream")["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "worker")


# --- rendering and schema validation ------------------------------------------------------------


SUMMARY = re.compile(
    r"^Summary: (?P<found>\d+) resources? found in (?P<files>\d+) files? - "
    r"Valid: (?P<valid>\d+), Invalid: (?P<invalid>\d+), Errors: (?P<errors>\d+), "
    r"Skipped: (?P<skipped>\d+)$",
    re.MULTILINE,
)


def kubeconform_summary(output: str) -> dict[str, int]:
    """The counts of kubeconform's ``Summary:`` line, wherever it is in ``output`` (tool
    installs may print around it); fails the test with the output's tail when there is none."""
    found = SUMMARY.findall(output)
    if len(found) != 1:
        pytest.fail(
            f"expected one kubeconform 'Summary:' line, found {len(found)}:\n{output[-2000:]}",
            pytrace=False,
        )
    match = SUMMARY.search(output)
    assert match is not None
    return {k: int(v) for k, v in match.groupdict().items()}


def test_the_summary_is_found_among_the_go_tool_chatter_of_a_cold_module_cache() -> None:
    output = (
        "== go install sigs.k8s.io/kustomize/kustomize/v5@v5.8.2\n"
        "Summary: 44 resources found in 2 files - Valid: 44, Invalid: 0, Errors: 0, Skipped: 0\n"
        "go: downloading k8s.io/utils v0.0.0-20241104100929-3ea5e8cea738\n"
    )
    assert kubeconform_summary(output) == {
        "found": 44, "files": 2, "valid": 44, "invalid": 0, "errors": 0, "skipped": 0
    }  # fmt: skip


def test_output_without_a_summary_fails_with_the_output_not_a_guess() -> None:
    with pytest.raises(pytest.fail.Exception, match="found 0"):
        kubeconform_summary("go: downloading k8s.io/utils v0.0.0\n")


def test_every_overlay_renders_and_every_resource_validates_against_a_vendored_schema(
    check_output: str,
) -> None:
    assert OVERLAYS == ["dev", "prod"]
    counts = kubeconform_summary(check_output)
    assert counts["found"] > 0 and counts["files"] == len(OVERLAYS), counts
    assert counts["valid"] == counts["found"], counts
    assert (counts["invalid"], counts["errors"], counts["skipped"]) == (0, 0, 0), counts


def test_the_vendored_schemas_reject_a_misspelled_field(
    rendered: dict[str, list[Doc]], tmp_path: Path
) -> None:
    deployment = one(rendered["prod"], "Deployment", "nbo-stream")
    broken = json.loads(json.dumps(deployment))
    security = broken["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    security["readOnlyRootFileSystem"] = security.pop("readOnlyRootFilesystem")
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(broken), encoding="utf-8")
    proc = subprocess.run(
        [str(KUBECONFORM), "-strict", "-schema-location", SCHEMAS, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "readOnlyRootFileSystem" in proc.stdout + proc.stderr


# --- scaling, topics and the consumer group ------------------------------------------------------


def test_autoscaling_never_adds_more_workers_than_user_events_has_partitions(
    overlay: list[Doc],
) -> None:
    scaled = one(overlay, "ScaledObject")["spec"]
    partitions = user_events_topic(overlay)["spec"]["partitions"]
    assert 1 <= scaled["minReplicaCount"] <= scaled["maxReplicaCount"] <= partitions


def test_the_worker_is_told_the_partition_count_of_the_user_events_topic(
    overlay: list[Doc],
) -> None:
    partitions = user_events_topic(overlay)["spec"]["partitions"]
    assert int(config(overlay)["NBO_USER_EVENTS_PARTITIONS"]) == partitions


def test_erasure_markers_outlive_every_topic_the_workers_read_a_persons_records_from(
    overlay: list[Doc],
) -> None:
    from app.settings import Settings

    configured = config(overlay).get("NBO_ERASURE_TTL_S")
    default = Settings.model_fields["erasure_ttl_s"].default
    ttl_ms = 1000 * int(configured or default)
    read = {"user-events", "privacy-requests"}
    retention = {
        doc["spec"]["topicName"]: int(doc["spec"]["config"]["retention.ms"])
        for doc in overlay
        if doc["kind"] == "KafkaTopic" and doc["spec"].get("topicName") in read
    }
    assert set(retention) == read
    assert ttl_ms >= max(retention.values())


def test_offsets_are_committed_only_for_writes_a_redis_replica_holds(overlay: list[Doc]) -> None:
    cfg = config(overlay)
    assert int(cfg["NBO_REDIS_ACK_REPLICAS"]) >= 1
    assert 0 < int(cfg["NBO_REDIS_ACK_TIMEOUT_MS"]) <= 5_000  # within the worker's socket timeout


def test_keda_measures_the_lag_of_the_workers_consumer_group_on_user_events(
    overlay: list[Doc],
) -> None:
    scaled = one(overlay, "ScaledObject")["spec"]
    (trigger,) = scaled["triggers"]
    assert trigger["type"] == "kafka"
    assert scaled["scaleTargetRef"]["name"] == "nbo-stream"
    assert one(overlay, "Deployment", "nbo-stream")["metadata"]["name"] == "nbo-stream"
    assert trigger["metadata"]["consumerGroup"] == config(overlay)["NBO_APP_ID"]
    assert trigger["metadata"]["topic"] == user_events_topic(overlay)["spec"]["topicName"]
    assert trigger["metadata"]["offsetResetPolicy"] == "earliest"
    behavior = scaled["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] >= 300


def test_topics_are_managed_by_strimzi_not_declared_by_the_worker(overlay: list[Doc]) -> None:
    assert config(overlay)["NBO_DECLARE_TOPICS"] == "false"
    names = {d["spec"]["topicName"]: d["spec"] for d in overlay if d["kind"] == "KafkaTopic"}
    assert set(names) == {
        "user-events",
        "item-catalog",
        "offer-catalog",
        "item-neighbours",
        "next-best-offers",
        "user-events.dlq",
        "user-consent",
        "privacy-requests",
        "privacy-audit",
        "nbo-decisions",
    }
    for compacted in ("item-catalog", "offer-catalog", "item-neighbours", "user-consent"):
        assert names[compacted]["config"]["cleanup.policy"] == "compact"


def kafka_grants(docs: list[Doc], user: str) -> dict[tuple[str, str], list[str]]:
    """(resource type, name) -> sorted operations of a SCRAM KafkaUser with literal allow ACLs."""
    spec = one(docs, "KafkaUser", user)["spec"]
    assert spec["authentication"]["type"] == "scram-sha-512"
    assert spec["authorization"]["type"] == "simple"
    acls = spec["authorization"]["acls"]
    assert all(acl.get("type", "allow") == "allow" for acl in acls)
    assert all(acl["resource"]["patternType"] == "literal" for acl in acls)
    grants = {(a["resource"]["type"], a["resource"]["name"]): sorted(a["operations"]) for a in acls}
    assert len(grants) == len(acls), f"{user}: one ACL per resource"
    return grants


def embed_container(docs: list[Doc]) -> Doc:
    cron = one(docs, "CronJob", "nbo-embed")["spec"]
    (container,) = cron["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    found: Doc = container
    return found


def test_the_kafka_user_may_read_and_write_exactly_the_workers_topics_and_group(
    overlay: list[Doc],
) -> None:
    grants = kafka_grants(overlay, "nbo-stream")
    assert grants == {
        ("topic", "user-events"): ["Describe", "Read"],
        ("topic", "item-catalog"): ["Describe", "Read"],
        ("topic", "offer-catalog"): ["Describe", "Read"],
        ("topic", "item-neighbours"): ["Describe", "Read"],
        ("topic", "next-best-offers"): ["Describe", "Write"],
        ("topic", "user-events.dlq"): ["Describe", "Write"],
        ("topic", "user-consent"): ["Describe", "Read"],
        ("topic", "privacy-requests"): ["Describe", "Read"],
        ("topic", "privacy-audit"): ["Describe", "Write"],
        ("topic", "nbo-decisions"): ["Describe", "Write"],
        ("group", config(overlay)["NBO_APP_ID"]): ["Read"],
    }
    assert config(overlay)["NBO_KAFKA_SASL_USERNAME"] == "nbo-stream"


def test_the_embed_job_has_its_own_kafka_user_with_exactly_the_topics_embed_reads_and_writes(
    overlay: list[Doc],
) -> None:
    # `nbo embed --from-topic --publish`: reads the events and the item catalogue in full with
    # a plain consumer (group_id=None: no group ACL), writes items and item neighbours
    cfg = config(overlay)
    events = cfg.get("NBO_TOPIC_USER_EVENTS", "user-events")
    items = cfg.get("NBO_TOPIC_ITEM_CATALOG", "item-catalog")
    neighbours = cfg.get("NBO_TOPIC_ITEM_NEIGHBOURS", "item-neighbours")
    assert kafka_grants(overlay, "nbo-embed") == {
        ("topic", events): ["Describe", "Read"],
        ("topic", items): ["Describe", "Read", "Write"],
        ("topic", neighbours): ["Describe", "Write"],
    }


def test_the_embed_job_connects_as_its_own_kafka_user_and_holds_no_other_secret(
    overlay: list[Doc],
) -> None:
    env = {e["name"]: e for e in embed_container(overlay)["env"]}
    assert env["NBO_KAFKA_SASL_USERNAME"]["value"] == "nbo-embed"
    password = env["NBO_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert password == {"name": "nbo-embed", "key": "password"}
    secrets = {
        e["valueFrom"]["secretKeyRef"]["name"]
        for e in env.values()
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert secrets == {"nbo-embed"}


# --- the worker pod -------------------------------------------------------------------------------


def test_the_deployment_leaves_the_replica_count_to_keda(overlay: list[Doc]) -> None:
    assert "replicas" not in one(overlay, "Deployment", "nbo-stream")["spec"]


def test_rollouts_never_surge_beyond_the_partition_count(overlay: list[Doc]) -> None:
    rolling = one(overlay, "Deployment", "nbo-stream")["spec"]["strategy"]["rollingUpdate"]
    assert rolling["maxSurge"] == 0


def test_termination_grace_covers_the_commit_interval_and_the_producer_flush(
    overlay: list[Doc],
) -> None:
    commit_interval_s = float(config(overlay)["NBO_COMMIT_INTERVAL_S"])
    for name, spec in pod_specs(overlay):
        if name in {"nbo-api", "nbo-console"}:
            continue  # the lookups and the console consume no group and commit nothing
        grace = spec["terminationGracePeriodSeconds"]
        assert grace > commit_interval_s + FLUSH_ALLOWANCE_S, name


def test_every_container_runs_as_a_numeric_non_root_user_on_a_read_only_root(
    overlay: list[Doc],
) -> None:
    for name, spec in pod_specs(overlay):
        pod = spec.get("securityContext", {})
        assert pod.get("seccompProfile", {}).get("type") == "RuntimeDefault", name
        for container in spec.get("initContainers", []) + spec["containers"]:
            ctx = {**pod, **container.get("securityContext", {})}
            assert ctx.get("runAsNonRoot") is True, name
            assert isinstance(ctx.get("runAsUser"), int), name
            assert ctx["runAsUser"] >= WORKER_UID_MIN, name
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"], name


def test_the_only_writable_paths_are_emptydir_volumes_at_tmp_and_the_working_directory(
    overlay: list[Doc],
) -> None:
    workdir = dockerfile_instruction("WORKDIR")[-1]
    for name, spec in pod_specs(overlay):
        empty = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for container in spec["containers"]:
            writable = {
                m["mountPath"]: m["name"]
                for m in container["volumeMounts"]
                if not m.get("readOnly", False)
            }
            assert set(writable) == {"/tmp", workdir}, name
            assert set(writable.values()) <= empty, name


def test_memory_limit_equals_request_and_cpu_is_requested_but_not_limited(
    overlay: list[Doc],
) -> None:
    for name, spec in pod_specs(overlay):
        for container in spec["containers"]:
            resources = container["resources"]
            assert resources["limits"]["memory"] == resources["requests"]["memory"], name
            assert "cpu" in resources["requests"], name
            assert "cpu" not in resources["limits"], name


def test_liveness_checks_only_the_event_loop_and_readiness_checks_the_dependencies(
    overlay: list[Doc],
) -> None:
    worker = worker_container(overlay)
    assert worker["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert worker["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert worker["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_the_worker_serves_http_on_all_interfaces_at_the_service_port(overlay: list[Doc]) -> None:
    cfg = config(overlay)
    assert cfg["NBO_WEB_HOST"] == "0.0.0.0"
    (port,) = worker_container(overlay)["ports"]
    assert port["name"] == "http" and port["containerPort"] == int(cfg["NBO_WEB_PORT"])
    (service_port,) = one(overlay, "Service", "nbo-stream")["spec"]["ports"]
    assert service_port["name"] == "http" and service_port["targetPort"] == "http"
    (endpoint,) = one(overlay, "ServiceMonitor", "nbo-stream")["spec"]["endpoints"]
    assert endpoint["port"] == "http" and endpoint["path"] == "/metrics"


def test_secrets_are_referenced_by_the_pods_never_rendered(overlay: list[Doc]) -> None:
    assert not [d for d in overlay if d["kind"] == "Secret"]
    env = {e["name"]: e for e in worker_container(overlay)["env"]}
    assert env["NBO_REDIS_URL"]["valueFrom"]["secretKeyRef"]["name"] == "nbo-redis"
    assert env["NBO_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "nbo-stream"
    assert "NBO_REDIS_URL" not in config(overlay)
    assert not any("PASSWORD" in key for key in config(overlay))


def test_the_embed_cronjob_runs_the_worker_image_one_run_at_a_time(overlay: list[Doc]) -> None:
    cron = one(overlay, "CronJob")["spec"]
    container = embed_container(overlay)
    assert cron["concurrencyPolicy"] == "Forbid"
    assert container["args"] == ["embed", "--from-topic", "--publish"]
    assert container["image"] == worker_container(overlay)["image"]


def api_container(docs: list[Doc]) -> Doc:
    containers = one(docs, "Deployment", "nbo-api")["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "api")


def test_the_lookup_tokens_come_from_a_secret_the_api_can_read_and_not_write(
    overlay: list[Doc],
) -> None:
    pod = one(overlay, "Deployment", "nbo-api")["spec"]["template"]["spec"]
    container = api_container(overlay)
    env = {e["name"]: e for e in container.get("env", [])}
    path = Path(env["NBO_API_TOKENS_FILE"]["value"])
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == str(path.parent)]
    assert mount.get("readOnly") is True
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"]["secretName"] == "nbo-api-tokens"
    assert [i["path"] for i in volume["secret"]["items"]] == [path.name]
    mode = volume["secret"]["defaultMode"]
    assert mode & 0o040 and not mode & 0o007  # its group (fsGroup) reads, others nothing
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]
    assert "NBO_API_TOKENS_FILE" not in {e["name"] for e in worker_container(overlay)["env"]}


def test_the_lookups_run_apart_with_read_only_redis_and_catalogue_only_kafka(
    overlay: list[Doc],
) -> None:
    container = api_container(overlay)
    assert container["args"] == ["api"]
    env = {e["name"]: e for e in container["env"]}
    assert env["NBO_REDIS_URL"]["valueFrom"]["secretKeyRef"]["name"] == "nbo-redis-lookup"
    assert env["NBO_KAFKA_SASL_USERNAME"]["value"] == "nbo-api"
    grants = kafka_grants(overlay, "nbo-api")
    assert grants == {
        ("topic", "item-catalog"): ["Describe", "Read"],
        ("topic", "offer-catalog"): ["Describe", "Read"],
    }
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {
        "http": int(env["NBO_API_PORT"]["value"]),
        "metrics": int(env["NBO_API_METRICS_PORT"]["value"]),
    }
    service_ports = one(overlay, "Service", "nbo-api")["spec"]["ports"]
    assert {p["name"]: p["targetPort"] for p in service_ports} == {
        "http": "http",
        "metrics": "metrics",
    }


def test_only_labelled_clients_in_labelled_namespaces_reach_the_lookups(
    overlay: list[Doc],
) -> None:
    policy = one(overlay, "NetworkPolicy", "nbo-api")["spec"]
    assert policy["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "api"
    ports = {p["name"]: p["containerPort"] for p in api_container(overlay)["ports"]}
    lookups, metrics = policy["ingress"]
    assert [p["port"] for p in lookups["ports"]] == [ports["http"]]
    (clients,) = lookups["from"]
    assert clients["namespaceSelector"]["matchLabels"] == {"nbo-stream/clients": "true"}
    assert clients["podSelector"]["matchLabels"] == {"nbo-stream/client": "true"}
    monitoring = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
    }
    assert [p["port"] for p in metrics["ports"]] == [ports["metrics"]]
    assert metrics["from"] == [monitoring]  # only the monitoring reads /metrics
    (endpoint,) = one(overlay, "ServiceMonitor", "nbo-api")["spec"]["endpoints"]
    assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"
    # nothing but monitoring and the console reaches a worker
    (worker_rule,) = one(overlay, "NetworkPolicy", "nbo-stream")["spec"]["ingress"]
    console_pods = {
        "podSelector": {
            "matchLabels": {
                "app.kubernetes.io/name": "nbo-stream",
                "app.kubernetes.io/component": "console",
            }
        }
    }
    assert worker_rule["from"] == [monitoring, console_pods]


def console_container(docs: list[Doc]) -> Doc:
    (container,) = one(docs, "Deployment", "nbo-console")["spec"]["template"]["spec"]["containers"]
    found: Doc = container
    return found


def test_the_console_reads_redis_read_only_and_kafka_without_joining_a_group(
    overlay: list[Doc],
) -> None:
    container = console_container(overlay)
    assert container["args"] == ["console"]
    env = {e["name"]: e for e in container["env"]}
    assert env["NBO_REDIS_URL"]["valueFrom"]["secretKeyRef"]["name"] == "nbo-redis-lookup"
    assert env["NBO_KAFKA_SASL_USERNAME"]["value"] == "nbo-console"
    assert env["NBO_CONSOLE_SECURE_COOKIE"]["value"] == "true"
    assert env["NBO_CONSOLE_SECRET"]["valueFrom"]["secretKeyRef"]["name"] == "nbo-console-session"
    # the same tokens as the lookups, read-only
    assert env["NBO_API_TOKENS_FILE"]["value"] == "/etc/nbo/api/tokens"
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/etc/nbo/api"]
    assert mount["readOnly"] is True
    cfg = config(overlay)
    assert kafka_grants(overlay, "nbo-console") == {
        ("topic", cfg.get("NBO_TOPIC_USER_EVENTS", "user-events")): ["Describe", "Read"],
        # the Simulate page replays the consent in force with the events
        ("topic", cfg.get("NBO_TOPIC_USER_CONSENT", "user-consent")): ["Describe", "Read"],
        ("topic", "user-events.dlq"): ["Describe", "Read"],
        ("topic", "item-catalog"): ["Describe", "Read"],
        ("topic", "offer-catalog"): ["Describe", "Read"],
        ("group", cfg["NBO_APP_ID"]): ["Describe"],  # the lag; it cannot join the group
    }


def test_the_console_finds_every_worker_through_a_headless_service(overlay: list[Doc]) -> None:
    env = {e["name"]: e for e in console_container(overlay)["env"]}
    (url,) = json.loads(env["NBO_CONSOLE_METRICS_URLS"]["value"])
    host, port = url.removeprefix("http://").split("/")[0].split(":")
    service = one(overlay, "Service", host)["spec"]
    assert service["clusterIP"] == "None"
    assert service["selector"]["app.kubernetes.io/component"] == "worker"
    assert int(port) == int(config(overlay)["NBO_WEB_PORT"])
    policy = one(overlay, "NetworkPolicy", "nbo-console")["spec"]
    (egress,) = policy["egress"]
    assert [p["port"] for p in egress["ports"]] == [int(port)]
    (ingress,) = policy["ingress"]
    assert ingress["from"] == [
        {"namespaceSelector": {"matchLabels": {"nbo-stream/console": "true"}}}
    ]


def test_no_secret_with_data_is_committed_under_deploy() -> None:
    offenders = []
    for path in sorted(DEPLOY.rglob("*")):
        if path.suffix not in {".yaml", ".yml", ".json"} or "schemas" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        for doc in yaml.safe_load_all(text) if path.suffix != ".json" else [json.loads(text)]:
            is_secret = isinstance(doc, dict) and doc.get("kind") == "Secret"
            if is_secret and (doc.get("data") or doc.get("stringData")):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


# --- the container image -------------------------------------------------------------------------

DOCKERFILE = ROOT / "Dockerfile"


def dockerfile_instruction(name: str) -> list[str]:
    """Arguments of every ``name`` instruction (continuation lines joined)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    lines = [line.strip() for line in text.splitlines()]
    prefix = f"{name} "
    return [line[len(prefix) :].strip() for line in lines if line.upper().startswith(prefix)]


def test_the_image_starts_nbo_in_exec_form_so_sigterm_reaches_python() -> None:
    (entrypoint,) = dockerfile_instruction("ENTRYPOINT")
    assert json.loads(entrypoint) == ["nbo"]
    (cmd,) = dockerfile_instruction("CMD")
    assert json.loads(cmd) == ["worker"]


def test_the_image_runs_as_the_same_numeric_non_root_user_as_the_pods() -> None:
    user = dockerfile_instruction("USER")[-1]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) >= WORKER_UID_MIN
    assert gid == "" or gid.isdigit()
    deployment = (DEPLOY / "k8s" / "base" / "deployment.yaml").read_text(encoding="utf-8")
    assert yaml.safe_load(deployment)["spec"]["template"]["spec"]["securityContext"][
        "runAsUser"
    ] == int(uid)


def test_the_image_installs_only_the_locked_runtime_dependencies() -> None:
    runs = " ".join(dockerfile_instruction("RUN"))
    assert "uv==0.13.9" in runs
    assert "uv sync --frozen --no-dev --no-editable" in runs
    env = " ".join(dockerfile_instruction("ENV"))
    assert "PYTHONUNBUFFERED=1" in env and "NBO_WEB_HOST=0.0.0.0" in env
    assert dockerfile_instruction("EXPOSE") == ["6066"]


# --- observability -------------------------------------------------------------------------------


def exported_metrics() -> set[str]:
    from agents.metrics import WorkerMetrics

    return {metric.name for metric in WorkerMetrics().registry.collect()}


def test_the_dashboard_queries_only_metrics_the_worker_exports() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "nbo-stream.json").read_text(encoding="utf-8"))
    exprs = [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    used = {
        re.sub(r"_(total|bucket|sum|count)$", "", name)
        for expr in exprs
        for name in re.findall(r"\bnbo_[a-z_]+", expr)
    }
    assert used, "the dashboard queries no nbo_ metric"
    assert used <= exported_metrics()
    assert any("nbo_batch_seconds_bucket" in expr for expr in exprs)


def test_the_runbook_lists_every_exported_metric() -> None:
    runbook = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    missing = [name for name in sorted(exported_metrics()) if f"`{name}" not in runbook]
    assert missing == []
