"""The command line a newcomer meets, run as a person would, against the real broker.

``nbo produce`` and ``nbo catalog load`` refuse a file with a bad line (line number and reason,
nothing sent, exit 1) and with ``--skip-invalid`` send exactly the valid lines; ``nbo tail``
ends quietly when the reader of its output goes away.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import NewTopicFactory
from tests.support.kafka_io import produce, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

NBO = [sys.executable, "-m", "agents.cli"]
ROOT = Path(__file__).resolve().parents[2]
LIKE = {"event_id": "e1", "user_id": "u1", "type": "like", "item_id": "i1", "ts": 1_700_000_000_000}
OFFER = {"offer_id": "o1", "title": "Offer", "item_ids": ["i1"], "value": 5, "channels": ["web"]}


def nbo(args: list[str], kafka: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "NBO_KAFKA_BOOTSTRAP": kafka, **env}
    return subprocess.run(
        [*NBO, *args], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120
    )


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "input.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def test_produce_sends_nothing_from_a_file_with_a_bad_line_and_skips_it_on_request(
    tmp_path: Path, kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    topic = await new_topic("cli-events")
    good = [json.dumps({**LIKE, "event_id": f"e{n}"}) for n in range(3)]
    path = write(tmp_path, good[0], "not json at all", good[1], good[2])

    refused = await asyncio.to_thread(
        nbo, ["produce", str(path), "--topic", topic], kafka_bootstrap
    )
    assert refused.returncode == 1
    assert f"{path}:2: InvalidJson: " in refused.stderr
    assert "nothing was sent" in refused.stderr and "Traceback" not in refused.stderr

    skipped = await asyncio.to_thread(
        nbo, ["produce", str(path), "--topic", topic, "--skip-invalid"], kafka_bootstrap
    )
    assert skipped.returncode == 1  # a bad line is still an error
    assert f"{path}:2: InvalidJson: " in skipped.stderr
    assert f"produced 3 events to {topic}" in skipped.stdout
    # the topic holds exactly the three good lines of the second run: the first sent nothing
    records = await read_topic(kafka_bootstrap, topic, expect=4, timeout_s=8)
    assert [(r.key, r.value) for r in records] == [(b"u1", g.encode()) for g in good]


async def test_catalog_load_refuses_an_offer_of_negative_value_with_its_line(
    tmp_path: Path, kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    items, offers = await new_topic("cli-items"), await new_topic("cli-offers")
    env = {"NBO_TOPIC_ITEM_CATALOG": items, "NBO_TOPIC_OFFER_CATALOG": offers}
    item = json.dumps({"item_id": "i1", "tags": ["a"]})
    bad = json.dumps({**OFFER, "offer_id": "o2", "value": -5})
    path = write(tmp_path, item, json.dumps(OFFER), bad)

    refused = await asyncio.to_thread(nbo, ["catalog", "load", str(path)], kafka_bootstrap, **env)
    assert refused.returncode == 1
    assert f"{path}:3: SchemaViolation: value" in refused.stderr

    skipped = await asyncio.to_thread(
        nbo, ["catalog", "load", str(path), "--skip-invalid"], kafka_bootstrap, **env
    )
    assert skipped.returncode == 1
    assert f"loaded 1 items onto {items}, 1 offers onto {offers}" in skipped.stdout
    got_offers = await read_topic(kafka_bootstrap, offers, expect=2, timeout_s=8)
    assert [r.key for r in got_offers] == [b"o1"]
    got_items = await read_topic(kafka_bootstrap, items, expect=2, timeout_s=8)
    assert [r.key for r in got_items] == [b"i1"]


async def test_tail_ends_quietly_when_its_reader_goes_away(
    kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    topic = await new_topic("cli-tail")
    await produce(kafka_bootstrap, topic, [(None, json.dumps({"n": n}).encode()) for n in range(3)])
    environ = {**os.environ, "NBO_KAFKA_BOOTSTRAP": kafka_bootstrap}
    nbo_tail = " ".join(shlex.quote(a) for a in [*NBO, "tail", "--topic", topic])
    # exactly what a person types; pipefail makes the pipeline's status tail's own
    pipeline = f"set -o pipefail; {nbo_tail} --from-beginning | head -n 3"
    proc = await asyncio.create_subprocess_exec(
        "bash", "-c", pipeline,
        cwd=ROOT, env=environ, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    try:
        lines = [await asyncio.wait_for(proc.stdout.readline(), 60) for _ in range(3)]
        assert [json.loads(line) for line in lines] == [{"n": 0}, {"n": 1}, {"n": 2}]
        # once head has exited, the next message makes tail write into the closed pipe (one
        # more message a try, in case head was still reading when one arrived)
        for n in range(3, 23):
            await produce(kafka_bootstrap, topic, [(None, json.dumps({"n": n}).encode())])
            try:
                await asyncio.wait_for(asyncio.shield(proc.wait()), 3)
                break
            except TimeoutError:
                continue
        returncode = await asyncio.wait_for(proc.wait(), 10)
        stderr = (await proc.stderr.read()).decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert returncode == 0, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
