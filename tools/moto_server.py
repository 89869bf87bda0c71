"""moto server for the tests and the local stack, with DynamoDB calls serialised.

moto 5.2's `transact_write_items` deep-copies each table it touches while other request
threads may be writing to it, which fails with "dictionary changed size during iteration" (an
HTML 500) under concurrent writes. Serialising the DynamoDB and DynamoDB Streams backends with
one lock fixes that; every other service (SQS long polls included) stays multi-threaded.

A cancelled transaction also restores each table it touched from that copy, stream shard
included, so every open shard iterator kept reading the old shard and never saw another record:
one `TransactionCanceledException` (e.g. a redelivered event failing its idempotency condition)
silently stopped the table's stream mapping. After a cancelled transaction the original shard
object is kept (without the records of the rolled-back writes), so iterators stay valid.

EventBridge hands a `PutEvents` entry's `TraceHeader` to an SQS target as the message's
`AWSTraceHeader` system attribute, so one saga stays one X-Ray trace across the bus; moto 5.2
drops it. Each entry is routed with its trace header at hand and the SQS send carries it.

Usage: .venv/bin/python tools/moto_server.py -H 127.0.0.1 -p PORT   (same flags as moto_server)
"""

import functools
import sys
import threading

from moto.dynamodb.models import DynamoDBBackend
from moto.events.models import EventsBackend
from moto.sqs.models import SQSBackend
from moto.dynamodbstreams.models import DynamoDBStreamsBackend
from moto.server import main

_LOCK = threading.RLock()


def _serialised(method):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with _LOCK:
            return method(*args, **kwargs)

    return wrapper


def _keep_stream_shards(transact_write_items):
    @functools.wraps(transact_write_items)
    def wrapper(self, *args, **kwargs):
        before = {
            name: (table, table.stream_shard, len(table.stream_shard.items))
            for name, table in self.tables.items()
            if getattr(table, "stream_shard", None) is not None
        }
        try:
            return transact_write_items(self, *args, **kwargs)
        except Exception:
            for name, (table, shard, length) in before.items():
                restored = self.tables.get(name)
                if restored is not None and restored is not table:
                    del shard.items[length:]
                    shard.table = restored
                    restored.stream_shard = shard
            raise

    return wrapper


DynamoDBBackend.transact_write_items = _keep_stream_shards(DynamoDBBackend.transact_write_items)

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


EventsBackend.put_events = _entry_by_entry(EventsBackend.put_events)
SQSBackend.send_message = _with_trace_header(SQSBackend.send_message)

for backend in (DynamoDBBackend, DynamoDBStreamsBackend):
    for name, member in list(vars(backend).items()):
        if callable(member) and not name.startswith("_"):
            setattr(backend, name, _serialised(member))

if __name__ == "__main__":
    main(sys.argv[1:])
