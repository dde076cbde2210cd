"""Every action of the SQS endpoint, as boto3 calls it."""

import hashlib
import json
import struct
import threading
import time

import pytest
from botocore.exceptions import ClientError

ARN = "arn:aws:sqs:us-east-1:000000000000:"


def md5_of_attributes(attributes):
    """MD5OfMessageAttributes as AWS documents it: attributes sorted by
    name; name, type and value each prefixed by a 4-byte big-endian length,
    a transport byte (1 string/number, 2 binary) before the value."""
    digest = hashlib.md5()

    def field(data):
        digest.update(struct.pack(">I", len(data)))
        digest.update(data)

    for name in sorted(attributes):
        a = attributes[name]
        field(name.encode())
        field(a["DataType"].encode())
        if "BinaryValue" in a:
            digest.update(b"\x02")
            field(a["BinaryValue"])
        else:
            digest.update(b"\x01")
            field(a["StringValue"].encode())
    return digest.hexdigest()


def code(error):
    return error.value.response["Error"]["Code"]


def test_queue_lifecycle_create_get_list_delete(sqs, name):
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    assert url.endswith("/000000000000/" + name)
    # Creating it again with the same attributes returns the same queue.
    assert sqs.create_queue(QueueName=name)["QueueUrl"] == url
    assert sqs.get_queue_url(QueueName=name)["QueueUrl"] == url
    assert url in sqs.list_queues(QueueNamePrefix=name)["QueueUrls"]
    sqs.delete_queue(QueueUrl=url)
    assert "QueueUrls" not in sqs.list_queues(QueueNamePrefix=name)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_url(QueueName=name)


def test_list_queues_pages_with_next_token(sqs, name):
    urls = [sqs.create_queue(QueueName=f"{name}-{i}")["QueueUrl"] for i in range(3)]
    first = sqs.list_queues(QueueNamePrefix=name, MaxResults=2)
    assert first["QueueUrls"] == urls[:2]
    rest = sqs.list_queues(QueueNamePrefix=name, MaxResults=2, NextToken=first["NextToken"])
    assert rest["QueueUrls"] == urls[2:]
    assert "NextToken" not in rest
    paged = [
        u
        for page in sqs.get_paginator("list_queues").paginate(
            QueueNamePrefix=name, PaginationConfig={"PageSize": 1}
        )
        for u in page.get("QueueUrls", [])
    ]
    assert paged == urls


def test_attributes_are_set_and_read(sqs, name):
    url = sqs.create_queue(
        QueueName=name,
        Attributes={"VisibilityTimeout": "40", "DelaySeconds": "1", "MaximumMessageSize": "4096"},
        tags={"team": "photos"},
    )["QueueUrl"]
    sqs.set_queue_attributes(
        QueueUrl=url,
        Attributes={"MessageRetentionPeriod": "7200", "ReceiveMessageWaitTimeSeconds": "2"},
    )
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["VisibilityTimeout"] == "40"
    assert attrs["DelaySeconds"] == "1"
    assert attrs["MaximumMessageSize"] == "4096"
    assert attrs["MessageRetentionPeriod"] == "7200"
    assert attrs["ReceiveMessageWaitTimeSeconds"] == "2"
    assert attrs["QueueArn"] == ARN + name
    assert int(attrs["CreatedTimestamp"]) > 1_700_000_000
    some = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["DelaySeconds"])["Attributes"]
    assert some == {"DelaySeconds": "1"}
    with pytest.raises(ClientError) as e:
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["NoSuchAttribute"])
    assert code(e) == "InvalidAttributeName"
    with pytest.raises(ClientError) as e:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"DelaySeconds": "901"})
    assert code(e) == "InvalidAttributeValue"
    with pytest.raises(sqs.exceptions.QueueNameExists):
        sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "41"})
    policy = json.dumps({"Version": "2012-10-17", "Statement": []})
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"] == {
        "Policy": policy
    }
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": ""})
    assert "Attributes" not in sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])
    # SQS's default size limit since August 2025.
    fresh = sqs.create_queue(QueueName=name + "-fresh")["QueueUrl"]
    assert sqs.get_queue_attributes(QueueUrl=fresh, AttributeNames=["MaximumMessageSize"])[
        "Attributes"
    ] == {"MaximumMessageSize": "1048576"}


