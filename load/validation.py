"""Micro-benchmark: the cost of validating an event, typed decoding against dict checks.

    python -m load.validation            # µs per event, best of 5 runs of timeit

The body is the one `python -m load.bench` posts: 100 events of load.traffic, and the pixel
hit is the bench's. "dict checks" is the path every body took before the typed contract
(orjson, then common.events.validate_event per event), and is still the fallback that lists
every error of an invalid body; "typed" is the collector's path now.
"""

from __future__ import annotations

import argparse
import time
import timeit
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from multidict import MultiDict

from collector.bodies import decode_events, validate_batch
from collector.pixel import hit_event, pixel_event
from common.events import validate_event
from common.services import Service
from load.traffic import TrafficShape

SERVICES = {"SP-DEMO": Service("SP-DEMO", ZoneInfo("UTC"), ("k" * 16,), ("r" * 16,))}
NOW_MS = 1_795_000_000_000
BATCH_EVENTS = 100
PIXEL = MultiDict(
    sdr_s="SP-DEMO", sdr_o="acct-1", sdr_u="joe@acme.com", sdr_m="Invoices", sdr_a="Create"
)


def dict_checks(body: bytes) -> list[Any]:
    batch = orjson.loads(body)["batch"]
    return [validate_event(raw, SERVICES, NOW_MS, "SP-DEMO") for raw in batch]


def typed(body: bytes) -> list[Any]:
    decoded = decode_events(body)
    assert isinstance(decoded, list)
    events, errors = validate_batch(decoded, SERVICES, "SP-DEMO", NOW_MS)
    assert not errors
    return events


def microseconds(work: Callable[[], object], per: int, repeat: int, number: int) -> float:
    """Best CPU time of repeat runs of number calls, in µs per item (per items a call).

    CPU time, not wall time: the machine is shared, and other processes' turns on the CPU
    would count otherwise.
    """
    best = min(timeit.repeat(work, time.process_time, repeat=repeat, number=number))
    return best / number / per * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=500, help="batches per timing run")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    events = list(TrafficShape(accounts=200).events(BATCH_EVENTS))
    body = orjson.dumps({"batch": events})
    assert dict_checks(body) == typed(body)
    runs = args.repeat, args.number
    figures = {
        "batch_dict_checks_us_per_event": microseconds(lambda: dict_checks(body), 100, *runs),
        "batch_typed_us_per_event": microseconds(lambda: typed(body), 100, *runs),
        "pixel_dict_checks_us_per_hit": microseconds(
            lambda: validate_event(pixel_event(PIXEL), SERVICES, NOW_MS), 1, args.repeat, 20_000
        ),
        "pixel_typed_us_per_hit": microseconds(
            lambda: hit_event(PIXEL, SERVICES, NOW_MS), 1, args.repeat, 20_000
        ),
    }
    for name, value in figures.items():
        print(f"{name:34} {value:6.2f}")


if __name__ == "__main__":
    main()
