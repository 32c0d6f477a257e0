"""The servers and connections of servers.py: what users' URLs reach, and each server's guarantees."""

from __future__ import annotations

import pytest
from airflow.sdk import ObjectStoragePath


def test_a_users_url_reaches_the_server_through_its_connection(object_store):
    path = ObjectStoragePath(object_store.url("folder/hello.txt"))

    path.write_bytes(b"hello")

    assert object_store.read("folder/hello.txt") == b"hello"
    assert object_store.listing() == ["folder/hello.txt"]
    assert object_store.listing("folder/") == ["hello.txt"]
    assert object_store.read_or_none("folder/absent.txt") is None
    with pytest.raises(FileNotFoundError):
        object_store.read("folder/absent.txt")
    object_store.write("folder/other.txt", b"raw")
    assert ObjectStoragePath(object_store.url("folder/other.txt")).read_bytes() == b"raw"


def test_each_view_has_a_prefix_of_its_own(object_store):
    other = object_store.fresh()
    object_store.write("same.txt", b"mine")

    assert other.read_or_none("same.txt") is None
    assert other.url("same.txt") != object_store.url("same.txt")
    assert object_store.url("k") == (
        f"{object_store.scheme}://{object_store.conn_id}@partner-tests/{object_store.prefix}/k"
    )


def test_exclusive_create_is_what_the_flag_says(object_store):
    """open(mode="xb") of an existing key: refused where the server checks the precondition."""
    path = ObjectStoragePath(object_store.url("lease"))
    with path.fs.open(path.path, "xb") as first:
        first.write(b"first")

    if object_store.exclusive_create:
        with pytest.raises(FileExistsError), path.fs.open(path.path, "xb") as second:
            second.write(b"second")
        assert object_store.read("lease") == b"first"
    else:
        # fake-gcs-server 1.54 ignores ifGenerationMatch=0 on resumable uploads (servers.py): the
        # second exclusive create overwrites. Should the server start refusing, flip the flag.
        with path.fs.open(path.path, "xb") as second:
            second.write(b"second")
        assert object_store.read("lease") == b"second"


@pytest.mark.parametrize("object_store", ["s3"], indirect=True)
def test_moto_refuses_a_conditional_put_over_an_existing_key_with_412(object_store):
    """What s3fs's exclusive create relies on: PutObject with If-None-Match: * is a 412 if the key exists."""
    s3, key = object_store.raw.client, object_store.key("conditional")
    s3.put_object(Bucket=object_store.bucket, Key=key, Body=b"first", IfNoneMatch="*")

    with pytest.raises(s3.exceptions.ClientError) as refused:
        s3.put_object(Bucket=object_store.bucket, Key=key, Body=b"second", IfNoneMatch="*")

    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert refused.value.response["Error"]["Code"] == "PreconditionFailed"
    assert object_store.read("conditional") == b"first"
