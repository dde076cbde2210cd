"""Answers as AWS gives them, where SDK users would notice a difference."""

import hashlib
import json
import urllib.error
import urllib.parse
import urllib.request
import uuid

from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
import boto3
import pytest


def test_fifo_receive_takes_a_groups_batch_in_order_and_holds_the_group(sqs, name):
    url = sqs.create_queue(
        QueueName=name + ".fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )["QueueUrl"]
    for group, count in (("A", 12), ("B", 3)):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "MessageBody": f"{group}{i}", "MessageGroupId": group}
                for i in range(min(count, 10))
            ],
        )
    sqs.send_message_batch(
        QueueUrl=url,
        Entries=[{"Id": "x", "MessageBody": "A10", "MessageGroupId": "A"},
                 {"Id": "y", "MessageBody": "A11", "MessageGroupId": "A"}],
    )
    first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in first] == [f"A{i}" for i in range(10)]
    # A is out: the next receive finds only B, whole.
    second = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in second] == ["B0", "B1", "B2"]
    assert "Messages" not in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    sqs.delete_message_batch(
        QueueUrl=url,
        Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(first)],
    )
    rest = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in rest] == ["A10", "A11"]


def test_message_ids_are_uuids(sqs, name):
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sent = sqs.send_message(QueueUrl=url, MessageBody="x")["MessageId"]
    batch = sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "y"}]
    )["Successful"][0]["MessageId"]
    assert str(uuid.UUID(sent)) == sent
    assert uuid.UUID(batch) != uuid.UUID(sent)
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["MessageId"] for m in got) == sorted([sent, batch])


def test_carriage_returns_come_back_as_sent(sqs, name):
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    body = "line\r\nnext\rlast\n"
    sent = sqs.send_message(QueueUrl=url, MessageBody=body)
    assert sent["MD5OfMessageBody"] == hashlib.md5(body.encode()).hexdigest()
    m = sqs.receive_message(QueueUrl=url)["Messages"][0]
    assert m["Body"] == body
    assert m["MD5OfBody"] == sent["MD5OfMessageBody"]


def test_purge_starts_a_fifo_queues_deduplication_afresh(sqs, name):
    url = sqs.create_queue(QueueName=name + ".fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    once = {"QueueUrl": url, "MessageBody": "x", "MessageGroupId": "g",
            "MessageDeduplicationId": "once"}
    first = sqs.send_message(**once)["MessageId"]
    assert sqs.send_message(**once)["MessageId"] == first
    sqs.purge_queue(QueueUrl=url)
    again = sqs.send_message(**once)["MessageId"]
    assert again != first
    got = sqs.receive_message(QueueUrl=url)["Messages"]
    assert [m["MessageId"] for m in got] == [again]


def test_fifo_messages_take_the_queues_delay_even_with_delay_zero(sqs, name):
    url = sqs.create_queue(
        QueueName=name + ".fifo",
        Attributes={"FifoQueue": "true", "DelaySeconds": "60"},
    )["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="g",
                     MessageDeduplicationId="1", DelaySeconds=0)
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"


def test_sse_sqs_is_on_by_default(sqs, name):
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["SqsManagedSseEnabled"] == "true"


def _query_request(sqs, url, params):
    """A query-protocol GET of `params`, whatever protocol this boto3
    speaks: older SDKs and presigned URLs send them so."""
    query = urllib.parse.urlencode({**params, "Version": "2012-11-05"})
    return AWSRequest(method="GET", url=f"{url}?{query}")


def _credentials(sqs):
    c = sqs._request_signer._credentials
    return Credentials(c.access_key, c.secret_key)


def _get(request):
    try:
        with urllib.request.urlopen(
            urllib.request.Request(request.url, headers=dict(request.headers)), timeout=10
        ) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_get_requests_signed_in_headers_or_presigned_are_answered(sqs, name):
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="over GET")
    endpoint = sqs.meta.endpoint_url

    signed = _query_request(sqs, endpoint, {"Action": "GetQueueUrl", "QueueName": name})
    SigV4Auth(_credentials(sqs), "sqs", "us-east-1").add_auth(signed)
    status, body = _get(signed.prepare())
    assert status == 200, body
    assert f"<QueueUrl>{url}</QueueUrl>" in body

    presigned = _query_request(sqs, url, {"Action": "ReceiveMessage"})
    SigV4QueryAuth(_credentials(sqs), "sqs", "us-east-1", expires=300).add_auth(presigned)
    status, body = _get(presigned.prepare())
    assert status == 200, body
    assert "<Body>over GET</Body>" in body


