"""``nbo embed`` and ``nbo evaluate`` end to end on tiny files (no Kafka: publishing is faked)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from app.cli import build_parser, main
from app.commands.learning_cli import METHOD_NAMES
from app.core.calibration import CalibrationError, parse_calibration
from app.core.catalog_records import decode_item
from app.core.cooccurrence.index import CooccurrenceIndex
from app.core.cooccurrence.table import NeighbourTable, decode_neighbours
from app.evaluation.config import METHODS
from app.pipeline.config import pipeline_config
from app.settings import Settings
from tests.support.planted import group_log

pytestmark = pytest.mark.unit


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    planted = group_log(n_groups=2, users_per_group=10, items_per_group=8, per_user=6)
    log = planted.log
    events = tmp_path / "events.jsonl"
    with events.open("w") as fh:
        for k in range(len(log)):
            doc = {
                "event_id": log.event_ids[k],
                "user_id": log.user_ids[int(log.user[k])],
                "type": "like",
                "item_id": log.item_ids[int(log.item[k])],
                "ts": int(log.ts_ms[k]),
            }
            fh.write(json.dumps(doc) + "\n")
        fh.write("not json\n")
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text("".join(i.model_dump_json() + "\n" for i in planted.items))
    return events, catalog


def test_the_method_names_of_the_parser_are_the_evaluation_s() -> None:
    assert METHOD_NAMES == METHODS


def test_the_sub_commands_are_registered() -> None:
    args = build_parser().parse_args(["evaluate", "--movielens", "x", "--k-max", "5"])
    assert callable(args.handler) and args.k_max == 5
    args = build_parser().parse_args(["embed", "--events", "e", "--publish"])
    assert callable(args.handler) and args.publish
    with pytest.raises(SystemExit):
        build_parser().parse_args(["evaluate", "--movielens", "x", "--methods", "oracle"])


def test_the_topics_are_a_third_source_that_needs_no_file() -> None:
    args = build_parser().parse_args(["embed", "--from-topic", "--since-days", "7", "--publish"])
    assert args.from_topic and args.since_days == 7.0
    assert args.movielens is None and args.events is None
    args = build_parser().parse_args(["evaluate", "--from-topic"])
    assert args.from_topic and args.since_days is None


@pytest.mark.parametrize("command", ["embed", "evaluate"])
def test_a_command_without_a_source_names_the_three_sources(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([command, "--publish"] if command == "embed" else [command])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--movielens" in err and "--events" in err and "--from-topic" in err


def test_two_sources_at_once_are_refused() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["embed", "--events", "e", "--from-topic", "--publish"])


@pytest.mark.parametrize("days", ["0", "-3", "soon"])
def test_since_days_must_be_a_positive_number(days: str) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["embed", "--from-topic", "--since-days", days, "--publish"])


def test_since_days_without_the_topics_is_an_error(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events, _ = files
    out = tmp_path / "items.jsonl"
    argv = ["embed", "--events", str(events), "--since-days", "7", "--output", str(out)]
    assert main(argv) == 2
    assert "--since-days needs --from-topic" in capsys.readouterr().err
    assert not out.exists()


def test_embed_writes_item_records_with_vectors(files: tuple[Path, Path], tmp_path: Path) -> None:
    events, catalog = files
    out, neighbours = tmp_path / "items.jsonl", tmp_path / "neighbours.jsonl"
    code = main(
        ["embed", "--events", str(events), "--catalog", str(catalog), "--output", str(out),
         "--neighbours", str(neighbours)]
    )  # fmt: skip
    assert code == 0
    lines = out.read_bytes().splitlines()
    assert len(lines) == 16
    item = decode_item(lines[0])
    assert item.vector is not None and len(item.vector) == 64
    assert item.title is not None and item.tags
    records = [json.loads(line) for line in neighbours.read_text().splitlines()]
    assert len(records) == 16
    assert {"schema_version", "item_id", "neighbours"} == set(records[0])
    index = CooccurrenceIndex.from_records(records)
    assert all(n.split("-")[0] == "g0" for n, _ in index.neighbours_of("g0-i00"))


def test_embed_publishes_to_the_item_catalog_topic(
    files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[tuple[Any, str, list[tuple[bytes | None, bytes | None]]]] = []

    async def fake_send_all(
        kafka: Any, topic: str, records: Iterable[tuple[bytes | None, bytes | None]], **_: Any
    ) -> int:
        sent.append((kafka, topic, list(records)))
        return len(sent[-1][2])

    monkeypatch.setattr("app.commands.kafka_io.send_all", fake_send_all)
    events, catalog = files
    assert main(["embed", "--events", str(events), "--catalog", str(catalog), "--publish"]) == 0
    (_, topic, records), (_, neighbours_topic, neighbours) = sent
    assert topic == "item-catalog"
    key, value = records[0]
    assert value is not None and key == decode_item(value).item_id.encode()
    assert neighbours_topic == "item-neighbours"
    table = NeighbourTable()
    for key, value in neighbours:
        assert value is not None  # every item of the planted log has neighbours
        record = decode_neighbours(value)
        assert key == record.item_id.encode() and record.neighbours
        table.upsert(record.item_id, record.neighbours)
    assert len(table) == 16
    assert all(n.split("-")[0] == "g0" for n, _ in table.neighbours_of("g0-i00"))


def test_published_neighbours_delete_those_of_catalogue_items_that_have_none_now(
    files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sent: dict[str, list[tuple[bytes | None, bytes | None]]] = {}

    async def fake_send_all(
        kafka: Any, topic: str, records: Iterable[tuple[bytes | None, bytes | None]], **_: Any
    ) -> int:
        sent[topic] = list(records)
        return len(sent[topic])

    monkeypatch.setattr("app.commands.kafka_io.send_all", fake_send_all)
    events, catalog = files
    extended = tmp_path / "catalog-plus.jsonl"
    extended.write_text(catalog.read_text() + '{"item_id": "never-chosen", "tags": ["x"]}\n')
    assert main(["embed", "--events", str(events), "--catalog", str(extended), "--publish"]) == 0
    assert (b"never-chosen", None) in sent["item-neighbours"]
    assert sum(1 for _, value in sent["item-neighbours"] if value is None) == 1


def test_embed_without_a_destination_is_an_error(files: tuple[Path, Path]) -> None:
    events, _ = files
    assert main(["embed", "--events", str(events)]) == 2


def test_evaluate_writes_the_report_and_the_plot(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events, catalog = files
    report, plot = tmp_path / "out" / "report.json", tmp_path / "out" / "hr.png"
    code = main(
        ["evaluate", "--events", str(events), "--catalog", str(catalog), "--report", str(report),
         "--plot", str(plot), "--k-max", "5", "--methods", "engine_collab,popularity,random"]
    )  # fmt: skip
    assert code == 0
    doc = json.loads(report.read_text())
    assert set(doc["methods"]) == {"engine_collab", "popularity", "random"}
    assert list(doc["methods"]["popularity"]["hit_rate"]) == ["1", "2", "3", "4", "5"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "engine_collab" in capsys.readouterr().out


def test_evaluate_writes_a_calibration_that_a_worker_with_the_same_recipe_accepts(
    files: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events, catalog = files
    path = tmp_path / "cal" / "match.json"
    code = main(
        ["evaluate", "--events", str(events), "--catalog", str(catalog), "--k-max", "5",
         "--methods", "engine_collab", "--write-calibration", str(path),
         "--model-version", "collab-test"]
    )  # fmt: skip
    assert code == 0
    written = parse_calibration(path.read_bytes(), str(path))
    assert written.engine.model_version == "collab-test"
    assert written.fitted_on.source == "events:events.jsonl"
    for name in [n for n in os.environ if n.startswith("NBO_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("NBO_CALIBRATION_PATH", str(path))
    with pytest.raises(CalibrationError, match="another engine"):  # the default worker: no
        pipeline_config(Settings(_env_file=None))
    collab = {"NBO_MODEL_VERSION": "collab-test", "NBO_W_AFFINITY": "0.3",
              "NBO_HALF_LIFE_S": "3600", "NBO_POPULARITY_HALF_LIFE_S": "604800"}  # fmt: skip
    for name, value in collab.items():  # the settings docs/learning.md gives the collab model
        monkeypatch.setenv(name, value)
    assert pipeline_config(Settings(_env_file=None)).calibration == written


def test_evaluate_retrains_every_given_days_and_refuses_a_period_out_of_range(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events, catalog = files
    report = tmp_path / "report.json"
    common = ["evaluate", "--events", str(events), "--catalog", str(catalog), "--k-max", "5",
              "--methods", "engine_collab,item_knn", "--report", str(report)]  # fmt: skip
    # the planted log's events are a minute apart: a period of 10 minutes
    assert main([*common, "--retrain-days", str(10 / 1440)]) == 0
    doc = json.loads(report.read_text())
    assert doc["protocol"]["retrains"] > 0 and doc["config"]["retrain_every_days"] > 0
    assert "models relearned" in capsys.readouterr().out
    assert main([*common, "--retrain-days", "0"]) == 2
    assert "--retrain-days must be in (0, 3650]" in capsys.readouterr().err


def test_a_calibration_needs_engine_collab(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events, _ = files
    code = main(["evaluate", "--events", str(events), "--methods", "popularity",
                 "--write-calibration", str(tmp_path / "cal.json")])  # fmt: skip
    assert code == 2
    assert "needs the method engine_collab" in capsys.readouterr().err
    assert not (tmp_path / "cal.json").exists()


def test_evaluate_restock_reports_the_three_variants_and_writes_the_log_it_used(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.commands.evaluate import run_restock_evaluation
    from app.core.events import UserEvent
    from app.datasets.synthetic import RestockSpec, ShopSpec

    report, log = tmp_path / "restock.json", tmp_path / "log" / "events.jsonl"
    result = run_restock_evaluation(
        Settings(_env_file=None), report=report, write_log=log,
        spec=RestockSpec(repeatable_items=5, shoppers=20, span_days=60, background_events=500),
        shop=ShopSpec(items=80, offers=8, users=60),
    )  # fmt: skip
    doc = json.loads(report.read_text())
    assert set(doc["hit_rate"]) == {"exclude_purchased", "include_purchased", "restock"}
    assert doc["queries"]["repeat"] == result.queries["repeat"] > 0
    assert doc["hit_rate"]["exclude_purchased"]["repeat"] == 0.0
    lines = log.read_text().splitlines()
    assert len(lines) == result.n_events
    assert all(UserEvent.model_validate_json(line) for line in lines[:50])
    items = [decode_item(line.encode()) for line in (tmp_path / "log" / "catalog.jsonl").open()]
    assert sum(i.repeatable for i in items) == 5
    assert "restock" in capsys.readouterr().out


def test_restock_is_a_fourth_source_of_evaluate() -> None:
    assert build_parser().parse_args(["evaluate", "--restock"]).restock is True
    with pytest.raises(SystemExit):
        build_parser().parse_args(["evaluate", "--restock", "--movielens", "x"])
