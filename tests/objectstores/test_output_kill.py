"""
A task killed (SIGKILL) while writing its output to an object store: the next run cleans up and publishes.

The operator runs in its own process, as a task does; it stops at a chosen point of the write
(after its first 1 MiB write, or with the temporary object complete just before the move) and
says so on stdout; the test then sends SIGKILL, as the task supervisor does when a task does not
end in time. The next run for the same target, in this process, must leave exactly the complete
target behind.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest

from airflow_provider_partner.operators.referrals import PartnerCenterReferralsOperator
from objectstores.output_helpers import assert_output_holds, every_referral

# Transport and storage, the same on every Airflow release (and the matrix skips this folder).
pytestmark = pytest.mark.slow

# The operator's execute() in a process of its own, held at one point of the write (argv[3]):
# "write" after the first write to the temporary object, "publish" once the temporary object is
# complete (its upload closed) and before it is moved over the target. It prints where it waits,
# then waits on stdin, which the test never answers: SIGKILL ends it there.
SCRIPT = """
import sys
from airflow_provider_partner.extract import writers
from airflow_provider_partner.operators.referrals import PartnerCenterReferralsOperator

url, output_format, hold_at = sys.argv[1:4]


def hold(where, writer):
    print(where, writer.temp.path, flush=True)
    sys.stdin.readline()


if hold_at == "write":
    opened = writers.AtomicObjectWriter.open

    def open_and_hold(writer):
        file = opened(writer)
        write = file.write

        def write_then_hold(data):
            written = write(data)
            hold("WRITING", writer)
            return written

        file.write = write_then_hold
        return file

    writers.AtomicObjectWriter.open = open_and_hold
else:
    published = writers.AtomicObjectWriter.publish

    def hold_then_publish(writer):
        if writer._file is not None:
            writer._file.close()
        hold("PUBLISHING", writer)
        published(writer)

    writers.AtomicObjectWriter.publish = hold_then_publish

operator = PartnerCenterReferralsOperator(
    task_id="killed", window_field=None, output_path=url, output_format=output_format
)
operator.execute({"params": {}})
"""

# The writer alone in a process of its own: it writes argv[2] bytes to the temporary object of the
# target argv[1], more than the filesystem's block size, so the upload has begun (on S3, a
# multipart upload with its first part sent), and holds there.
WRITER_SCRIPT = """
import sys
from airflow.sdk import ObjectStoragePath
from airflow_provider_partner.extract.writers import AtomicObjectWriter

writer = AtomicObjectWriter(ObjectStoragePath(sys.argv[1]))
writer.open().write(bytes(int(sys.argv[2])))
print("WRITING", writer.temp.path, flush=True)
sys.stdin.readline()
"""

TEMPORARY = re.compile(r"\.referrals\.(jsonl|jsonl\.gz)\.partial-[0-9a-f]{32}")


def _kill_at(store, script: str, *args: str) -> str:
    """Run ``script`` in a process until it says it holds, SIGKILL it; return its temporary key."""
    process = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        env={**os.environ, **store.env},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        # Each line read blocks until the process says something (Airflow logs to stdout too).
        for line in process.stdout:
            if line.startswith(("WRITING ", "PUBLISHING ")):
                break
        else:
            pytest.fail(f"the process ended before it held: {process.communicate()[1][-3000:]}")
    finally:
        process.kill()  # SIGKILL, as the task supervisor sends it (a no-op if the process ended)
        process.communicate()
    assert process.returncode == -signal.SIGKILL
    return line.split(" ")[1].strip()


def test_killed_mid_write_leaves_no_object_and_the_retry_publishes_from_the_checkpoint(
    object_store, partner_center_emulator
):
    emu = partner_center_emulator
    url = object_store.url("out/referrals.jsonl.gz")

    temp = _kill_at(object_store, SCRIPT, url, "jsonl.gz", "write")

    assert TEMPORARY.fullmatch(temp.rsplit("/", 1)[1])
    served = emu.stats()["pages_served"]
    # An upload is only an object once closed: the killed write left none, neither target nor
    # temporary object; the checkpoint of the finished paging is kept for a retry.
    assert [
        name for name in object_store.listing("out/") if not name.startswith(".referrals.jsonl.gz.resume/")
    ] == []
    assert ".referrals.jsonl.gz.resume/manifest.json" in object_store.listing("out/")

    manifest = PartnerCenterReferralsOperator(
        task_id="killed", window_field=None, output_path=url, output_format="jsonl.gz"
    ).execute({"params": {}})

    # The retry took every page from the checkpoint on the store and asked the API for none.
    assert (manifest["count"], manifest["resumed_pages"]) == (2000, 20)
    assert emu.stats()["pages_served"] == served
    assert object_store.listing("out/") == ["referrals.jsonl.gz"]
    assert_output_holds("jsonl.gz", object_store.read("out/referrals.jsonl.gz"), every_referral(emu))


def test_killed_before_the_move_leaves_a_temporary_object_the_next_run_removes(
    object_store, partner_center_emulator
):
    emu = partner_center_emulator
    url = object_store.url("out/referrals.jsonl")
    object_store.write("out/referrals.jsonl", b'{"id": "an earlier run"}\n')

    temp = _kill_at(object_store, SCRIPT, url, "jsonl", "publish")

    name = temp.rsplit("/", 1)[1]
    assert TEMPORARY.fullmatch(name)
    # The complete temporary object is there beside the untouched earlier output.
    assert [n for n in object_store.listing("out/") if ".resume/" not in n] == [name, "referrals.jsonl"]
    assert object_store.read("out/referrals.jsonl") == b'{"id": "an earlier run"}\n'

    manifest = PartnerCenterReferralsOperator(
        task_id="next", window_field=None, output_path=url, output_format="jsonl"
    ).execute({"params": {}})

    assert manifest["count"] == 2000
    assert object_store.listing("out/") == ["referrals.jsonl"]
    assert_output_holds("jsonl", object_store.read("out/referrals.jsonl"), every_referral(emu))


@pytest.mark.parametrize("object_store", ["s3"], indirect=True)
def test_an_unfinished_multipart_upload_of_a_killed_task_is_aborted_by_the_next_run(
    object_store, partner_center_emulator
):
    store = object_store
    url = store.url("out/referrals.jsonl")
    s3 = store.raw.client

    # s3fs sends an upload in parts of its block size (50 MiB): 51 MiB have sent the first one.
    temp = _kill_at(store, WRITER_SCRIPT, url, str(51 << 20))

    uploads = s3.list_multipart_uploads(Bucket=store.bucket, Prefix=store.key("out/"))
    # Invisible among the objects, yet kept (and billed) until aborted.
    assert [u["Key"] for u in uploads.get("Uploads", [])] == [temp.split("/", 1)[1]]
    assert store.listing("out/") == []

    PartnerCenterReferralsOperator(task_id="next", window_field=None, output_path=url).execute({"params": {}})

    assert s3.list_multipart_uploads(Bucket=store.bucket, Prefix=store.key("out/")).get("Uploads", []) == []
    assert store.listing("out/") == ["referrals.jsonl"]
    assert_output_holds("jsonl", store.read("out/referrals.jsonl"), every_referral(partner_center_emulator))