def test_presigned_urls_expire_and_bind_their_parameters(sqs, name):
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    old = _query_request(sqs, url, {"Action": "GetQueueAttributes", "AttributeName.1": "All"})
    # Good for 0 seconds: over by the time it arrives.
    SigV4QueryAuth(_credentials(sqs), "sqs", "us-east-1", expires=0).add_auth(old)
    status, body = _get(old.prepare())
    assert status == 403 and "RequestExpired" in body, body

    fresh = _query_request(sqs, url, {"Action": "GetQueueAttributes", "AttributeName.1": "All"})
    SigV4QueryAuth(_credentials(sqs), "sqs", "us-east-1", expires=300).add_auth(fresh)
    tampered = fresh.prepare().url.replace("GetQueueAttributes", "PurgeQueue")
    status, body = _get(AWSRequest(method="GET", url=tampered).prepare())
    assert status == 403 and "SignatureDoesNotMatch" in body, body


def _received_twice(sqs, url, body, **send):
    """A message received twice: first under a lock of 0 seconds (run out
    by the next request), then under a lock of 300; both messages."""
    sqs.send_message(QueueUrl=url, MessageBody=body, **send)
    first = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"][0]
    second = sqs.receive_message(QueueUrl=url, VisibilityTimeout=300)["Messages"][0]
    assert first["ReceiptHandle"] != second["ReceiptHandle"]
    return first, second


def test_a_receipt_stays_good_after_its_lock_ran_out(sqs, name):
    url = sqs.create_queue(QueueName=name)["QueueUrl"]

    def received_once(body):
        sqs.send_message(QueueUrl=url, MessageBody=body)
        return sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"][0]

    late = received_once("late delete")
    sqs.delete_message(QueueUrl=url, ReceiptHandle=late["ReceiptHandle"])
    assert "Messages" not in sqs.receive_message(QueueUrl=url), "deleted, not back"

    late = received_once("late change")
    sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=late["ReceiptHandle"], VisibilityTimeout=300
    )
    assert "Messages" not in sqs.receive_message(QueueUrl=url), "hidden again"
    sqs.delete_message(QueueUrl=url, ReceiptHandle=late["ReceiptHandle"])


def test_on_a_standard_queue_any_receipt_of_a_message_acts_on_it(sqs, name):
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    first, second = _received_twice(sqs, url, "taken again")

    # The first receipt acts on the message the second receive holds.
    sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0
    )
    third = sqs.receive_message(QueueUrl=url, VisibilityTimeout=300)["Messages"]
    assert [m["Body"] for m in third] == ["taken again"], "released by the first receipt"
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])
    assert "Messages" not in sqs.receive_message(QueueUrl=url), "deleted by the first receipt"
    # Deleting again, with any of its receipts, succeeds.
    sqs.delete_message(QueueUrl=url, ReceiptHandle=second["ReceiptHandle"])
    sqs.delete_message(QueueUrl=url, ReceiptHandle=third[0]["ReceiptHandle"])


def test_on_a_fifo_queue_only_the_latest_receipt_acts(sqs, name):
    url = sqs.create_queue(
        QueueName=name + ".fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )["QueueUrl"]
    first, second = _received_twice(sqs, url, "taken again", MessageGroupId="g")

    # The outdated receipt's delete succeeds and deletes nothing; the
    # message stays with the second receiver until it lets go.
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])
    sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=second["ReceiptHandle"], VisibilityTimeout=0
    )
    again = sqs.receive_message(QueueUrl=url)["Messages"]
    assert [m["Body"] for m in again] == ["taken again"]


