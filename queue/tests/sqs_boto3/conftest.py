"""Clients of the Darkroom SQS endpoint under test.

The endpoint's URL and keys come from the environment (the Rust runner,
`queue/tests/sqs_boto3.rs`, starts the endpoint and sets them), and so does
the protocol this boto3 is expected to speak: the suite runs once with a
current boto3 (AWS JSON 1.0) and once with an older one (query protocol).
"""

import os
import uuid

import boto3
import pytest


def _client(secret=None, key_id=None):
    return boto3.client(
        "sqs",
        endpoint_url=os.environ["SQS_ENDPOINT"],
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
