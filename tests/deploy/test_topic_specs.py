"""The Strimzi KafkaTopics are the topics the worker would declare itself, with the same
partition counts and cleanup policies (read from the base manifest, no rendering needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from app.settings import Settings
from app.topics import topic_specs

pytestmark = pytest.mark.unit

TOPICS = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "base" / "kafka-topics.yaml"


def test_every_worker_topic_has_a_kafka_topic_with_its_partitions_and_cleanup_policy() -> None:
    docs = [d for d in yaml.safe_load_all(TOPICS.read_text(encoding="utf-8")) if d]
    manifests = {d["spec"]["topicName"]: d["spec"] for d in docs if d["kind"] == "KafkaTopic"}
    settings = Settings(user_events_partitions=12)
    specs = {s.name: s for s in topic_specs(settings)}

    assert set(manifests) == set(specs)
    for name, spec in specs.items():
        assert manifests[name]["partitions"] == spec.partitions, name
        policy = manifests[name].get("config", {}).get("cleanup.policy", "delete")
        assert policy == spec.config.get("cleanup.policy", "delete"), name