def test_a_trace_header_becomes_the_messages_aws_trace_header(sqs, name):
    url = sqs.create_queue(QueueName=name)["QueueUrl"]

    def trace(request, **_):
        request.headers["X-Amzn-Trace-Id"] = "Root=1-5759e988-bd862e3fe1be46a994272793"

    sqs.meta.events.register("before-sign.sqs.SendMessage", trace)
    try:
        sqs.send_message(QueueUrl=url, MessageBody="traced")
    finally:
        sqs.meta.events.unregister("before-sign.sqs.SendMessage", trace)
    m = sqs.receive_message(QueueUrl=url, AttributeNames=["AWSTraceHeader"])
    attributes = m["Messages"][0]["Attributes"]
    assert attributes["AWSTraceHeader"] == "Root=1-5759e988-bd862e3fe1be46a994272793"


def test_attribute_names_of_any_script_and_the_star_wildcard(sqs, name):
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    attributes = {"größe": {"DataType": "String", "StringValue": "groß"},
                  "色": {"DataType": "Number", "StringValue": "3"}}
    sqs.send_message(QueueUrl=url, MessageBody="x", MessageAttributes=attributes)
    m = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["*"])["Messages"][0]
    assert m["MessageAttributes"] == attributes


def test_a_queue_may_be_its_own_dead_letter_queue(sqs, name):
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = '{"deadLetterTargetArn":"%s","maxReceiveCount":1}' % arn
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": policy})
    got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])
    assert got["Attributes"]["RedrivePolicy"] == policy
    sqs.send_message(QueueUrl=url, MessageBody="round again")
    sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)
    again = sqs.receive_message(QueueUrl=url)["Messages"]
    assert [m["Body"] for m in again] == ["round again"]
    sqs.delete_queue(QueueUrl=url)


def test_dead_letters_keep_their_receive_count_and_name_their_source(sqs, name):
    dlq = sqs.create_queue(QueueName=name + "-dlq")["QueueUrl"]
    arn_of = lambda url: sqs.get_queue_attributes(  # noqa: E731
        QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = '{"deadLetterTargetArn":"%s","maxReceiveCount":1}' % arn_of(dlq)
    url = sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": policy})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="poison")
    sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)
    assert "Messages" not in sqs.receive_message(QueueUrl=url), "moved on its second receive"
    m = sqs.receive_message(QueueUrl=dlq, AttributeNames=["All"])["Messages"][0]
    assert m["Attributes"]["ApproximateReceiveCount"] == "2"
    assert m["Attributes"]["DeadLetterQueueSourceArn"] == arn_of(url)


