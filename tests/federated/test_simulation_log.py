"""fedmood's filter on Flower's log in simulation: one line per failed ClientApp, no deprecation notice."""

import logging

from fedmood.federated.simulation import OneLineClientErrors


def _record(msg: str) -> logging.LogRecord:
    return logging.LogRecord("flwr", logging.WARNING, __file__, 1, msg, (), None)


def test_a_clientapps_traceback_becomes_its_message():
    record = _record("Traceback (most recent call last):\n  File x\nValueError\nMessage: the store is missing\n")
    assert OneLineClientErrors().filter(record)
    assert record.getMessage() == "a ClientApp failed: the store is missing"


def test_the_run_simulation_deprecation_notice_is_dropped_and_nothing_else():
    notice = "DEPRECATED FEATURE: The `run_simulation` function is deprecated and will be removed"
    assert not OneLineClientErrors().filter(_record(notice))
    assert OneLineClientErrors().filter(_record("DEPRECATED FEATURE: something else"))