def test_tags_are_added_removed_and_listed(sqs, name):
    url = sqs.create_queue(QueueName=name, tags={"a": "1", "b": "2"})["QueueUrl"]
    sqs.tag_queue(QueueUrl=url, Tags={"c": "3"})
    sqs.untag_queue(QueueUrl=url, TagKeys=["a"])
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"b": "2", "c": "3"}
    with pytest.raises(ClientError) as e:
        sqs.tag_queue(QueueUrl=url, Tags={})
    assert code(e) == "MissingParameter"
    with pytest.raises(ClientError) as e:
        sqs.tag_queue(QueueUrl=url, Tags={f"k{i}": "v" for i in range(49)})
    assert e.value.response["Error"]["Message"] == f"Too many tags added for queue {name}."
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"b": "2", "c": "3"}


def test_message_with_attributes_round_trips_with_digests(sqs, name):
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    attributes = {
        "color": {"DataType": "String", "StringValue": "red"},
        "size": {"DataType": "Number", "StringValue": "12.5"},
        "raw": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xfe\xff"},
        "kind.custom": {"DataType": "String.custom", "StringValue": "x"},
    }
    body = "héllo <world> & \"quotes\"\n\ttabs"
    sent = sqs.send_message(
        QueueUrl=url,
        MessageBody=body,
        MessageAttributes=attributes,
        MessageSystemAttributes={
            "AWSTraceHeader": {"DataType": "String", "StringValue": "Root=1-abc"}
        },
    )
    assert sent["MD5OfMessageBody"] == hashlib.md5(body.encode()).hexdigest()
    assert sent["MD5OfMessageAttributes"] == md5_of_attributes(attributes)
    got = sqs.receive_message(
        QueueUrl=url,
        MessageAttributeNames=["All"],
        AttributeNames=["All"],
    )["Messages"]
    assert len(got) == 1
    m = got[0]
    assert m["Body"] == body
    assert m["MessageId"] == sent["MessageId"]
    assert m["MD5OfBody"] == sent["MD5OfMessageBody"]
    assert m["MessageAttributes"] == attributes
    assert m["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    assert m["Attributes"]["ApproximateReceiveCount"] == "1"
    assert m["Attributes"]["AWSTraceHeader"] == "Root=1-abc"
    assert abs(int(m["Attributes"]["SentTimestamp"]) / 1000 - time.time()) < 60
    # Only the attributes asked for, and their digest.
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
    only = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["color"])["Messages"][0]
    assert only["MessageAttributes"] == {"color": attributes["color"]}
    assert only["MD5OfMessageAttributes"] == md5_of_attributes({"color": attributes["color"]})
    sqs.delete_message(QueueUrl=url, ReceiptHandle=only["ReceiptHandle"])
    assert "Messages" not in sqs.receive_message(QueueUrl=url)


def test_bad_messages_are_refused_with_sqs_codes(sqs, name):
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=url, MessageBody="x" * (1024 * 1024 + 1))
    assert code(e) == "InvalidParameterValue"
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=url, MessageBody="bell \x07")
    assert code(e) == "InvalidMessageContents"
    with pytest.raises(ClientError) as e:
        sqs.send_message(
            QueueUrl=url,
            MessageBody="x",
            MessageAttributes={"n": {"DataType": "Number", "StringValue": "many"}},
        )
    assert code(e) == "InvalidParameterValue"
    with pytest.raises(ClientError) as e:
        sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=11)
    assert code(e) == "InvalidParameterValue"
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.send_message(QueueUrl=url + "-missing", MessageBody="x")