def test_permissions_are_kept_in_the_queues_policy(sqs, name):
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.add_permission(QueueUrl=url, Label="one", AWSAccountIds=["111111111111"], Actions=["*"])
    sqs.add_permission(QueueUrl=url, Label="two", AWSAccountIds=["222222222222", "333333333333"],
                       Actions=["SendMessage", "ReceiveMessage"])
    policy = json.loads(sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"])
    assert policy["Id"] == arn + "/SQSDefaultPolicy"
    assert policy["Statement"] == [
        {"Sid": "one", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
         "Action": "SQS:*", "Resource": arn},
        {"Sid": "two", "Effect": "Allow",
         "Principal": {"AWS": ["arn:aws:iam::222222222222:root", "arn:aws:iam::333333333333:root"]},
         "Action": ["SQS:SendMessage", "SQS:ReceiveMessage"], "Resource": arn},
    ]
    with pytest.raises(ClientError) as e:
        sqs.add_permission(QueueUrl=url, Label="one", AWSAccountIds=["1"], Actions=["*"])
    assert e.value.response["Error"]["Message"] == (
        "Value one for parameter Label is invalid. Reason: Already exists.")
    with pytest.raises(ClientError) as e:
        sqs.add_permission(QueueUrl=url, Label="x", AWSAccountIds=["1"], Actions=["DeleteQueue"])
    assert "Only the queue owner" in e.value.response["Error"]["Message"]
    sqs.remove_permission(QueueUrl=url, Label="one")
    sqs.remove_permission(QueueUrl=url, Label="two")
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert "Policy" not in attributes
    with pytest.raises(ClientError) as e:
        sqs.remove_permission(QueueUrl=url, Label="one")
    assert e.value.response["Error"]["Code"] == "InvalidParameterValue"


def _json_call(sqs, action, params):
    """One AWS JSON 1.0 request, signed, whatever protocol this boto3
    speaks: its status, `x-amzn-query-error` header and parsed body."""
    request = AWSRequest(
        method="POST",
        url=sqs.meta.endpoint_url + "/",
        data=json.dumps(params).encode(),
        headers={"Content-Type": "application/x-amz-json-1.0",
                 "X-Amz-Target": f"AmazonSQS.{action}"},
    )
    SigV4Auth(_credentials(sqs), "sqs", "us-east-1").add_auth(request)
    prepared = request.prepare()
    try:
        with urllib.request.urlopen(urllib.request.Request(
                prepared.url, data=prepared.body, headers=dict(prepared.headers)), timeout=10) as r:
            return r.status, r.headers.get("x-amzn-query-error"), json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("x-amzn-query-error"), json.loads(e.read())


def test_json_errors_carry_the_shape_aws_sends_and_the_query_code(sqs, name):
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    cases = [
        ("SendMessage", {"QueueUrl": url, "MessageBody": "x", "DelaySeconds": 901},
         "InvalidParameterValueException", "InvalidParameterValue;Sender"),
        ("SendMessage", {"QueueUrl": url},
         "MissingRequiredParameterException", "MissingParameter;Sender"),
        ("GetQueueUrl", {"QueueName": name + "-absent"},
         "QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue;Sender"),
    ]
    for action, params, shape, query_error in cases:
        status, header, body = _json_call(sqs, action, params)
        assert (status, body["__type"].split("#")[-1], header) == (400, shape, query_error)


def test_a_second_purge_within_the_minute_is_refused(sqs, name):
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    # A FIFO purge forgets deduplication ids, but not that it purged.
    fifo = sqs.create_queue(QueueName=name + ".fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    for queue in (url, fifo):
        sqs.purge_queue(QueueUrl=queue)
        with pytest.raises(sqs.exceptions.PurgeQueueInProgress):
            sqs.purge_queue(QueueUrl=queue)
    other = sqs.create_queue(QueueName=name + "-other")["QueueUrl"]
    sqs.purge_queue(QueueUrl=other)


def test_sts_get_caller_identity_names_the_account(sqs):
    c = _credentials(sqs)
    sts = boto3.client("sts", endpoint_url=sqs.meta.endpoint_url, region_name="us-east-1",
                       aws_access_key_id=c.access_key, aws_secret_access_key=c.secret_key)
    identity = sts.get_caller_identity()
    assert identity["Account"] == "000000000000"
    assert identity["UserId"] == c.access_key


def test_each_region_has_its_own_queues(sqs, name):
    c = _credentials(sqs)

    def client(region):
        return boto3.client("sqs", endpoint_url=sqs.meta.endpoint_url, region_name=region,
                            aws_access_key_id=c.access_key, aws_secret_access_key=c.secret_key)

    east, west = sqs, client("us-west-2")
    east_url = east.create_queue(QueueName=name)["QueueUrl"]
    west_url = west.create_queue(QueueName=name, Attributes={"DelaySeconds": "5"})["QueueUrl"]
    east.send_message(QueueUrl=east_url, MessageBody="east")
    west.send_message(QueueUrl=west_url, MessageBody="west", DelaySeconds=0)
    assert [m["Body"] for m in west.receive_message(QueueUrl=west_url)["Messages"]] == ["west"]
    assert [m["Body"] for m in east.receive_message(QueueUrl=east_url)["Messages"]] == ["east"]
    arn = west.get_queue_attributes(QueueUrl=west_url, AttributeNames=["All"])["Attributes"]
    assert arn["QueueArn"] == f"arn:aws:sqs:us-west-2:000000000000:{name}"
    assert arn["DelaySeconds"] == "5"
    assert east.get_queue_attributes(
        QueueUrl=east_url, AttributeNames=["DelaySeconds"])["Attributes"]["DelaySeconds"] == "0"
    assert west.list_queues(QueueNamePrefix=name)["QueueUrls"] == [west_url]
    assert east.list_queues(QueueNamePrefix=name)["QueueUrls"] == [east_url]
    west.delete_queue(QueueUrl=west_url)
    assert east.get_queue_url(QueueName=name)["QueueUrl"] == east_url


def test_a_deleted_queues_name_is_held_for_a_minute(sqs, name):
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sqs.delete_queue(QueueUrl=url)
    with pytest.raises(sqs.exceptions.QueueDeletedRecently):
        sqs.create_queue(QueueName=name)
    sqs.create_queue(QueueName=name + "-other")
