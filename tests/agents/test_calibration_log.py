"""A worker says at start whether offers carry a calibrated match and min_match applies."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from agents.app import log_calibration
from app.pipeline.config import PipelineConfig
from tests.policy.builders import policy
from tests.support.calibration import calibration_for

pytestmark = pytest.mark.unit


def test_without_a_calibration_the_worker_warns_that_min_match_holds_nothing_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="agents.app"):
        log_calibration(PipelineConfig())
    (line,) = caplog.records
    assert line.levelno == logging.WARNING
    assert "holds nothing back" in line.getMessage() and "push 10 %" in line.getMessage()


def test_without_thresholds_or_calibration_the_worker_says_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    off = PipelineConfig(policy=policy(min_match={"push": 0, "sms": 0, "email": 0,
                                                  "in_app": 0, "web": 0}))  # fmt: skip
    with caplog.at_level(logging.INFO, logger="agents.app"):
        log_calibration(off)
    assert caplog.records == []


def test_with_a_calibration_the_worker_names_it_and_the_thresholds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = PipelineConfig()
    calibrated = dataclasses.replace(config, calibration=calibration_for(config, [(0.0, 0.1)]))
    with caplog.at_level(logging.INFO, logger="agents.app"):
        log_calibration(calibrated)
    (line,) = caplog.records
    assert line.levelno == logging.INFO
    assert "match calibrated (isotonic, 1 points" in line.getMessage()
    assert "sms 10 %" in line.getMessage()
