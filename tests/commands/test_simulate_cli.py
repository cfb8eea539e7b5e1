"""``nbo simulate`` on the command line: argument validation and a run on tiny files.

No broker, no Redis: the catalogue and the events come from files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.cli import main

pytestmark = pytest.mark.unit

NOON = 1_700_049_600_000


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    offers = tmp_path / "catalogue.jsonl"
    offer = {"offer_id": "o0", "title": "Space", "item_ids": ["i0"], "tags": ["space"],
             "value": 5.0, "channels": ["push", "in_app"]}  # fmt: skip
    offers.write_text(json.dumps({"item_id": "i0", "tags": ["space"]}) + "\n" + json.dumps(offer))
    events = tmp_path / "events.jsonl"
    lines = [{"event_id": f"e{n}", "user_id": "u1", "type": "decision_request",
              "channel": "push", "ts": NOON + n * 600_000} for n in range(5)]  # fmt: skip
    events.write_text("".join(json.dumps(line) + "\n" for line in lines))
    consent = tmp_path / "consent.jsonl"
    consent.write_text(json.dumps({"user_id": "u1", "channels": {"push": True}, "ts": NOON}))
    tight = tmp_path / "tight.toml"
    tight.write_text('version = "tight"\n[caps.channels]\npush = [{ max = 1, window = "1h" }]\n')
    return {"offers": offers, "events": events, "consent": consent, "tight": tight}


def run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main(["simulate", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_bad_policy_file_is_a_clear_error_naming_the_file(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('version = "x"\n[caps.channels]\npush = [{ max = -1, window = "1h" }]\n')
    code, _, err = run(capsys, "--events", files["events"], "--offers", files["offers"],
                       "--policy", bad)  # fmt: skip
    assert code == 2
    assert err.startswith("nbo simulate: ") and str(bad) in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "nothing to compare"),
        (("--weight", "w_nope=1"), "NAME one of"),
        (("--weight", "w_value=lots"), "not a finite number"),
        (("--weight", "w_cooccurrence=-1"), "--weight"),
        (("--weight", "w_value=0.3", "--hours", "4"), "--hours needs --from-topic"),
        (("--weight", "w_value=0.3", "--users", "0"), "at least 1"),
        (("--weight", "w_value=0.3", "--from-topic"), "--from-topic needs --hours"),
        (("--weight", "w_value=0.3", "--max-events", "5"), "--max-events needs --from-topic"),
    ],
)
def test_bad_options_are_refused_with_the_reason(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    code, _, err = run(capsys, "--events", files["events"], "--offers", files["offers"], *args)
    assert code == 2
    assert message in err, err


def test_a_run_on_files_prints_the_table_and_writes_the_json_and_the_plot(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_json, out_png = tmp_path / "sim.json", tmp_path / "sim.png"
    code, out, _ = run(capsys, "--events", files["events"], "--offers", files["offers"],
                       "--consent", files["consent"], "--policy", files["tight"],
                       "--warmup-hours", "0", "--json", out_json, "--plot", out_png)  # fmt: skip
    assert code == 0
    assert out_png.read_bytes().startswith(b"\x89PNG")
    assert "push per day" in out and "tight" in out
    report = json.loads(out_json.read_text())
    assert report["current"]["messages_by_channel"] == {"push": 1}  # default: 1 an hour too
    assert report["candidate"]["cap_suppressions"] == 4
    assert report["difference"]["messages"] == 0


def test_a_bad_catalogue_line_is_named_by_file_and_line(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "offers.jsonl"
    bad.write_text(files["offers"].read_text() + '\n{"offer_id": "o1"}\n')
    code, _, err = run(capsys, "--events", files["events"], "--offers", bad,
                       "--weight", "w_value=0.3")  # fmt: skip
    assert code == 2
    assert f"{bad}:3: " in err, err


def test_a_bounded_topic_sample_keeps_the_newest_events_in_event_time_order() -> None:
    from app.commands.simulate import NewestEvents

    newest = NewestEvents(3)
    for ts in (50, 10, 40, 20, 30, 40):
        newest.add(ts, f"e{ts}-{newest.dropped}".encode())
    assert newest.values() == [b"e40-0", b"e40-2", b"e50-0"]
    assert newest.dropped == 3
