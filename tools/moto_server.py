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

Usage: .venv/bin/python tools/moto_server.py -H 127.0.0.1 -p PORT   (same flags as moto_server)
"""

import functools
import sys
import threading

from moto.dynamodb.models import DynamoDBBackend
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

for backend in (DynamoDBBackend, DynamoDBStreamsBackend):
    for name, member in list(vars(backend).items()):
        if callable(member) and not name.startswith("_"):
            setattr(backend, name, _serialised(member))

if __name__ == "__main__":
    main(sys.argv[1:])
