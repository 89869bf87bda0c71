"""moto server for the tests and the local stack, with DynamoDB calls serialised.

moto 5.2's `transact_write_items` deep-copies each table it touches while other request
threads may be writing to it, which fails with "dictionary changed size during iteration" (an
HTML 500) under concurrent writes. Serialising the DynamoDB and DynamoDB Streams backends with
one lock fixes that; every other service (SQS long polls included) stays multi-threaded.

That copy is also the local stack's bottleneck: it costs ~0.1 ms per item of the table, on every
transaction, under the lock (a 1000-item table: ~100 ms per transaction), so the API slowed down
as the tables filled. And a cancelled transaction restored each table it touched from its copy,
stream shard included, so every open shard iterator kept reading the old shard and never saw
another record. Here moto's copy of a table is the table itself; instead, before the transaction
the items it touches are copied (one per transaction item) with each touched stream shard's
length, and on any failure only those items are put back and the shards' new records dropped.
The table and shard objects never change, so iterators stay valid; atomicity holds because the
whole transaction runs under the DynamoDB lock (tools/testing/tests/test_moto_server.py proves both).

EventBridge hands a `PutEvents` entry's `TraceHeader` to an SQS target as the message's
`AWSTraceHeader` system attribute, so one saga stays one X-Ray trace across the bus; moto 5.2
drops it. Each entry is routed with its trace header at hand and the SQS send carries it.

SQS `ReceiveMessage` checks each message's retention against the queue's
`MessageRetentionPeriod` directly (moto computes every queue attribute, counting all messages, for
each message received: quadratic in a backlog).

werkzeug's per-request access log is off (about a fifth of moto's CPU under load);
MOTO_ACCESS_LOG=1 turns it back on.

moto finds the backend of every request anew, under one lock: it lists its own package folder
(a directory listing and ~150 `isdir` calls) and parses the request's signature. At 5 orders/s a
third of the DynamoDB moto's samples were in there, mostly waiting for that lock. For the
stack's services (DynamoDB and its streams, SQS, EventBridge) a signed request's backend
depends only on its credential scope and X-Amz-Target prefix, so the app is looked up once per
such key.

Usage: .venv/bin/python tools/local/moto_server.py -H 127.0.0.1 -p PORT   (same flags as moto_server)
"""

import copy
import functools
import logging
import os
import sys
import threading

from moto.core.utils import unix_time
from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.events.models import EventsBackend
from moto.sqs.models import SQSBackend
from moto.dynamodbstreams.models import DynamoDBStreamsBackend
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.server import main

_LOCK = threading.RLock()


def _serialised(method):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with _LOCK:
            return method(*args, **kwargs)

    return wrapper


class _NoTableCopies:
    """Stands in for the `copy` module inside moto.dynamodb.models: a `Table` is not copied
    (its "backup" is the table itself, so moto's own restore is a no-op); anything else is."""

    @staticmethod
    def deepcopy(obj, memo=None):
        if isinstance(obj, Table):
            return obj
        return copy.deepcopy(obj, memo)


dynamodb_models.copy = _NoTableCopies


def _touched_key(table, op_type, op):
    """The (hash, range) key a transaction item touches, or None when moto will reject it."""
    try:
        attrs = op["Item"] if op_type == "Put" else op["Key"]
        hash_key = DynamoType(attrs[table.hash_key_attr])
        range_key = DynamoType(attrs[table.range_key_attr]) if table.has_range_key else None
        return hash_key, range_key
    except (KeyError, TypeError):
        return None


def _restore(table, hash_key, range_key, item):
    """Puts an item back as it was (or removes it) without writing a stream record."""
    if range_key is None:
        if item is None:
            table.items.pop(hash_key, None)
        else:
            table.items[hash_key] = item
    else:
        had_hash = hash_key in table.items
        if item is None:
            if had_hash:
                table.items[hash_key].pop(range_key, None)
                if not table.items[hash_key]:
                    del table.items[hash_key]
        else:
            table.items[hash_key][range_key] = item