def test_batches_send_delete_and_change_visibility(sqs, name):
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    entries = [{"Id": f"m{i}", "MessageBody": f"body {i}"} for i in range(10)]
    entries[3]["MessageBody"] = "bad \x00"
    sent = sqs.send_message_batch(QueueUrl=url, Entries=entries)
    assert sorted(s["Id"] for s in sent["Successful"]) == sorted(
        e["Id"] for e in entries if e["Id"] != "m3"
    )
    assert [(f["Id"], f["SenderFault"], f["Code"]) for f in sent.get("Failed", [])] == [
        ("m3", True, "InvalidMessageContents")
    ]
    for s in sent["Successful"]:
        i = int(s["Id"][1:])
        assert s["MD5OfMessageBody"] == hashlib.md5(f"body {i}".encode()).hexdigest()

    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in got) == sorted(
        e["MessageBody"] for e in entries if e["Id"] != "m3"
    )
    changed = sqs.change_message_visibility_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "v0", "ReceiptHandle": got[0]["ReceiptHandle"], "VisibilityTimeout": 0},
            {"Id": "bad", "ReceiptHandle": "nonsense", "VisibilityTimeout": 0},
        ],
    )
    assert [s["Id"] for s in changed["Successful"]] == ["v0"]
    assert [(f["Id"], f["Code"]) for f in changed.get("Failed", [])] == [("bad", "ReceiptHandleIsInvalid")]
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in again] == [got[0]["Body"]]

    receipts = [m["ReceiptHandle"] for m in got[1:]] + [again[0]["ReceiptHandle"]]
    deleted = sqs.delete_message_batch(
        QueueUrl=url,
        Entries=[{"Id": f"d{i}", "ReceiptHandle": r} for i, r in enumerate(receipts)],
    )
    assert len(deleted["Successful"]) == len(receipts)
    assert deleted.get("Failed", []) == []
    attrs = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert attrs == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}

    with pytest.raises(sqs.exceptions.TooManyEntriesInBatchRequest):
        sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": f"x{i}", "MessageBody": "x"} for i in range(11)]
        )
    with pytest.raises(sqs.exceptions.BatchEntryIdsNotDistinct):
        sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": "same", "MessageBody": "x"}] * 2
        )
    with pytest.raises(sqs.exceptions.EmptyBatchRequest):
        sqs.delete_message_batch(QueueUrl=url, Entries=[])
    with pytest.raises(sqs.exceptions.InvalidBatchEntryId):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "no spaces", "MessageBody": "x"}])


def test_long_polling_waits_and_wakes_on_send(sqs, name, woken_only, listening):
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    started = time.monotonic()
    assert "Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)
    assert time.monotonic() - started >= 1

    result = {}
    waiting_url = woken_only.get_queue_url(QueueName=name)["QueueUrl"]

    def receive():
        t = time.monotonic()
        result["got"] = woken_only.receive_message(QueueUrl=waiting_url, WaitTimeSeconds=20)
        result["waited"] = time.monotonic() - t

    assert listening() == 0
    receiver = threading.Thread(target=receive)
    receiver.start()
    deadline = time.monotonic() + 10
    while listening() == 0:
        assert time.monotonic() < deadline, "the receive never waited"
        time.sleep(0.005)
    sqs.send_message(QueueUrl=url, MessageBody="wake up")
    receiver.join(30)
    assert result["got"]["Messages"][0]["Body"] == "wake up"
    assert result["waited"] < 3, f"woke after {result['waited']:.1f} s"


def test_delayed_message_shows_after_its_delay(sqs, name):
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=2)
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    delayed = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    assert delayed["ApproximateNumberOfMessagesDelayed"] == "1"
    got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=10)
    assert got["Messages"][0]["Body"] == "later"


def test_visibility_timeout_hides_and_releases(sqs, name):
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="job")
    first = sqs.receive_message(QueueUrl=url, VisibilityTimeout=300)["Messages"][0]
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0)
    second = sqs.receive_message(QueueUrl=url, AttributeNames=["ApproximateReceiveCount"])["Messages"][0]
    assert second["Attributes"]["ApproximateReceiveCount"] == "2"
    sqs.delete_message(QueueUrl=url, ReceiptHandle=second["ReceiptHandle"])
    # The message is gone: no receipt of it is in flight.
    with pytest.raises(ClientError) as e:
        sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=30
        )
    assert code(e) == "AWS.SimpleQueueService.MessageNotInflight"
    with pytest.raises(sqs.exceptions.ReceiptHandleIsInvalid):
        sqs.delete_message(QueueUrl=url, ReceiptHandle="garbage")


def test_purge_empties_the_queue(sqs, name):
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "x"} for i in range(5)]
    )
    sqs.purge_queue(QueueUrl=url)
    assert "Messages" not in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)


