"""
An extraction leaves the garbage collector as it found it, on every Python of the matrix.

CPython 3.12 starts with objects frozen (``gc.get_freeze_count()`` is 375 in a fresh
interpreter; 0 on 3.10, 3.11 and 3.13). The fetch must neither take that freeze for its own nor
unfreeze it: a fresh interpreter runs a real extraction against the emulator and reports the
freeze count and the collector's state before and after.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

EXTRACT = """
import gc, json, sys
before = (gc.get_freeze_count(), gc.isenabled())
from airflow_provider_partner.extract.engine import Extraction
from airflow_provider_partner.extract.slices import ExtractionPlan
plan = ExtractionPlan(window_field=None, window=None)
result = Extraction("partner_center_default", plan).to_records(10_000)
print(json.dumps({"before": before, "after": (gc.get_freeze_count(), gc.isenabled()), "count": result.count}))
"""


def test_an_extraction_in_a_fresh_interpreter_leaves_the_freeze_count_where_it_started(
    partner_center_emulator: Any, airflow_db: Path
) -> None:
    expected = len(partner_center_emulator.referrals())
    done = subprocess.run([sys.executable, "-c", EXTRACT], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["count"] == expected
    assert report["after"] == report["before"]
    frozen_at_start, _ = report["before"]
    if sys.version_info[:2] == (3, 12):
        assert frozen_at_start > 0  # 3.12's own frozen objects: the path that once leaked
    else:
        assert frozen_at_start == 0