def _copy_on_write(transact_write_items):
    @functools.wraps(transact_write_items)
    def wrapper(self, transact_items, *args, **kwargs):
        items = []  # (table, hash, range, copy of the item before)
        shards = {}  # id(table) -> (its stream shard, records before)
        for entry in transact_items if isinstance(transact_items, list) else []:
            if not isinstance(entry, dict) or len(entry) != 1:
                continue
            op_type, op = next(iter(entry.items()))
            table = self.tables.get(op.get("TableName")) if isinstance(op, dict) else None
            if table is None:
                continue
            key = _touched_key(table, op_type, op)
            if key is not None:
                items.append((table, key[0], key[1], copy.deepcopy(table.get_item(*key))))
            shard = getattr(table, "stream_shard", None)
            if shard is not None and id(table) not in shards:
                shards[id(table)] = (shard, len(shard.items))
        try:
            return transact_write_items(self, transact_items, *args, **kwargs)
        except Exception:
            # Later items first, so an item touched twice (which moto rejects) ends as it began.
            for table, hash_key, range_key, item in reversed(items):
                _restore(table, hash_key, range_key, item)
            for shard, length in shards.values():
                del shard.items[length:]
            raise

    return wrapper


DynamoDBBackend.transact_write_items = _copy_on_write(DynamoDBBackend.transact_write_items)

# The trace header of the PutEvents entry being routed on this request thread.
_ROUTING = threading.local()


def _entry_by_entry(put_events):
    @functools.wraps(put_events)
    def wrapper(self, events):
        if len(events) > 10:
            return put_events(self, events)  # moto's own validation error
        entries = []
        for event in events:
            _ROUTING.trace_header = event.get("TraceHeader")
            try:
                entries.extend(put_events(self, [event]))
            finally:
                _ROUTING.trace_header = None
        return entries

    return wrapper


def _with_trace_header(send_message):
    @functools.wraps(send_message)
    def wrapper(self, *args, **kwargs):
        trace_header = getattr(_ROUTING, "trace_header", None)
        if trace_header and not kwargs.get("system_attributes"):
            kwargs["system_attributes"] = {
                "AWSTraceHeader": {"DataType": "String", "StringValue": trace_header}
            }
        return send_message(self, *args, **kwargs)

    return wrapper


def _retention_from_the_queue(self, queue_name, message):
    """moto's own check builds every attribute of the queue (counting all its messages) for each
    message it receives, which makes a backlog quadratic; the retention period is one field."""
    period = int(self.get_queue(queue_name).message_retention_period)
    return period + message.sent_timestamp / 1000 > unix_time()


SQSBackend.is_message_valid_based_on_retention_period = _retention_from_the_queue


# The services the stack calls, whose backend moto derives from the credential scope's service
# and region and the X-Amz-Target's prefix alone (DynamoDB and DynamoDB Streams share the signing
# name "dynamodb"; the target tells them apart). Any other request takes moto's own look-up.
_SCOPED_SERVICES = frozenset({"dynamodb", "sqs", "events"})


def _credential_scope(environ):
    """The key a signed request of the stack's services is dispatched by, or None."""
    path = environ.get("PATH_INFO", "")
    if path.startswith(("/moto-api", "/latest/")) or path == "/favicon.ico":
        return None
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return None
    try:
        # AWS4-HMAC-SHA256 Credential=KEY/20170220/us-east-1/dynamodb/aws4_request, ...
        _, _, region, service, _ = auth.split(",")[0].split()[1].split("=", 1)[1].split("/")
    except (IndexError, ValueError):
        return None
    if service not in _SCOPED_SERVICES:
        return None
    target = environ.get("HTTP_X_AMZ_TARGET", "").split(".", 1)[0]
    return service, region, target


def _app_per_scope(get_application):
    apps = {}

    @functools.wraps(get_application)
    def wrapper(self, environ):
        scope = _credential_scope(environ)
        if scope is None:
            return get_application(self, environ)
        app = apps.get(scope)
        if app is None:
            app = apps.setdefault(scope, get_application(self, environ))
        return app

    return wrapper


DomainDispatcherApplication.get_application = _app_per_scope(DomainDispatcherApplication.get_application)

EventsBackend.put_events = _entry_by_entry(EventsBackend.put_events)
SQSBackend.send_message = _with_trace_header(SQSBackend.send_message)

for backend in (DynamoDBBackend, DynamoDBStreamsBackend):
    for name, member in list(vars(backend).items()):
        if callable(member) and not name.startswith("_"):
            setattr(backend, name, _serialised(member))

if __name__ == "__main__":
    # werkzeug's access log (one line per request) cost ~18 % of moto's CPU at 5 orders/s;
    # MOTO_ACCESS_LOG=1 keeps it for debugging.
    if os.environ.get("MOTO_ACCESS_LOG") != "1":
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    main(sys.argv[1:])
