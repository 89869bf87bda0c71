"""moto server for the tests and the local stack, with DynamoDB calls serialised.

moto 5.2's `transact_write_items` deep-copies each table it touches while other request
threads may be writing to it, which fails with "dictionary changed size during iteration" (an
HTML 500) under concurrent writes. Serialising the DynamoDB and DynamoDB Streams backends with
one lock fixes that; every other service (SQS long polls included) stays multi-threaded.

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


for backend in (DynamoDBBackend, DynamoDBStreamsBackend):
    for name, member in list(vars(backend).items()):
        if callable(member) and not name.startswith("_"):
            setattr(backend, name, _serialised(member))

if __name__ == "__main__":
    main(sys.argv[1:])
