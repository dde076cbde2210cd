"""Clients of the Darkroom SQS endpoint under test.

The endpoint's URL and keys come from the environment (the Rust runner,
`queue/tests/sqs_boto3.rs`, starts the endpoint and sets them), and so does
the protocol this boto3 is expected to speak: the suite runs once with a
current boto3 (AWS JSON 1.0) and once with an older one (query protocol).
"""

import os
import urllib.request
import uuid

import boto3
import pytest


def _client(secret=None, key_id=None, endpoint=None):
    return boto3.client(
        "sqs",
        endpoint_url=endpoint or os.environ["SQS_ENDPOINT"],
        region_name="us-east-1",
        aws_access_key_id=key_id or os.environ["SQS_KEY_ID"],
        aws_secret_access_key=secret or os.environ["SQS_SECRET"],
    )


@pytest.fixture
def sqs():
    client = _client()
    expected = os.environ["SQS_PROTOCOL"]
    assert client.meta.service_model.protocol == expected, (
        f"this boto3 speaks {client.meta.service_model.protocol}, expected {expected}"
    )
    return client


@pytest.fixture
def woken_only():
    """A client of a second endpoint over the same queues, whose waiting
    receives only a NOTIFY wakes: with the usual 500 ms fallback poll a
    broken NOTIFY would pass for a slow one."""
    return _client(endpoint=os.environ["SQS_WOKEN_ONLY_ENDPOINT"])


@pytest.fixture
def listening():
    """How many LISTEN connections the woken-only endpoint has open; it has
    one once a receive of it waits."""

    def count():
        with urllib.request.urlopen(os.environ["SQS_LISTENING_URL"], timeout=10) as r:
            return int(r.read())

    return count


@pytest.fixture
def client_with():
    return _client


@pytest.fixture
def resource():
    return boto3.resource(
        "sqs",
        endpoint_url=os.environ["SQS_ENDPOINT"],
        region_name="us-east-1",
        aws_access_key_id=os.environ["SQS_KEY_ID"],
        aws_secret_access_key=os.environ["SQS_SECRET"],
    )


@pytest.fixture
def name():
    """A queue name no other test uses."""
    return "q-" + uuid.uuid4().hex[:12]