def test_fifo_orders_groups_and_deduplicates(sqs, name):
    url = sqs.create_queue(
        QueueName=name + ".fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )["QueueUrl"]
    seqs = []
    for i in range(4):
        r = sqs.send_message(QueueUrl=url, MessageBody=f"a{i}", MessageGroupId="A")
        seqs.append(int(r["SequenceNumber"]))
    assert seqs == sorted(seqs)
    first = sqs.send_message(QueueUrl=url, MessageBody="b0", MessageGroupId="B",
                             MessageDeduplicationId="dedup-1")
    dup = sqs.send_message(QueueUrl=url, MessageBody="other body", MessageGroupId="B",
                           MessageDeduplicationId="dedup-1")
    assert dup["MessageId"] == first["MessageId"]
    content_dup = sqs.send_message(QueueUrl=url, MessageBody="a0", MessageGroupId="A")
    assert int(content_dup["SequenceNumber"]) == seqs[0]
    batch = sqs.send_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "1", "MessageBody": "b1", "MessageGroupId": "B"},
            {"Id": "2", "MessageBody": "b1", "MessageGroupId": "B"},
        ],
    )
    ids = {s["Id"]: s["MessageId"] for s in batch["Successful"]}
    assert ids["1"] == ids["2"]

    received = []
    for _ in range(20):
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])
        if "Messages" not in got:
            break
        for m in got["Messages"]:
            received.append((m["Attributes"]["MessageGroupId"], m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    assert [b for g, b in received if g == "A"] == ["a0", "a1", "a2", "a3"]
    assert [b for g, b in received if g == "B"] == ["b0", "b1"]

    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=url, MessageBody="x")
    assert code(e) == "MissingParameter"
    # One entry without a group refuses the whole batch, as SQS does.
    with pytest.raises(ClientError) as e:
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": "1", "MessageBody": "fine", "MessageGroupId": "A"},
                {"Id": "2", "MessageBody": "no group"},
            ],
        )
    assert code(e) == "MissingParameter"
    plain = sqs.create_queue(QueueName=name + "-plain.fifo", Attributes={"FifoQueue": "true"})
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=plain["QueueUrl"], MessageBody="x", MessageGroupId="g")
    assert code(e) == "InvalidParameterValue"
    with pytest.raises(ClientError) as e:
        sqs.create_queue(QueueName=name + "-wrong", Attributes={"FifoQueue": "true"})
    assert code(e) == "InvalidParameterValue"


def test_redrive_policy_dead_letter_sources_and_move_task(sqs, name):
    dlq = sqs.create_queue(QueueName=name + "-dlq")["QueueUrl"]
    policy = {"deadLetterTargetArn": ARN + name + "-dlq", "maxReceiveCount": 1}
    url = sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": json.dumps(policy)})["QueueUrl"]
    read = json.loads(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"][
            "RedrivePolicy"
        ]
    )
    assert read == policy
    assert sqs.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"] == [url]

    sqs.send_message(QueueUrl=url, MessageBody="poison")
    sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    dead = sqs.receive_message(QueueUrl=dlq, VisibilityTimeout=0)["Messages"]
    assert [m["Body"] for m in dead] == ["poison"]

    handle = sqs.start_message_move_task(SourceArn=ARN + name + "-dlq")["TaskHandle"]
    tasks = sqs.list_message_move_tasks(SourceArn=ARN + name + "-dlq")["Results"]
    assert tasks[0]["TaskHandle"] == handle
    assert tasks[0]["Status"] == "COMPLETED"
    assert tasks[0]["ApproximateNumberOfMessagesMoved"] == 1
    back = sqs.receive_message(QueueUrl=url)["Messages"]
    assert [m["Body"] for m in back] == ["poison"]
    with pytest.raises(ClientError) as e:
        sqs.cancel_message_move_task(TaskHandle=handle)
    assert code(e) == "AWS.SimpleQueueService.UnsupportedOperation"  # it has completed

    # Dead letters moved elsewhere: DestinationArn.
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=back[0]["ReceiptHandle"], VisibilityTimeout=0)
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    elsewhere = sqs.create_queue(QueueName=name + "-elsewhere")["QueueUrl"]
    sqs.start_message_move_task(SourceArn=ARN + name + "-dlq", DestinationArn=ARN + name + "-elsewhere")
    moved = sqs.receive_message(QueueUrl=elsewhere)["Messages"]
    assert [m["Body"] for m in moved] == ["poison"]
    assert "Messages" not in sqs.receive_message(QueueUrl=dlq)

    with pytest.raises(ClientError) as e:
        sqs.create_queue(
            QueueName=name + "-2",
            Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": ARN + "nope", "maxReceiveCount": 1})},
        )
    assert code(e) == "InvalidParameterValue"


def test_signatures_are_checked(client_with, name):
    with pytest.raises(ClientError) as e:
        client_with(secret="not-the-secret").list_queues()
    assert code(e) == "SignatureDoesNotMatch"
    with pytest.raises(ClientError) as e:
        client_with(key_id="AKIDNOBODY").list_queues()
    assert code(e) == "InvalidClientTokenId"


def test_resource_api_works_unchanged(resource, name):
    queue = resource.create_queue(QueueName=name)
    queue.send_message(MessageBody="via resource")
    messages = queue.receive_messages(WaitTimeSeconds=1)
    assert [m.body for m in messages] == ["via resource"]
    messages[0].delete()
    assert queue.attributes["ApproximateNumberOfMessages"] == "0"
