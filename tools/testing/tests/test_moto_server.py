"""Transactions on tools/local/moto_server.py stay atomic: a cancelled `TransactWriteItems` leaves no
partial write and no stream record (and the table's stream keeps flowing), and concurrent
transactions whose conditions conflict never both succeed.

Run by tools/testing/test.sh (`make test`) against its moto (`MOTO_ENDPOINT`), or alone, which starts
one: .venv/bin/python -m unittest discover -s tools/testing/tests
"""

import os
import socket
import subprocess
import sys
import threading
import time
import unittest
import uuid

import boto3
from botocore.exceptions import ClientError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
_SERVER = None


def endpoint():
    global _SERVER
    if os.environ.get("MOTO_ENDPOINT"):
        return os.environ["MOTO_ENDPOINT"]
    if _SERVER is None:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        proc = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "tools", "local", "moto_server.py"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.1)
        _SERVER = (proc, f"http://127.0.0.1:{port}")
    return _SERVER[1]


def tearDownModule():
    if _SERVER is not None:
        _SERVER[0].terminate()
        _SERVER[0].wait()


def client(service):
    return boto3.client(
        service,
        endpoint_url=endpoint(),
        region_name="eu-west-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


class TransactionsStayAtomic(unittest.TestCase):
    def setUp(self):
        self.ddb = client("dynamodb")
        self.streams = client("dynamodbstreams")
        self.table = f"atomic-{uuid.uuid4().hex[:8]}"
        desc = self.ddb.create_table(
            TableName=self.table,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        self.stream_arn = desc["TableDescription"]["LatestStreamArn"]
        self.put("a", 1)
        shard = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"][0]
        self.iterator = self.streams.get_shard_iterator(
            StreamArn=self.stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        self.assertEqual(len(self.read_stream()), 1)

    def put(self, pk, v):
        self.ddb.put_item(TableName=self.table, Item={"pk": {"S": pk}, "sk": {"S": "x"}, "v": {"N": str(v)}})

    def get(self, pk):
        item = self.ddb.get_item(TableName=self.table, Key={"pk": {"S": pk}, "sk": {"S": "x"}}, ConsistentRead=True)
        return item.get("Item")

    def read_stream(self):
        r = self.streams.get_records(ShardIterator=self.iterator)
        self.iterator = r["NextShardIterator"]
        return r["Records"]

    def update(self, pk, expected, new):
        return {
            "Update": {
                "TableName": self.table,
                "Key": {"pk": {"S": pk}, "sk": {"S": "x"}},
                "UpdateExpression": "SET v = :new",
                "ConditionExpression": "v = :expected",
                "ExpressionAttributeValues": {":new": {"N": str(new)}, ":expected": {"N": str(expected)}},
            }
        }

    def test_a_cancelled_transaction_leaves_no_partial_write_and_no_stream_record(self):
        with self.assertRaises(ClientError) as cancelled:
            self.ddb.transact_write_items(
                TransactItems=[
                    self.update("a", 1, 2),
                    {"Put": {"TableName": self.table, "Item": {"pk": {"S": "b"}, "sk": {"S": "x"}, "v": {"N": "1"}}}},
                    {"Delete": {"TableName": self.table, "Key": {"pk": {"S": "a2"}, "sk": {"S": "x"}}}},
                    {
                        "ConditionCheck": {
                            "TableName": self.table,
                            "Key": {"pk": {"S": "c"}, "sk": {"S": "x"}},
                            "ConditionExpression": "attribute_exists(pk)",
                        }
                    },
                ]
            )
        self.assertEqual(cancelled.exception.response["Error"]["Code"], "TransactionCanceledException")
        self.assertEqual(self.get("a")["v"], {"N": "1"}, "the update of a was rolled back")
        self.assertIsNone(self.get("b"), "the put of b was rolled back")
        self.assertEqual(self.read_stream(), [], "a rolled-back write left a stream record")
        scanned = self.ddb.scan(TableName=self.table, ConsistentRead=True)["Items"]
        self.assertEqual([i["pk"]["S"] for i in scanned], ["a"])

    def test_the_stream_keeps_flowing_to_open_iterators_after_a_cancelled_transaction(self):
        with self.assertRaises(ClientError):
            self.ddb.transact_write_items(TransactItems=[self.update("a", 99, 2)])
        self.put("d", 1)
        records = self.read_stream()
        self.assertEqual([r["dynamodb"]["Keys"]["pk"]["S"] for r in records], ["d"])

    def test_a_committed_transaction_writes_every_item_and_one_stream_record_each(self):
        self.ddb.transact_write_items(
            TransactItems=[
                self.update("a", 1, 2),
                {"Put": {"TableName": self.table, "Item": {"pk": {"S": "b"}, "sk": {"S": "x"}, "v": {"N": "1"}}}},
            ]
        )
        self.assertEqual(self.get("a")["v"], {"N": "2"})
        self.assertEqual(self.get("b")["v"], {"N": "1"})
        records = self.read_stream()
        self.assertEqual(sorted(r["eventName"] for r in records), ["INSERT", "MODIFY"])

    def test_concurrent_transactions_with_conflicting_conditions_never_both_succeed(self):
        self.put("b", 1)
        self.read_stream()
        rounds, writers = 20, 4
        for round_ in range(rounds):
            won = []
            start = threading.Barrier(writers)

            def write(n, expected=round_ + 1):
                ddb = client("dynamodb")
                start.wait()
                try:
                    ddb.transact_write_items(
                        TransactItems=[self.update("a", expected, expected + 1), self.update("b", expected, expected + 1)]
                    )
                    won.append(n)
                except ClientError as e:
                    if e.response["Error"]["Code"] != "TransactionCanceledException":
                        raise

            threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(len(won), 1, f"round {round_}: {len(won)} conflicting transactions succeeded")
            self.assertEqual(self.get("a")["v"], {"N": str(round_ + 2)})
            self.assertEqual(self.get("b")["v"], {"N": str(round_ + 2)})
        self.assertEqual(len(self.read_stream()), 2 * rounds, "one MODIFY per item per winning transaction")


if __name__ == "__main__":
    unittest.main()


class DispatchTest(unittest.TestCase):
    """moto_server.py looks a signed request's backend up once per credential scope, not anew
    (and under one lock) for every request."""

    @staticmethod
    def environ(service, target=None, region="us-east-1"):
        return {
            "PATH_INFO": "/",
            **({"HTTP_X_AMZ_TARGET": target} if target else {}),
            "HTTP_HOST": "127.0.0.1:5000",
            "HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 "
            f"Credential=testing/20261130/{region}/{service}/aws4_request, "
            "SignedHeaders=host;x-amz-date, Signature=0",
        }

    def test_each_scope_is_resolved_once_and_to_its_own_backend(self):
        sys.path.insert(0, os.path.join(ROOT, "tools", "local"))
        try:
            import moto_server
        finally:
            sys.path.pop(0)
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        dispatcher = DomainDispatcherApplication(create_backend_app)
        inferred = []
        original = dispatcher.infer_service_region_host
        dispatcher.infer_service_region_host = lambda *a: inferred.append(a) or original(*a)

        requests = {
            "dynamodb": self.environ("dynamodb", "DynamoDB_20120810.GetItem"),
            "dynamodbstreams": self.environ("dynamodb", "DynamoDBStreams_20120810.GetRecords"),
            "sqs": self.environ("sqs", "AmazonSQS.ReceiveMessage"),
            "events": self.environ("events", "AWSEvents.PutEvents"),
        }
        apps = {name: dispatcher.get_application(environ) for name, environ in requests.items()}
        for name, app in apps.items():
            self.assertEqual(app.service, name)
        for _ in range(3):
            for name, environ in requests.items():
                self.assertIs(dispatcher.get_application(environ), apps[name])
        self.assertEqual(len(inferred), len(requests), "one look-up per credential scope and target")
        # Not signed, or not a service call: moto's own look-up every time.
        dispatcher.get_application({"PATH_INFO": "/moto-api/"})
        self.assertEqual(moto_server._credential_scope({"PATH_INFO": "/", "HTTP_AUTHORIZATION": "junk"}), None)
